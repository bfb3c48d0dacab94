"""TODO docstring (causal)."""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path
import numpy as np
import torch
from torch import nn
from xstilts.errors import ConfigError, ExportParityError
from xstilts.io import atomic_copy, atomic_dir, atomic_write_text, read_json, write_json
from xstilts.io import markdown_table
from xstilts.tasks.registry import GENERATION
from xstilts.models.causal import ARCHITECTURE, LM_DIR, cache_names, cache_shape, lm_dir, load_causal_lm, positions


class KVCacheDecoder(nn.Module):
    """One decoder step over flat tensors (what the exporter and onnxruntime see): the past key/values come in as
    2 × layers tensors, are wrapped in a transformers Cache object for the model, and come out extended by the new
    positions. Returns (last-position logits [batch, vocab], present tensors...). PyTorch generation runs this very
    module, so both backends execute the same computation."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm
        self.layers, self.kv_heads, self.head_dim = cache_shape(lm.config)

    def empty_past(self, batch: int, device=None) -> list[torch.Tensor]:
        dtype = next(self.lm.parameters()).dtype
        return [torch.zeros(batch, self.kv_heads, 0, self.head_dim, dtype=dtype, device=device)
                for _ in range(2 * self.layers)]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.lm.config)
        for layer in range(self.layers):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      past_key_values=cache, use_cache=True, logits_to_keep=1)
        present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
        return (out.logits[:, -1, :], *present)


def load_decoder(model_dir: str | Path) -> tuple[KVCacheDecoder, object, dict]:
    """The KV-cache decoder of a causal model directory (fp32, eval mode), its tokenizer and heads.json."""
    if lm_dir(model_dir) is None:
        raise ConfigError(f"{model_dir} is not a causal model directory (no {LM_DIR}/config.json)")
    lm, tokenizer = load_causal_lm(model_dir)
    info = read_json(Path(model_dir) / "heads.json") if (Path(model_dir) / "heads.json").exists() else {}
    return KVCacheDecoder(lm.float().eval()).eval(), tokenizer, info


PARITY_PROMPTS = [  # prompts of different lengths in several languages: left padding is exercised
    "def add(a, b):\n    ",
    "# Gibt die Summe zurück\ndef summe(zahlen):\n    return ",
    "function countWords(sentence) {\n  ",
]


def export_causal_onnx(model_dir: str | Path, out_dir: str | Path, tolerance: float = 1e-4, opset: int = 18,
                       md_path: str | Path | None = None) -> dict:
    """Export a causal model directory to out_dir/{model.onnx, tokenizer files, task.json, export_report.json/.md}.

    The dynamo exporter (`torch.onnx.export(dynamo=True)`, as for the encoders): it traces transformers' Cache
    objects and the mask construction without changes, and marks batch, sequence, past and total length dynamic,
    so one graph serves prefill (empty past) and decode steps. Parity: the logits and the present key/values at real
    (unpadded) positions must agree with PyTorch within `tolerance` for a left-padded prefill with an empty past,
    a decode step fed that prefill's presents, and random shapes unseen at export; otherwise ExportParityError and
    nothing is written."""
    import onnxruntime as ort

    from xstilts.provenance import Provenance

    provenance = Provenance("export", {"model": model_dir}, {"tolerance": tolerance, "opset": opset})
    decoder, tokenizer, info = load_decoder(model_dir)
    heads = info.get("heads", {})
    if len(heads) != 1:
        raise ConfigError(f"{model_dir} has {len(heads)} tasks ({', '.join(heads) or 'none'}): export needs a "
                          f"target-task model with one generation task")
    task = next(iter(heads))
    layers, kv_heads, head_dim = decoder.layers, decoder.kv_heads, decoder.head_dim
    past_names, present_names = cache_names(layers)
    inputs = ["input_ids", "attention_mask", "position_ids", *past_names]
    outputs = ["logits", *present_names]
    max_positions = decoder.lm.config.max_position_embeddings
    vocab = decoder.lm.config.vocab_size
    gen = torch.Generator().manual_seed(0)

    def random_step(batch: int, new: int, past_length: int):
        """Random ids after a random past, the first row left-padded (its first two positions)."""
        ids = torch.randint(0, vocab, (batch, new), generator=gen)
        mask = torch.ones(batch, past_length + new, dtype=torch.long)
        mask[0, :min(2, past_length + new - 1)] = 0
        past = [torch.randn(batch, kv_heads, past_length, head_dim, generator=gen) for _ in past_names]
        return ids, mask, positions(mask)[:, past_length:], past

    example = random_step(2, 5, 3)
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=1, max=max_positions)
    past_length = torch.export.Dim("past_sequence", min=0, max=max_positions)
    # The mask's length is past + sequence: AUTO lets the exporter derive that relation instead of us naming it.
    dynamic = ({0: batch, 1: sequence}, {0: batch, 1: torch.export.Dim.AUTO}, {0: batch, 1: sequence},
               tuple({0: batch, 2: past_length} for _ in past_names))
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not actionable for users
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(decoder, (example[0], example[1], example[2], *example[3]), input_names=inputs,
                                    output_names=outputs, dynamic_shapes=dynamic, opset_version=opset, dynamo=True,
                                    verbose=False)
        program.save(str(tmp / "model.onnx"))
        export_seconds = time.perf_counter() - started

        session = ort.InferenceSession(str(tmp / "model.onnx"), providers=["CPUExecutionProvider"])
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
        max_diff = max(diffs)
        report = {
            "model_dir": str(model_dir), "task": task, "kind": GENERATION, "condition": info.get("condition"),
            "opset": opset, "exporter": "torch.onnx dynamo", "inputs": inputs, "outputs": outputs,
            "dynamic_axes": {"batch": 0, "sequence": "input_ids/position_ids 1", "past_sequence": "past 2",
                             "total_sequence": "attention_mask 1"},
            "parity_shapes": shapes, "max_abs_diff": max_diff, "tolerance": tolerance,
            "parity_passed": max_diff <= tolerance, "export_seconds": round(export_seconds, 2),
            "onnx_bytes": sum(p.stat().st_size for p in tmp.glob("model.onnx*")),
        }
        if max_diff > tolerance:
            raise ExportParityError(f"ONNX parity check failed for {model_dir}: max |onnx - torch| = {max_diff:.3g} "
                                    f"> {tolerance:g} on steps {shapes}")
        tokenizer.save_pretrained(tmp)
        meta = {"task": task, "kind": GENERATION, "labels": [], "condition": info.get("condition"),
                "settings": info.get("settings") or {"max_length": max_positions}, "outputs": outputs,
                "architecture": ARCHITECTURE,
                "decoder": {"inputs": inputs, "layers": layers, "kv_heads": kv_heads, "head_dim": head_dim,
                            "max_positions": max_positions, "eos_token_id": tokenizer.eos_token_id,
                            "pad_token_id": tokenizer.pad_token_id}}
        write_json(tmp / "task.json", meta)  # generation reads the cache layout and special tokens from here
        write_json(tmp / "export_report.json", report)
        atomic_write_text(tmp / "export_report.md", "# ONNX export (decoder with KV cache)\n\n" + markdown_table(
            ["field", "value"], [[k, report[k]] for k in ("task", "kind", "condition", "opset", "exporter",
                                                          "parity_shapes", "max_abs_diff", "tolerance",
                                                          "parity_passed", "onnx_bytes")]))
        training = Path(model_dir) / "training.json"
        if training.exists():
            shutil.copy(training, tmp / "training.json")
        provenance.record(tmp)
    if md_path:
        atomic_copy(Path(out_dir) / "export_report.md", md_path)
    return report
