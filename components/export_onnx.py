from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def export_onnx(model: Input[Model], onnx_model: Output[Model], report: Output[Markdown], retrieval_layer: int = 0,
                tolerance: float = 1e-4, dvc_remote: str = ""):
    """Export to ONNX with dynamic batch/sequence axes; fail unless ONNX matches PyTorch within `tolerance`.
    With `dvc_remote`, the ONNX folder is pushed there and its DVC md5 recorded as `dvc_md5`. Local runs reuse a
    cached result of the same inputs, parameters and code (xstilts.ops.stepcache)."""
    from xstilts.ops.artifact_store import push_metadata
    from xstilts.provenance import metadata
    from xstilts.ops.stepcache import lazy, run_cached

    result = run_cached("export", lazy("xstilts.export.encoder:export_onnx"), inputs={"model_dir": model.path},
                        outputs={"out_dir": onnx_model.path, "md_path": report.path},
                        params={"tolerance": tolerance, "retrieval_layer": retrieval_layer})
    onnx_model.metadata.update({"framework": "onnx", "opset": result["opset"], "max_abs_diff": result["max_abs_diff"],
                                "task": result["task"], "kind": result["kind"],
                                "condition": result["condition"], **metadata(onnx_model.path),
                                **push_metadata(onnx_model.path, dvc_remote)})
