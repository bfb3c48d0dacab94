"""Run parameters: the embedded defaults (tiny model, bundled sample data), overridden by params.yaml and the CLI.

params.yaml at the repo root is the same dictionary (DVC reads it too); a test keeps them equal.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError
from .training import TrainConfig

# Tuned so the whole local pipeline runs in minutes on 2 CPU cores and still shows a measurable transfer effect.
TINY_TRAIN = {"epochs": 6, "batch_size": 32, "learning_rate": 1e-3, "warmup_ratio": 0.1, "max_length": 64,
              "eval_every": 0, "patience": 3, "checkpoint_every": 50, "seed": 1}

EMBEDDED_DEFAULTS: dict = {
    "target_task": "xnli",
    "conditions": ["none", "mnli", "sst2"],
    "data": "data/sample",
    "languages": ["en", "de", "es", "fr", "ru"],
    "hf_revision": "",
    "model_name": "tiny",
    "model_revision": "",
    "intermediate_train": dict(TINY_TRAIN),
    "target_train": dict(TINY_TRAIN),
}


def load_params(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Embedded defaults, then the YAML file (if given), then non-None overrides. Unknown keys are errors."""
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in EMBEDDED_DEFAULTS.items()}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"parameter file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of parameter names to values")
        _merge(params, loaded, str(path))
    _merge(params, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    for key in ("intermediate_train", "target_train"):
        TrainConfig.from_dict(params[key])  # fail early, naming the bad key
    for key in ("conditions", "languages"):
        if not isinstance(params[key], list) or not all(isinstance(x, str) for x in params[key]):
            raise ConfigError(f"parameter {key!r} must be a list of strings, got {params[key]!r}")
    if not params["conditions"]:
        raise ConfigError("parameter 'conditions' is empty: give at least one condition (e.g. none)")
    return params


def _merge(params: dict, values: dict, source: str) -> None:
    unknown = sorted(set(values) - set(EMBEDDED_DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(EMBEDDED_DEFAULTS)}")
    for key, value in values.items():
        if isinstance(EMBEDDED_DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: parameter {key!r} must be a mapping, got {value!r}")
            params[key].update(value)
        else:
            params[key] = value


def split_csv(value: str | None) -> list[str] | None:
    """'en,de' → ['en', 'de']; None stays None (not given)."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]
