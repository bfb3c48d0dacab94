"""Export of a causal LM (generation tasks) to ONNX as one decoder step with a KV cache: KVCacheDecoder (the
flat-tensor module that both onnxruntime and PyTorch generation run), load_decoder, and export_causal_onnx
(build the module → torch.onnx export → parity, export/parity.py → write)."""

from __future__ import annotations

import time
from pathlib import Path
import torch
from torch import nn
from xstilts.errors import ConfigError
from xstilts.export import parity
from xstilts.export.common import quiet_exporter, write_export_dir
from xstilts.export.graphs import exported_model
from xstilts.io import atomic_copy, atomic_dir, read_json
from xstilts.progress import phase
from xstilts.provenance import Provenance
from xstilts.tasks.registry import GENERATION
from xstilts.models.causal import ARCHITECTURE, LM_DIR, cache_names, cache_shape, lm_dir, load_causal_lm, positions

REPORT_FIELDS = ("task", "kind", "condition", "opset", "exporter", "parity_shapes", "max_abs_diff", "tolerance",
                 "parity_passed", "onnx_bytes")


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


def generation_task(model_dir: str | Path, info: dict) -> str:
    """The one generation task of a target model directory (export needs exactly one)."""
    heads = info.get("heads", {})
    if len(heads) != 1:
        raise ConfigError(f"{model_dir} has {len(heads)} tasks ({', '.join(heads) or 'none'}): export needs a "
                          f"target-task model with one generation task")
    return next(iter(heads))


def random_steps_from(decoder: KVCacheDecoder):
    """A seeded source of random decoder steps: the export example, then the random parity steps."""
    vocab = decoder.lm.config.vocab_size
    gen = torch.Generator().manual_seed(0)

    def random_step(batch: int, new: int, past_length: int):
        """Random ids after a random past, the first row left-padded (its first two positions)."""
        ids = torch.randint(0, vocab, (batch, new), generator=gen)
        mask = torch.ones(batch, past_length + new, dtype=torch.long)
        mask[0, :min(2, past_length + new - 1)] = 0
        past = [torch.randn(batch, decoder.kv_heads, past_length, decoder.head_dim, generator=gen)
                for _ in range(2 * decoder.layers)]
        return ids, mask, positions(mask)[:, past_length:], past

    return random_step


def dynamic_axes(max_positions: int, past_tensors: int) -> tuple:
    """Batch, sequence, past and total length dynamic: one graph serves prefill (empty past) and decode steps."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=1, max=max_positions)
    past_length = torch.export.Dim("past_sequence", min=0, max=max_positions)
    # The mask's length is past + sequence: AUTO lets the exporter derive that relation instead of us naming it.
    return ({0: batch, 1: sequence}, {0: batch, 1: torch.export.Dim.AUTO}, {0: batch, 1: sequence},
            tuple({0: batch, 2: past_length} for _ in range(past_tensors)))


def export_causal_onnx(model_dir: str | Path, out_dir: str | Path, tolerance: float = 1e-4, opset: int = 18,
                       md_path: str | Path | None = None) -> dict:
    """Export a causal model directory to out_dir/{model.onnx, tokenizer files, task.json, export_report.json/.md}.

    The dynamo exporter (`torch.onnx.export(dynamo=True)`, as for the encoders): it traces transformers' Cache
    objects and the mask construction without changes, and marks batch, sequence, past and total length dynamic,
    so one graph serves prefill (empty past) and decode steps; the graph goes through graphs.exported_model like
    the encoders' (reused from XSTILTS_GRAPH_CACHE when set), without onnxruntime fusions. Parity: the logits and
    the present key/values at real (unpadded) positions must agree with PyTorch within `tolerance` for a
    left-padded prefill with an empty past, a decode step fed that prefill's presents, and random shapes unseen at
    export; otherwise ExportParityError and nothing is written."""
    provenance = Provenance("export", {"model": model_dir}, {"tolerance": tolerance, "opset": opset})
    with phase("load"):
        decoder, tokenizer, info = load_decoder(model_dir)
    task = generation_task(model_dir, info)
    layers, kv_heads, head_dim = decoder.layers, decoder.kv_heads, decoder.head_dim
    past_names, present_names = cache_names(layers)
    inputs = ["input_ids", "attention_mask", "position_ids", *past_names]
    outputs = ["logits", *present_names]
    max_positions = decoder.lm.config.max_position_embeddings
    random_step = random_steps_from(decoder)
    ids, mask, position_ids, past = random_step(2, 5, 3)
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp, quiet_exporter():
        with phase("export"):
            config = {k: v for k, v in decoder.lm.config.to_dict().items() if k != "_name_or_path"}
            program, _ = exported_model(decoder, (ids, mask, position_ids, *past), inputs, outputs,
                                        dynamic_axes(max_positions, len(past_names)), opset,
                                        label=type(decoder).__name__, architecture={"lm_config": config})
            program.save(str(tmp / "model.onnx"))
        export_seconds = time.perf_counter() - started

        with phase("parity"):
            max_diff, shapes = parity.decoder_max_diff(decoder, tokenizer, tmp / "model.onnx", past_names, outputs,
                                                       random_step)
        report = {
            "model_dir": str(model_dir), "task": task, "kind": GENERATION, "condition": info.get("condition"),
            "opset": opset, "exporter": "torch.onnx dynamo", "inputs": inputs, "outputs": outputs,
            "dynamic_axes": {"batch": 0, "sequence": "input_ids/position_ids 1", "past_sequence": "past 2",
                             "total_sequence": "attention_mask 1"},
            "parity_shapes": shapes, "max_abs_diff": max_diff, "tolerance": tolerance,
            "parity_passed": max_diff <= tolerance, "export_seconds": round(export_seconds, 2),
            "onnx_bytes": sum(p.stat().st_size for p in tmp.glob("model.onnx*")),
        }
        parity.require_parity(model_dir, max_diff, tolerance, f"steps {shapes}")
        meta = {"task": task, "kind": GENERATION, "labels": [], "condition": info.get("condition"),
                "seed": info.get("seed"),
                "settings": info.get("settings") or {"max_length": max_positions}, "outputs": outputs,
                "architecture": ARCHITECTURE,
                "decoder": {"inputs": inputs, "layers": layers, "kv_heads": kv_heads, "head_dim": head_dim,
                            "max_positions": max_positions, "eos_token_id": tokenizer.eos_token_id,
                            "pad_token_id": tokenizer.pad_token_id}}
        # Generation reads the cache layout and special tokens from task.json.
        with phase("write"):
            write_export_dir(tmp, model_dir, tokenizer, meta, report, "ONNX export (decoder with KV cache)",
                             REPORT_FIELDS, provenance)
    if md_path:
        atomic_copy(Path(out_dir) / "export_report.md", md_path)
    return report
