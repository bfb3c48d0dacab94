"""The onnxruntime side of evaluation: an inference session on the CUDA provider when it is usable (else the CPU),
and a kinds Runner over it, so that the task kinds score an exported ONNX model as they score a PyTorch one."""

from __future__ import annotations

from pathlib import Path
import numpy as np
from xstilts.kinds.base import Runner


def make_session(model_path: Path):
    """CUDA execution provider when it is usable, else CPU; returns (session, provider actually used)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    providers = [p for p in wanted if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(model_path), options, providers=providers)
    return session, session.get_providers()[0]


def onnx_runner(session) -> Runner:
    names = [o.name for o in session.get_outputs()]

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, inputs)))

    return run
