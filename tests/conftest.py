"""Shared fixtures: an isolated model cache and checkpoint root, the bundled sample data, and small settings."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["xnli", "xquad", "panx", "tatoeba", "bucc18"]
CONDITIONS = ["none", "mnli", "sst2", "squad", "hellaswag", "ccg"]


@pytest.fixture(scope="session", autouse=True)
def isolated_caches(tmp_path_factory):
    """Keep the tiny model, checkpoints and cached steps out of the user's ~/.cache; one tiny build per test session."""
    cache = tmp_path_factory.mktemp("xstilts-cache")
    os.environ["XSTILTS_CACHE"] = str(cache)
    os.environ["XSTILTS_CHECKPOINTS"] = str(cache / "checkpoints")
    os.environ["XSTILTS_NO_PROGRESS"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("XSTILTS_STEP_CACHE", None)  # local runs cache steps under XSTILTS_CACHE/steps (pipelines/local.py)
    os.environ.pop("XSTILTS_GRAPH_CACHE", None)  # exports trace for themselves unless a test sets a store
    yield cache


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """The bundled sample data, generated afresh (identical to data/sample, see test_dvc.py)."""
    from xstilts.sampledata.generate import write_sample_data

    return write_sample_data(tmp_path_factory.mktemp("data") / "sample")


@pytest.fixture(scope="session")
def dataset(sample_root, tmp_path_factory) -> Path:
    """The validated dataset: a target of every kind and an intermediate task of every trainable kind, in the
    sample's five languages."""
    from xstilts.data.validate import validate_experiment

    out = tmp_path_factory.mktemp("validated")
    validate_experiment(TARGETS, CONDITIONS, str(sample_root), out / "dataset", out / "r.html", out / "r.md",
                        ["en", "de", "es", "fr", "ru"])
    return out / "dataset"


@pytest.fixture(scope="session")
def small_config():
    from xstilts.config import TrainConfig

    return TrainConfig(epochs=3, batch_size=32, learning_rate=1e-3, max_length=64, checkpoint_every=1000, patience=0)


@pytest.fixture(scope="session")
def target_model(dataset, small_config, tmp_path_factory) -> Path:
    """An XNLI model trained from the tiny encoder (the `none` condition)."""
    from xstilts.train.finetune import intermediate_finetune, target_finetune

    root = tmp_path_factory.mktemp("models")
    intermediate_finetune("none", dataset, "tiny", root / "none", small_config)
    target_finetune("xnli", dataset, root / "none", root / "target", small_config)
    return root / "target"


@pytest.fixture(scope="session")
def onnx_model(target_model, tmp_path_factory) -> Path:
    from xstilts.export.encoder import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "onnx"
    export_onnx(target_model, out)
    return out
