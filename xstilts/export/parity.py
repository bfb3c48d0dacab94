"""ONNX-vs-PyTorch parity: the held-out inputs both exports are checked on, the comparison of the ONNX model
(run by onnxruntime on CPU) with the PyTorch module it came from, and the export report.

Parity is measured on inputs of shapes not used at export (so the dynamic axes are exercised) and only where
outputs are ever read: per-token outputs and cached keys/values at padded positions are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable
import numpy as np
import torch
from xstilts.errors import ExportParityError
from xstilts.io import atomic_write_text, markdown_table, write_json
from xstilts.models.causal import positions
from xstilts.kinds.base import get_spec

PARITY_PROBES = [  # held-out parity inputs in several scripts; batch 5 and their padded length differ from export
    ("Anna has 3 apples in the garden.", "Anna owns 3 apples."),
    ("Marco hat 7 Bücher.", "Marco mag Musik."),
    ("У Omar есть 4 ключей.", "У Omar нет ключей."),
    ("Rosa possède 9 stylos et deux chats dans la maison.", "Rosa a 2 stylos."),
    ("A Lina le gusta el ajedrez.", "Lina tiene 5 cajas."),
]
PARITY_PROMPTS = [  # prompts of different lengths in several languages: left padding is exercised
    "def add(a, b):\n    ",
    "# Gibt die Summe zurück\ndef summe(zahlen):\n    return ",
    "function countWords(sentence) {\n  ",
]


def cpu_session(onnx_path: Path):
    """An onnxruntime session on the CPU provider (what zero-shot evaluation runs)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


def encoder_probes(tokenizer, random_inputs: Callable, choices: int | None, export_length: int) -> list[tuple]:
    """Parity inputs of an encoder: random ids (drawn after the export example from the same generator) and, except
    for multiple choice, the held-out PARITY_PROBES text when its padded length differs from the export's."""
    probes = [random_inputs(3, 37, 20)]
    if not choices:
        text = tokenizer([a for a, _ in PARITY_PROBES], [b for _, b in PARITY_PROBES], padding=True, return_tensors="pt")
        if text["input_ids"].shape[1] != export_length:
            probes.append((text["input_ids"], text["attention_mask"]))
    return probes


def encoder_max_diff(module: torch.nn.Module, onnx_path: Path, probes: list[tuple], outputs: list[str],
                     kind: str) -> float:
    """max |onnx - torch| over every output of every probe."""
    session = cpu_session(onnx_path)
    diffs = []
    for ids, mask in probes:
        with torch.no_grad():
            expected = module(ids, mask)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(outputs, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        valid = mask.bool().numpy()
        for e, g in zip(expected, got):
            e = e.numpy()
            if get_spec(kind).per_token:  # per-token outputs at padded positions are never read
                e, g = e[valid], g[valid]
            diffs.append(float(np.abs(g - e).max()))
    return max(diffs)


def decoder_max_diff(decoder, tokenizer, onnx_path: Path, past_names: list[str], outputs: list[str],
                     random_step: Callable) -> tuple[float, list[dict]]:
    """max |onnx - torch| of the logits and the present key/values at real positions, and the steps compared: a
    left-padded prefill of PARITY_PROMPTS with an empty past, a decode step fed that prefill's presents, and two
    random steps (drawn after the export example from the same generator) of shapes unseen at export."""
    session = cpu_session(onnx_path)
    diffs, shapes = [], []

    def compare(ids, mask, position_ids, past) -> list[np.ndarray]:
        with torch.no_grad():
            expected = [t.numpy() for t in decoder(ids, mask, position_ids, *past)]
        feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "position_ids": position_ids.numpy(),
                **{name: p.numpy() for name, p in zip(past_names, past)}}
        got = session.run(outputs, feed)
        valid = mask.bool().numpy()[:, None, :, None]  # present entries at padded positions are never attended
        diffs.append(float(np.abs(got[0] - expected[0]).max()))
        diffs.extend(float(np.abs(np.where(valid, g - e, 0.0)).max()) for g, e in zip(got[1:], expected[1:]))
        shapes.append({"batch": int(ids.shape[0]), "new": int(ids.shape[1]), "past": int(past[0].shape[2])})
        return expected

    text = tokenizer(PARITY_PROMPTS, padding=True, return_tensors="pt")
    mask = text["attention_mask"]
    prefill = compare(text["input_ids"], mask, positions(mask), decoder.empty_past(len(PARITY_PROMPTS)))
    step_ids = torch.from_numpy(prefill[0].argmax(-1)).unsqueeze(1)  # a decode step fed the prefill's presents
    step_mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
    compare(step_ids, step_mask, step_mask.sum(1, keepdim=True) - 1, [torch.from_numpy(p) for p in prefill[1:]])
    compare(*random_step(3, 1, 11))
    compare(*random_step(1, 6, 0))
    return max(diffs), shapes


def require_parity(model_dir, max_diff: float, tolerance: float, probed: str) -> None:
    """Raise ExportParityError when max |onnx - torch| exceeds `tolerance` (`probed`: what was compared)."""
    if max_diff > tolerance:
        raise ExportParityError(f"ONNX parity check failed for {model_dir}: max |onnx - torch| = {max_diff:.3g} "
                                f"> {tolerance:g} on {probed}")


def write_report(out: Path, report: dict, title: str, fields: tuple[str, ...]) -> None:
    """out/export_report.json (all of `report`) and out/export_report.md (a table of `fields`)."""
    write_json(out / "export_report.json", report)
    atomic_write_text(out / "export_report.md", f"# {title}\n\n" + markdown_table(
        ["field", "value"], [[k, report[k]] for k in fields]))
