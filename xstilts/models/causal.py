"""Causal LMs (decoders) for code generation: the model, its tokenizer, training features, and ONNX export with a
KV cache.

A causal model directory (the Model artifact) holds:
  lm/           config.json, model.safetensors and the tokenizer (save_pretrained of an AutoModelForCausalLM)
  heads.json    {"condition", "architecture": "causal_lm", "heads": {task: {"kind": "generation", "labels": []}}}
A target fine-tune loads lm/ again, so intermediate and target training continue the same weights.

`tiny-causal` is the embedded default: a 2-layer Llama-style config built in code (grouped-query attention, tied
embeddings) with a byte-level BPE tokenizer trained deterministically on the sample text plus a small fixed code
corpus. It is saved once into the model cache and then loaded with `from_pretrained`, exactly like a hub model.
On a cluster, CLUSTER_DEFAULT_CAUSAL_MODEL at its pinned revision is the default.

The exported decoder (`model.onnx`) takes input_ids, attention_mask (past + new positions), position_ids and
past_key_values.<i>.key/value ([batch, kv_heads, past, head_dim]) and returns the next-token `logits` of the last
position ([batch, vocab]) and present.<i>.key/value ([batch, kv_heads, past + new, head_dim]). The same graph runs
the prompt (prefill, empty past) and every one-token decode step; only the last position's logits are returned
(HF's `logits_to_keep=1`), as full per-position logits of a real vocabulary would not fit in memory.
"""

from __future__ import annotations

from pathlib import Path
import torch
from torch import nn
from xstilts.errors import ConfigError
from xstilts.io import read_json, write_json
from xstilts.models.tiny import TINY
from xstilts.models.tiny import ensure_tiny_causal_model
from xstilts.models.tiny import TINY_CAUSAL
from xstilts.config import CLUSTER_DEFAULT_CAUSAL_MODEL




LM_DIR = "lm"
ARCHITECTURE = "causal_lm"


def lm_dir(model_dir: str | Path) -> Path | None:
    """The causal LM inside a model directory, or None when it is not a causal model directory."""
    path = Path(model_dir) / LM_DIR
    return path if (path / "config.json").exists() else None


def is_causal(name_or_path: str | Path, revision: str | None = None) -> bool:
    """Whether a model name, hub id or directory is a causal LM (hub ids: by their config's architectures)."""
    name = str(name_or_path)
    if name == TINY_CAUSAL or lm_dir(name) is not None:
        return True
    path = Path(name)
    if name == TINY or (path / "encoder").is_dir():
        return False
    if (path / "config.json").exists():
        return any(a.endswith("ForCausalLM") for a in read_json(path / "config.json").get("architectures") or [])
    if path.exists():
        return False
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name, **({"revision": revision} if revision else {}))
    except (OSError, ValueError):
        return False  # unreachable or unknown: the encoder loader reports it
    return any(a.endswith("ForCausalLM") for a in (config.architectures or []))


def load_causal_lm(name_or_path: str | Path, revision: str | None = None):
    """(model, tokenizer) from `tiny-causal`, a hub id at a revision, a model directory (its lm/) or an lm/ dir.
    The tokenizer pads on the left (batched generation) and has a pad token (eos when the model has none)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    if name == TINY or (Path(name) / "encoder").is_dir():
        raise ConfigError(f"{name!r} is an encoder, but generation tasks need a causal LM: use model_name "
                          f"{TINY_CAUSAL!r} or a hub causal LM such as {CLUSTER_DEFAULT_CAUSAL_MODEL!r}")
    path = ensure_tiny_causal_model() if name == TINY_CAUSAL else (lm_dir(name) or name)
    kwargs = {"revision": revision} if revision and name != TINY_CAUSAL else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise ConfigError(f"cannot load causal LM {name!r}: {e}") from None
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"causal LM {name!r}: its tokenizer has no eos token, so completions cannot end")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: a prompt's first real token is position 0 in any batch."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class CausalLMModel(nn.Module):
    """A causal LM under the training loop's interface: model(task, input_ids, attention_mask) returns next-token
    logits at every position ([batch, sequence, vocab]); every generation task shares the one LM."""

    def __init__(self, lm: nn.Module, kinds: dict[str, str]):
        super().__init__()
        self.lm = lm
        self.kinds = dict(kinds)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask),
                       use_cache=False).logits


def save_causal_model_dir(out: Path, lm: nn.Module, tokenizer, info: dict) -> None:
    """Write a causal model directory (call inside atomic_dir): lm/ (weights, config, tokenizer) and heads.json."""
    lm.save_pretrained(out / LM_DIR)
    tokenizer.save_pretrained(out / LM_DIR)
    write_json(out / "heads.json", {**info, "architecture": ARCHITECTURE})


def cache_shape(config) -> tuple[int, int, int]:
    """(layers, key/value heads, head dim) of a decoder config."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_hidden_layers, getattr(config, "num_key_value_heads", None) or heads, head_dim


def cache_names(layers: int) -> tuple[list[str], list[str]]:
    """ONNX input names of the past and output names of the present key/value tensors, layer-major."""
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return past, [name.replace("past_key_values", "present") for name in past]
