"""The training loop's speed and memory levers (TrainConfig padding, token_budget, attention, compile, log_every,
grad_checkpointing) change how fast it runs, not what it computes; and `xstilts bench train` measures them."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xstilts.kinds import base as kinds
from xstilts.bench.train import BASELINE, loss_curve_comparison
from xstilts.data.load import read_split
from xstilts.errors import ConfigError
from xstilts.models.encoder import build_model, load_encoder
from xstilts.models.tiny import ensure_tiny_model
from xstilts.kinds.base import QA
from xstilts.tasks.registry import get_task
from xstilts.config import TrainConfig
from xstilts.train.batching import token_budget_batches
from xstilts.train.loop import train


def test_padded_width_per_padding_mode():
    assert TrainConfig(padding="dynamic").padded_width(37) == 37
    assert TrainConfig(padding="buckets", bucket_multiple=16).padded_width(37) == 48
    assert TrainConfig(padding="buckets", max_length=40).padded_width(37) == 40  # never past max_length
    assert TrainConfig(padding="max_length", max_length=128).padded_width(37) == 128


def test_lever_values_are_checked():
    with pytest.raises(ConfigError, match="'padding': input should be 'dynamic', 'buckets' or 'max_length', got 'static'"):
        TrainConfig.from_dict({"padding": "static"})
    with pytest.raises(ConfigError, match="'compile': input should be 'off', 'on' or 'cuda-graphs'"):
        TrainConfig.from_dict({"compile": "max-autotune"})
    with pytest.raises(ConfigError, match="'compile' needs padding 'buckets' or 'max_length'"):
        TrainConfig.from_dict({"compile": "on"})
    with pytest.raises(ConfigError, match="token_budget.*must hold at least one sequence"):
        TrainConfig.from_dict({"token_budget": 64, "max_length": 128})


def test_token_budget_batches_cover_every_example_once_within_the_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000).tolist()
    config = TrainConfig(padding="buckets", token_budget=2048)
    batches = token_budget_batches(lengths, 2048, config.padded_width, seed=1, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    for batch in batches:
        assert len(batch) * config.padded_width(max(lengths[i] for i in batch)) <= 2048
    other = token_budget_batches(lengths, 2048, config.padded_width, seed=1, epoch=1)
    assert len(other) == len(batches)  # the epoch length is fixed, so the step ↔ data position mapping holds
    assert [b.tolist() for b in other] != [b.tolist() for b in batches]
    # Short sequences share a step with many others: more rows per step than a 32-row batch.
    assert max(len(b) for b in batches) > 32


def test_qa_loss_ignores_padding():
    torch.manual_seed(0)
    start, end = torch.randn(4, 10), torch.randn(4, 10)
    y = torch.tensor([[1, 2], [0, 0], [3, 5], [2, 2]])
    mask = torch.ones(4, 10, dtype=torch.long)
    padded_mask = torch.cat([mask, torch.zeros(4, 6, dtype=torch.long)], 1)
    junk = torch.randn(4, 6) * 5
    base = kinds.loss(QA, (start, end), y, mask)
    padded = kinds.loss(QA, (torch.cat([start, junk], 1), torch.cat([end, junk], 1)), y, padded_mask)
    assert torch.allclose(base, padded, atol=1e-6)


def _no_dropout_model(task):
    """The tiny encoder with a head and every dropout off, so padding changes nothing but float rounding."""
    encoder, tokenizer = load_encoder(str(ensure_tiny_model()))
    torch.manual_seed(0)
    model = build_model(encoder, {task.name: {"kind": task.kind, "labels": ["entailment", "neutral", "contradiction"]}})
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model, tokenizer


def _losses(dataset, tmp_path, name, **levers):
    task = get_task("xnli")
    model, tokenizer = _no_dropout_model(task)
    data = [(task, ("entailment", "neutral", "contradiction"), read_split(dataset, "xnli", "train").head(96), None)]
    config = TrainConfig(max_steps=3, batch_size=32, learning_rate=1e-3, max_length=64, checkpoint_every=10**6,
                         patience=0, **levers)
    metrics = train(model, tokenizer, data, config, tmp_path / name)
    return metrics


@pytest.mark.parametrize("levers", [
    {"padding": "max_length"}, {"padding": "buckets", "bucket_multiple": 16}, {"attention": "eager"},
    {"grad_checkpointing": True}, {"log_every": 2},
], ids=lambda levers: ",".join(f"{k}={v}" for k, v in levers.items()))
def test_levers_keep_the_loss_curve(levers, dataset, tmp_path):
    reference = _losses(dataset, tmp_path, "reference")
    changed = _losses(dataset, tmp_path, "changed", **levers)
    assert len(changed["losses"]) == 3
    np.testing.assert_allclose(changed["losses"], reference["losses"], atol=2e-4)
    if "padding" in levers:
        assert changed["padded_tokens"] > reference["padded_tokens"] >= reference["real_tokens"]
        assert changed["real_tokens"] == reference["real_tokens"]


def test_compiled_loop_keeps_the_loss_curve(dataset, tmp_path):
    """torch.compile (inductor, here on the CPU) with one shape: the same losses, warm-up timed apart."""
    reference = _losses(dataset, tmp_path, "reference", padding="max_length")
    compiled = _losses(dataset, tmp_path, "compiled", padding="max_length", compile="on")
    np.testing.assert_allclose(compiled["losses"], reference["losses"], atol=1e-3)
    assert compiled["distinct_shapes"] == 1 and compiled["warmup_seconds"] > 0


def test_loss_curve_comparison_flags_a_different_curve():
    rng = np.random.default_rng(0)
    curve = np.linspace(1.1, 0.6, 200)
    baseline = (curve + rng.normal(0, 0.05, 200)).tolist()
    same = (curve + rng.normal(0, 0.05, 200)).tolist()
    worse = (curve + 0.1 + rng.normal(0, 0.05, 200)).tolist()
    assert loss_curve_comparison(same, baseline, 20)["within_noise"] is True
    assert loss_curve_comparison(worse, baseline, 20)["within_noise"] is False
    assert loss_curve_comparison(same, baseline, 20)["windows"] == 10


def test_bench_train_prints_the_table_and_writes_json(tmp_path):
    """A small CPU run of the real benchmark: the Trainer baseline and a few loop setups (CUDA ones skipped)."""
    from xstilts.cli.main import app

    out = tmp_path / "bench-train.json"
    # --join 2: rows of ~22 tokens, so buckets pad less than max_length (64) does.
    result = CliRunner().invoke(app, ["bench", "train", "--steps", "6", "--batch-size", "8", "--max-length", "64",
                                      "--join", "2",
                                      "--setups", "loop-fp32-pad-max,+bf16,+buckets,token-budget,qa-384,"
                                      "qa-384+grad-checkpointing", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    rows = {r["setup"]: r for r in report["setups"]}
    assert list(rows) == [BASELINE, "loop-fp32-pad-max", "+bf16", "+buckets", "token-budget", "qa-384",
                          "qa-384+grad-checkpointing"]
    assert rows["+bf16"] == {"setup": "+bf16", "note": "bf16 autocast", "skipped": "needs CUDA"}
    assert rows[BASELINE]["ratio_vs_trainer"] == 1.0 and len(rows[BASELINE]["losses"]) == 6
    for name in ("loop-fp32-pad-max", "+buckets", "token-budget"):
        row = rows[name]
        assert row["steady_samples_per_second"] > 0 and 0 < row["real_token_mfu"] < 1
        assert row["peak_memory_bytes"] > 0 and len(row["losses"]) == 6 and row["loss_curve"]["windows"] >= 1
        assert 0 <= row["dev_accuracy"] <= 1
    # Same rows per step as the Trainer, padded as the Trainer pads: the same samples.
    assert rows["loop-fp32-pad-max"]["samples"] == 6 * 8
    assert rows["loop-fp32-pad-max"]["padded_tokens"] == 6 * 8 * 64
    assert rows["+buckets"]["padded_tokens"] < rows["loop-fp32-pad-max"]["padded_tokens"]
    assert rows["token-budget"]["samples"] > 6 * 8  # a step holds more short rows
    checkpointed = rows["qa-384+grad-checkpointing"]
    assert checkpointed["config"]["grad_checkpointing"] and checkpointed["speed_vs_no_checkpointing"] > 0
    assert "real-token MFU" in result.output and "skipped: needs CUDA" in result.output
