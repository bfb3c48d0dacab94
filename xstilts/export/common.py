"""What the encoder and decoder exports share: the torch.onnx (dynamo) export call, kept quiet, and the files of
an export directory besides model.onnx."""

from __future__ import annotations

import logging
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
import torch
from xstilts.export.parity import write_report
from xstilts.io import write_json
from xstilts.provenance import Provenance


@contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporter for the whole export (its deprecation chatter is not actionable for users)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        yield


def warm_exporter() -> None:
    """Build the exporter's ONNX op registry once: the first build in a process computes each torchlib function's
    IR (about half a second), which later builds (one per export) reuse. The local runner's step server calls this
    before it forks export steps."""
    from torch.onnx._internal.exporter._registration import ONNXRegistry

    with quiet_exporter():
        ONNXRegistry.from_torchlib()


def export_program(module: torch.nn.Module, args: tuple, input_names: list[str], output_names: list[str],
                   dynamic_shapes, opset: int, optimize: bool = True):
    """torch.onnx.export with the dynamo exporter: an ONNXProgram (its .model can be rewritten before .save).
    optimize=False leaves each parameter and buffer the graph uses an initializer named by its state_dict
    name."""
    return torch.onnx.export(module, args, input_names=input_names, output_names=output_names,
                             dynamic_shapes=dynamic_shapes, opset_version=opset, dynamo=True, verbose=False,
                             optimize=optimize)


def write_export_dir(out: Path, model_dir: str | Path, tokenizer, meta: dict, report: dict, title: str,
                     report_fields: tuple[str, ...], provenance: Provenance) -> None:
    """Beside model.onnx: the tokenizer, task.json (what evaluation needs to tokenise and decode as training did),
    the export report, the model's training.json (if any) and lineage."""
    tokenizer.save_pretrained(out)
    write_json(out / "task.json", meta)
    write_report(out, report, title, report_fields)
    training = Path(model_dir) / "training.json"
    if training.exists():
        shutil.copy(training, out / "training.json")
    provenance.record(out)
