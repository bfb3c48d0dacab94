"""Models are a shared encoder plus a task head (jiant-style).

A model directory (the Model artifact) holds:
  encoder/      config.json, model.safetensors and the tokenizer (save_pretrained)
  heads/<task>.safetensors      one head per trained task (none for the `none` baseline)
  heads.json                    {"condition", "heads": {task: {"kind", "labels"}}}
Target fine-tuning loads encoder/ only, so intermediate heads are dropped and a new head is built.

`tiny` is the embedded default: an XLM-R-architecture encoder built from a small config, with a tokenizer
trained deterministically on the sample data. It is saved once into a cache directory and then loaded with
`from_pretrained`, exactly like a hub model.
"""

from __future__ import annotations

from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from xstilts.errors import ConfigError
from xstilts.kinds.base import get_spec
from xstilts.io import read_json, write_json  # cache_dir: re-exported
from xstilts.models.tiny import ensure_tiny_model
from xstilts.models.tiny import TINY


def resolve_pretrained(model_name: str, revision: str | None = None) -> tuple[str, str | None]:
    """Map a model name to something from_pretrained accepts."""
    if model_name == TINY:
        return str(ensure_tiny_model()), None
    return model_name, revision


def load_encoder(name_or_path: str, revision: str | None = None):
    """(encoder, tokenizer) from a hub id, a local dir, or `tiny`. Pooling layers are not used."""
    from transformers import AutoModel, AutoTokenizer

    path, revision = resolve_pretrained(name_or_path, revision)
    kwargs = {"revision": revision} if revision else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        encoder = AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except OSError as e:
        raise ConfigError(f"cannot load pretrained model {name_or_path!r}: {e}") from None
    return encoder, tokenizer


def new_head(kind: str, hidden_size: int, num_labels: int, dropout: float) -> nn.Module:
    """A fresh head for a task of `kind` (the kind spec's; head classes in xstilts.kinds.heads)."""
    return get_spec(kind).new_head(hidden_size, num_labels, dropout)


class MultiTaskModel(nn.Module):
    """A shared encoder plus one head per task (a single-task model is the one-head case)."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module], kinds: dict[str, str]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.kinds = dict(kinds)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        # The kind decides how inputs reach the head (multiple choice: [batch, choices, seq] flattened, then regrouped).
        return get_spec(self.kinds[task]).head_forward(self.encoder, self.heads[task], input_ids, attention_mask)


def build_model(encoder: nn.Module, head_specs: dict[str, dict]) -> MultiTaskModel:
    """head_specs: task → {"kind", "labels"} (as saved in heads.json)."""
    hidden, dropout = encoder.config.hidden_size, encoder.config.hidden_dropout_prob
    heads = {name: new_head(spec["kind"], hidden, len(spec["labels"]), dropout) for name, spec in head_specs.items()}
    return MultiTaskModel(encoder, heads, {name: spec["kind"] for name, spec in head_specs.items()})


def save_model_dir(out: Path, encoder: nn.Module, tokenizer, model: MultiTaskModel | None = None,
                   info: dict | None = None) -> None:
    """Write a model directory (call inside atomic_dir): encoder/, heads/<task>.safetensors, heads.json."""
    encoder.save_pretrained(out / "encoder")
    tokenizer.save_pretrained(out / "encoder")
    if model is not None:
        (out / "heads").mkdir()
        for name, head in model.heads.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()},
                      out / "heads" / f"{name}.safetensors")
    write_json(out / "heads.json", info or {"heads": {}})


def load_model(model_dir: str | Path, task: str | None = None) -> tuple[MultiTaskModel, object, dict]:
    """Encoder plus trained head(s) from a model directory (only `task`'s head when given), for export and eval."""
    model_dir = Path(model_dir)
    if not (model_dir / "heads.json").exists() or not (model_dir / "encoder" / "config.json").exists():
        raise ConfigError(f"{model_dir} is not a model directory (no heads.json or encoder/config.json)")
    info = read_json(model_dir / "heads.json")
    specs = info.get("heads", {})
    if task is not None:
        if task not in specs:
            raise ConfigError(f"{model_dir} has no {task!r} head (heads: {', '.join(specs) or 'none'})")
        specs = {task: specs[task]}
    encoder, tokenizer = load_encoder(str(model_dir / "encoder"))
    model = build_model(encoder, specs)
    for name, head in model.heads.items():
        head.load_state_dict(load_file(model_dir / "heads" / f"{name}.safetensors"))
    return model.eval(), tokenizer, info


def pooling_layer(config, layer: int) -> int:
    """Index into hidden_states for a retrieval layer: 1..N counts transformer layers, negatives count from the
    end (-1 = last), 0 means the middle layer (N // 2), as XTREME's retrieval baselines use a middle layer."""
    n = config.num_hidden_layers
    index = n // 2 if layer == 0 else (n + 1 + layer if layer < 0 else layer)
    if not 1 <= index <= n:
        raise ConfigError(f"retrieval_layer {layer} is outside the model's {n} layers (use 1..{n}, -1..-{n} or 0)")
    return index


class MeanPooledEncoder(nn.Module):
    """Retrieval: the mask-weighted mean of one layer's hidden states (the embedding exported to ONNX)."""

    def __init__(self, encoder: nn.Module, layer: int):
        super().__init__()
        self.encoder = encoder
        self.index = pooling_layer(encoder.config, layer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
        mask = attention_mask.unsqueeze(-1).to(states[self.index].dtype)
        return (states[self.index] * mask).sum(1) / mask.sum(1).clamp(min=1.0)
