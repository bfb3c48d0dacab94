"""Step 5: export a target model to ONNX with `torch.onnx` (dynamo exporter), dynamic batch and sequence axes,
named inputs/outputs per task kind (logits; start_logits/end_logits for QA; embeddings for retrieval, the mean of
one layer's hidden states), and a parity check against PyTorch on inputs of shapes not used for export
(export/parity.py).

A model of OPTIMIZE_FROM_PARAMETERS parameters or more is optimized (onnxscript's optimizer) and fused for
onnxruntime (attention, skip-LayerNorm, bias-GELU contrib ops; see fuse_for_ort), which is what makes zero-shot
evaluation of a real encoder fast; a smaller one is saved as traced. The parity check runs on what is saved.
The traced graph is a template given this model's weights (export/graphs.py): with XSTILTS_GRAPH_CACHE set, models
of one architecture trace once."""

from __future__ import annotations

import time
from pathlib import Path
import torch
from xstilts.export import parity
from xstilts.export.common import quiet_exporter, write_export_dir
from xstilts.export.decoder import export_causal_onnx
from xstilts.export.graphs import exported_model
from xstilts.models.causal import lm_dir
from xstilts.errors import ConfigError
from xstilts.io import atomic_copy, atomic_dir, read_json
from xstilts.kinds.base import OUTPUTS, get_spec
from xstilts.progress import phase
from xstilts.provenance import Provenance
from xstilts.models.encoder import MeanPooledEncoder, load_encoder, load_model
from xstilts.tasks.registry import get_task


INPUT_NAMES = ["input_ids", "attention_mask"]
EXPORT_SHAPE = (2, 16)  # (batch, sequence) of the example inputs traced at export
REPORT_FIELDS = ("task", "kind", "condition", "opset", "optimized", "fused_ops", "outputs", "export_shape",
                 "parity_shapes", "max_abs_diff", "tolerance", "parity_passed", "onnx_bytes")
# Below this size the traced graph is saved as it is: onnxruntime's own session optimizations (constant folding,
# LayerNorm/GELU fusion) still apply when it loads, while the offline optimizer and fusions cost more per export (1 to
# 2.5 s on the tiny model) than they save on its evaluation (about 10 % of under a second). Real encoders are larger
# (MiniLM-L6 22 M parameters, XLM-R Base 278 M).
OPTIMIZE_FROM_PARAMETERS = 10_000_000


def worth_optimizing(module: torch.nn.Module) -> bool:
    """Whether the offline optimizer and fusions pay for a module of this size (OPTIMIZE_FROM_PARAMETERS)."""
    return sum(p.numel() for p in module.parameters()) >= OPTIMIZE_FROM_PARAMETERS


def fuse_for_ort(model) -> dict[str, int]:
    """Fuse a dynamo-exported encoder graph (an onnx_ir.Model, in place) into onnxruntime's contrib ops: Attention,
    SkipLayerNormalization, BiasGelu. onnxscript's ORT fusions match the dynamo exporter's graph, where
    onnxruntime.transformers.optimizer fuses LayerNorm and GELU but not attention. Returns the non-zero fusion
    counts."""
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    _, counts = optimize_for_ort(model)
    return {name: count for name, count in counts.items() if count}


class HeadModule(torch.nn.Module):
    """One task's head on the encoder, with positional inputs/outputs for the exporter."""

    def __init__(self, model, task: str):
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        return self.model(self.task, input_ids, attention_mask)


def exportable(model_dir: str | Path, retrieval_layer: int = 0) -> tuple[torch.nn.Module, object, dict]:
    """The module to export and what evaluation needs to know about it (task, kind, labels, settings, outputs)."""
    info = read_json(Path(model_dir) / "heads.json") if (Path(model_dir) / "heads.json").exists() else {}
    heads, task_name = info.get("heads", {}), info.get("task")
    if task_name and not heads:  # a retrieval target: the encoder itself, mean-pooled
        task = get_task(task_name)
        encoder, tokenizer = load_encoder(str(Path(model_dir) / "encoder"))
        module = MeanPooledEncoder(encoder, retrieval_layer).eval()
        meta = {"task": task.name, "kind": task.kind, "labels": [], "retrieval_layer": retrieval_layer,
                "pooled_hidden_state": module.index}
    else:
        if len(heads) != 1:
            raise ConfigError(f"{model_dir} has {len(heads)} heads ({', '.join(heads) or 'none'}): export needs a "
                              f"target-task model with one head")
        task_name = next(iter(heads))
        model, tokenizer, info = load_model(model_dir, task_name)
        module = HeadModule(model, task_name).eval()
        meta = {"task": task_name, "kind": heads[task_name]["kind"], "labels": heads[task_name]["labels"]}
    settings = info.get("settings") or {"max_length": 512}
    meta.update(condition=info.get("condition"), seed=info.get("seed"), settings=settings, outputs=list(OUTPUTS[meta["kind"]]))
    return module.float(), tokenizer, meta


def random_inputs_from(tokenizer, choices: int | None):
    """A seeded source of random (ids, mask) batches: the export example, then the random parity probe. Rows are
    [batch, choices, length] for multiple choice; the second row (or the only one) is padded from `pad_from`."""
    vocab = len(tokenizer)
    gen = torch.Generator().manual_seed(0)

    def random_inputs(batch: int, length: int, pad_from: int | None):
        shape = (batch, choices, length) if choices else (batch, length)
        ids = torch.randint(5, vocab, shape, generator=gen)
        mask = torch.ones_like(ids)
        if pad_from is not None:
            mask[1 if batch > 1 else 0, ..., pad_from:] = 0  # padding present
            ids[mask == 0] = tokenizer.pad_token_id
        return ids, mask

    return random_inputs


def dynamic_axes(module: torch.nn.Module, choices: int | None) -> dict:
    """Batch and sequence dynamic for both inputs (the sequence axis is 2 for multiple choice's [batch, choices,
    length]), up to the encoder's position limit."""
    encoder_config = (module.encoder if hasattr(module, "index") else module.model.encoder).config
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=2, max=encoder_config.max_position_embeddings - 2)
    axes = {0: batch, 2: sequence} if choices else {0: batch, 1: sequence}
    return {"input_ids": axes, "attention_mask": axes}


def architecture(module: torch.nn.Module, meta: dict) -> dict:
    """What decides the exported graph besides the module's class, state shapes and the export settings: the
    encoder config (its model-directory path left out), the task, its kind and labels, the pooled layer."""
    config = module.encoder.config if hasattr(module, "index") else module.model.encoder.config
    encoder_config = {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}
    return {"encoder_config": encoder_config, "task": meta["task"], "kind": meta["kind"],
            "labels": len(meta["labels"]), "retrieval_layer": meta.get("retrieval_layer"),
            "pooled_hidden_state": meta.get("pooled_hidden_state")}


def export_onnx(model_dir: str | Path, out_dir: str | Path, tolerance: float = 1e-4, opset: int = 18,
                md_path: str | Path | None = None, retrieval_layer: int = 0, optimize: bool | None = None) -> dict:
    """Write out_dir/{model.onnx, tokenizer files, task.json, export_report.json, export_report.md}.

    optimize: run onnxscript's optimizer and fuse the graph for onnxruntime (fuse_for_ort) before the parity
    check; False saves the graph as traced; None (default) decides by the model's size (worth_optimizing). The graph
    comes from graphs.exported_model (traced, or reused from XSTILTS_GRAPH_CACHE; the same bytes either way).
    Raises ExportParityError (and writes nothing) when max |onnx - torch| > tolerance in fp32. A causal model
    directory (generation tasks) is exported as a decoder with a KV cache (decoder.export_causal_onnx)."""
    if lm_dir(model_dir) is not None:
        return export_causal_onnx(model_dir, out_dir, tolerance, opset, md_path)

    provenance = Provenance("export", {"model": model_dir},
                            {"tolerance": tolerance, "opset": opset, "retrieval_layer": retrieval_layer,
                             "optimize": optimize})
    with phase("load"):
        module, tokenizer, meta = exportable(model_dir, retrieval_layer)
    if optimize is None:
        optimize = worth_optimizing(module)
    kind, outputs = meta["kind"], meta["outputs"]
    choices = len(meta["labels"]) if get_spec(kind).model_grouped else None
    random_inputs = random_inputs_from(tokenizer, choices)
    example_ids, example_mask = random_inputs(EXPORT_SHAPE[0], EXPORT_SHAPE[1], EXPORT_SHAPE[1] // 2)
    dynamic = dynamic_axes(module, choices)
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp, quiet_exporter():
        with phase("export"):
            program, fused_ops = exported_model(
                module, (example_ids, example_mask), INPUT_NAMES, outputs, dynamic, opset,
                label=f"{type(module).__name__}-{kind}", architecture=architecture(module, meta),
                optimize=optimize, transform=fuse_for_ort if optimize else None)
            program.save(str(tmp / "model.onnx"))
        export_seconds = time.perf_counter() - started

        with phase("parity"):
            probes = parity.encoder_probes(tokenizer, random_inputs, choices, EXPORT_SHAPE[1])
            max_diff = parity.encoder_max_diff(module, tmp / "model.onnx", probes, outputs, kind)
        report = {
            "model_dir": str(model_dir), "task": meta["task"], "kind": kind, "labels": meta["labels"],
            "condition": meta["condition"], "opset": opset, "inputs": INPUT_NAMES, "outputs": outputs,
            "dynamic_axes": {"batch": 0, "sequence": 2 if choices else 1}, "export_shape": list(example_ids.shape),
            "parity_shapes": [list(ids.shape) for ids, _ in probes], "max_abs_diff": max_diff,
            "tolerance": tolerance, "parity_passed": max_diff <= tolerance, "optimized": optimize,
            "fused_ops": fused_ops or {}, "export_seconds": round(export_seconds, 2),
            "onnx_bytes": sum(p.stat().st_size for p in tmp.glob("model.onnx*")),
        }
        parity.require_parity(model_dir, max_diff, tolerance, f"shapes {report['parity_shapes']}")
        with phase("write"):
            write_export_dir(tmp, model_dir, tokenizer, meta, report, "ONNX export", REPORT_FIELDS, provenance)
    if md_path:
        atomic_copy(Path(out_dir) / "export_report.md", md_path)
    return report
