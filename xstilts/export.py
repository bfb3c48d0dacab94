"""Step 4: export a target model to ONNX with `torch.onnx` (dynamo exporter), dynamic batch and sequence axes,
named inputs/outputs, and a parity check against PyTorch on inputs of a shape not used for export."""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import ExportParityError
from .fsutil import atomic_copy, atomic_dir, atomic_write_text, read_json, write_json
from .modeling import load_classifier
from .render import markdown_table

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAMES = ["logits"]
EXPORT_SHAPE = (2, 16)  # (batch, sequence) of the example inputs traced at export
PARITY_PROBES = [  # held-out parity inputs in several scripts; batch 5 and their padded length differ from export
    ("Anna has 3 apples in the garden.", "Anna owns 3 apples."),
    ("Marco hat 7 Bücher.", "Marco mag Musik."),
    ("У Omar есть 4 ключей.", "У Omar нет ключей."),
    ("Rosa possède 9 stylos et deux chats dans la maison.", "Rosa a 2 stylos."),
    ("A Lina le gusta el ajedrez.", "Lina tiene 5 cajas."),
]


def export_onnx(model_dir: str | Path, out_dir: str | Path, tolerance: float = 1e-4, opset: int = 18,
                md_path: str | Path | None = None) -> dict:
    """Write out_dir/{model.onnx, encoder tokenizer files, labels.json, export_report.json, export_report.md}.

    Raises ExportParityError (and writes nothing) when max |onnx - torch| > tolerance in fp32."""
    import onnxruntime as ort

    model, tokenizer, head_info = load_classifier(model_dir)
    model = model.float().eval()
    vocab = len(tokenizer)
    gen = torch.Generator().manual_seed(0)
    example_ids = torch.randint(5, vocab, EXPORT_SHAPE, generator=gen)
    example_mask = torch.ones_like(example_ids)
    example_mask[1, EXPORT_SHAPE[1] // 2:] = 0  # padding present while tracing
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=2, max=model.encoder.config.max_position_embeddings - 2)
    dynamic = {"input_ids": {0: batch, 1: sequence}, "attention_mask": {0: batch, 1: sequence}}
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not actionable for users
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(model, (example_ids, example_mask), input_names=INPUT_NAMES,
                                    output_names=OUTPUT_NAMES, dynamic_shapes=dynamic, opset_version=opset,
                                    dynamo=True, verbose=False)
        program.save(str(tmp / "model.onnx"))
        export_seconds = time.perf_counter() - started

        # Parity on held-out text and on random ids, both of shapes unseen at export.
        probe = tokenizer([a for a, _ in PARITY_PROBES], [b for _, b in PARITY_PROBES], padding=True, return_tensors="pt")
        probe_shape = tuple(probe["input_ids"].shape)
        if probe_shape[1] == EXPORT_SHAPE[1]:  # make sure the sequence length differs from export
            probe = tokenizer([a for a, _ in PARITY_PROBES], [b for _, b in PARITY_PROBES], padding="max_length",
                              max_length=EXPORT_SHAPE[1] + 5, return_tensors="pt")
        rand_ids = torch.randint(5, vocab, (3, 37), generator=gen)
        rand_mask = torch.ones_like(rand_ids)
        rand_mask[0, 20:] = 0
        session = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
        diffs = []
        for ids, mask in ((probe["input_ids"], probe["attention_mask"]), (rand_ids, rand_mask)):
            with torch.no_grad():
                expected = model(ids, mask).numpy()
            got = session.run(OUTPUT_NAMES, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
            diffs.append(float(np.abs(got - expected).max()))
        max_diff = max(diffs)
        report = {
            "model_dir": str(model_dir), "task": head_info["task"], "labels": head_info["labels"],
            "condition": head_info.get("condition"), "opset": opset, "inputs": INPUT_NAMES, "outputs": OUTPUT_NAMES,
            "dynamic_axes": {"batch": 0, "sequence": 1}, "export_shape": list(EXPORT_SHAPE),
            "parity_shapes": [list(probe["input_ids"].shape), [3, 37]], "max_abs_diff": max_diff,
            "tolerance": tolerance, "parity_passed": max_diff <= tolerance, "export_seconds": round(export_seconds, 2),
            "onnx_bytes": sum(p.stat().st_size for p in tmp.glob("model.onnx*")),
        }
        if max_diff > tolerance:
            raise ExportParityError(f"ONNX parity check failed for {model_dir}: max |onnx - torch| = {max_diff:.3g} "
                                    f"> {tolerance:g} on shapes {report['parity_shapes']}")
        tokenizer.save_pretrained(tmp)
        training = Path(model_dir) / "training.json"
        max_length = read_json(training)["config"]["max_length"] if training.exists() else 512
        # Evaluation truncates as training did.
        write_json(tmp / "labels.json", {"task": head_info["task"], "labels": head_info["labels"],
                                         "condition": head_info.get("condition"), "max_length": max_length})
        write_json(tmp / "export_report.json", report)
        atomic_write_text(tmp / "export_report.md", "# ONNX export\n\n" + markdown_table(
            ["field", "value"], [[k, report[k]] for k in ("task", "condition", "opset", "export_shape", "parity_shapes",
                                                          "max_abs_diff", "tolerance", "parity_passed", "onnx_bytes")]))
        if training.exists():
            shutil.copy(training, tmp / "training.json")
    if md_path:
        atomic_copy(Path(out_dir) / "export_report.md", md_path)
    return report
