import dataclasses
from pathlib import Path
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.torch import load_file

from xstilts.errors import ConfigError
from xstilts.io import read_json
from xstilts.config import TrainConfig
from xstilts.train.batching import length_grouped_batches
from xstilts.train.finetune import target_finetune, intermediate_finetune


def test_config_rejects_unknown_and_badly_typed_keys():
    with pytest.raises(ConfigError, match="unknown training parameter.*lr"):
        TrainConfig.from_dict({"lr": 1e-3})
    with pytest.raises(ConfigError, match="'batch_size': input should be a valid integer"):
        TrainConfig.from_dict({"batch_size": "many"})
    assert TrainConfig.from_dict({"epochs": 2, "learning_rate": "1e-4"}).learning_rate == 1e-4


def test_length_grouped_batches_cover_every_example_once_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000).tolist()
    batches = length_grouped_batches(lengths, 32, seed=1, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.1 * sum(lengths)  # random batches would pad ~1.5x
    assert [b.tolist() for b in batches] == [b.tolist() for b in length_grouped_batches(lengths, 32, 1, 0)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in length_grouped_batches(lengths, 32, 1, 1)]


def test_target_training_learns_and_records_metrics(target_model):
    info = read_json(target_model / "training.json")
    assert info["tasks"] == ["xnli"] and info["steps"] > 0
    assert info["best_dev_score"] > 0.5  # three balanced classes: chance is 1/3
    assert info["losses"][-1] < info["losses"][0]
    heads = read_json(target_model / "heads.json")["heads"]
    assert heads == {"xnli": {"kind": "pair_classification", "labels": ["entailment", "neutral", "contradiction"],
                              "metric": "accuracy"}}


@pytest.mark.parametrize("task, chance", [("squad", 0.05), ("panx", 0.3), ("hellaswag", 0.25), ("ccg", 0.2)])
def test_every_trainable_kind_learns(task, chance, dataset, tmp_path):
    """QA, tagging, multiple choice and an open tag set (CCG) train through the same loop and beat chance on dev."""
    config = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-3, max_length=64, doc_stride=24, max_query_length=24,
                         patience=0, checkpoint_every=1000)
    result = intermediate_finetune(task, dataset, "tiny", tmp_path / task, config)
    assert result["losses"][-1] < result["losses"][0]
    assert result["best_dev_score"] > chance, result["dev_scores"]
    labels = read_json(tmp_path / task / "heads.json")["heads"][task]["labels"]
    if task == "ccg":  # the open tag set comes from the train split
        assert "NP" in labels and labels == sorted(labels)


def test_multitask_training_shares_the_encoder_and_samples_tasks(dataset, tmp_path):
    from xstilts.train.batching import task_probabilities

    assert task_probabilities([300, 100], "proportional", 2.0) == pytest.approx([0.75, 0.25])
    assert task_probabilities([400, 100], "temperature", 2.0) == pytest.approx([2 / 3, 1 / 3])
    config = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-3, max_length=64, doc_stride=24, max_query_length=24,
                         patience=0, checkpoint_every=1000, sampling="temperature", temperature=2.0)
    result = intermediate_finetune("mnli+squad+hellaswag", dataset, "tiny", tmp_path / "multi", config)
    heads = read_json(tmp_path / "multi" / "heads.json")["heads"]
    assert list(heads) == ["mnli", "squad", "hellaswag"]
    assert sorted(p.name for p in (tmp_path / "multi" / "heads").iterdir()) == [
        "hellaswag.safetensors", "mnli.safetensors", "squad.safetensors"]
    assert set(result["sampling"]) == {"mnli", "squad", "hellaswag"} and sum(result["sampling"].values()) == pytest.approx(1)
    assert set(result["dev_scores"][-1][2]) == {"mnli", "squad", "hellaswag"}  # a dev score per task, averaged
    # the target step drops all three heads and trains a new one on the shared encoder
    target_finetune("panx", dataset, tmp_path / "multi", tmp_path / "panx", dataclasses.replace(config, max_steps=3))
    assert list(read_json(tmp_path / "panx" / "heads.json")["heads"]) == ["panx"]
    assert read_json(tmp_path / "panx" / "training.json")["condition"] == "mnli+squad+hellaswag"


def test_retrieval_targets_pass_the_encoder_through(dataset, target_model, tmp_path):
    result = target_finetune("tatoeba", dataset, target_model.parent / "none", tmp_path / "tatoeba", TrainConfig())
    assert result["skipped"] and result["steps"] == 0
    # the restart's seed comes from the intermediate model (`none`, passed through with its train settings' seed)
    assert read_json(tmp_path / "tatoeba" / "heads.json") == {"condition": "none", "seed": 1, "heads": {},
                                                              "task": "tatoeba"}


def test_heads_are_dropped_and_rebuilt(dataset, small_config, tmp_path):
    """An SST-2 (2-label) intermediate model → XNLI (3-label) target: encoder carried over, head rebuilt."""
    config = dataclasses.replace(small_config, max_steps=15, epochs=0)
    intermediate_finetune("sst2", dataset, "tiny", tmp_path / "sst2", config)
    assert load_file(tmp_path / "sst2" / "heads" / "sst2.safetensors")["out_proj.weight"].shape[0] == 2
    # zero learning rate: the target model's encoder must equal the intermediate encoder exactly
    frozen = dataclasses.replace(config, learning_rate=1e-12, max_steps=1)
    target_finetune("xnli", dataset, tmp_path / "sst2", tmp_path / "xnli", frozen)
    assert load_file(tmp_path / "xnli" / "heads" / "xnli.safetensors")["out_proj.weight"].shape[0] == 3
    assert not (tmp_path / "xnli" / "heads" / "sst2.safetensors").exists()
    before = load_file(tmp_path / "sst2" / "encoder" / "model.safetensors")
    after = load_file(tmp_path / "xnli" / "encoder" / "model.safetensors")
    assert before.keys() == after.keys()
    assert max(float((before[k] - after[k]).abs().max()) for k in before) < 1e-6
    assert read_json(tmp_path / "xnli" / "training.json")["condition"] == "sst2"


# Multi-task, so the resumed run must also continue the task-sampling sequence and each task's data position.
TRAIN_SCRIPT = """
import sys
from xstilts.config import TrainConfig
from xstilts.train.finetune import intermediate_finetune
config = TrainConfig(epochs=0, max_steps=240, batch_size=8, learning_rate=5e-4, max_length=48, doc_stride=16,
                     max_query_length=16, checkpoint_every=10, eval_every=80, patience=0, max_eval_examples=40)
print(intermediate_finetune("mnli+squad", sys.argv[1], sys.argv[2], sys.argv[3], config), flush=True)
"""


def test_killed_training_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(dataset, target_model, tmp_path):
    init = "tiny"
    env = dict(os.environ, XSTILTS_CHECKPOINTS=str(tmp_path / "ckpt"))
    cmd = [sys.executable, "-c", TRAIN_SCRIPT, str(dataset), str(init)]
    ckpt_root = tmp_path / "ckpt"

    proc = subprocess.Popen(cmd + [str(tmp_path / "resumed")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpt_root.glob("*/step-00000030")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (tmp_path / "resumed").exists()  # no half-written model

    out = subprocess.run(cmd + [str(tmp_path / "resumed")], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    resumed = read_json(tmp_path / "resumed" / "training.json")
    assert resumed["resumed_from_step"] >= 30 and resumed["steps"] == 240

    env_fresh = dict(env, XSTILTS_CHECKPOINTS=str(tmp_path / "ckpt-fresh"))
    out = subprocess.run(cmd + [str(tmp_path / "fresh")], env=env_fresh, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    a = load_file(tmp_path / "resumed" / "encoder" / "model.safetensors")
    b = load_file(tmp_path / "fresh" / "encoder" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
    assert resumed["losses"] == read_json(tmp_path / "fresh" / "training.json")["losses"]
    assert not any(ckpt_root.iterdir())  # checkpoints are removed once the model is written


def test_early_stopping_keeps_the_best_weights(dataset, tmp_path):
    """With a learning rate too small to change anything, dev accuracy cannot improve: patience 2 stops at the 3rd eval."""
    config = TrainConfig(epochs=5, batch_size=32, learning_rate=1e-12, max_length=48, eval_every=2, patience=2,
                         checkpoint_every=1000)
    intermediate_finetune("none", dataset, "tiny", tmp_path / "none", config)
    result = target_finetune("xnli", dataset, tmp_path / "none", tmp_path / "xnli", config)
    assert result["stopped_early"] and result["steps"] == 6 and result["best_step"] == 2
    assert [step for step, _, _ in result["dev_scores"]] == [2, 4, 6]


def test_gradient_accumulation_counts_optimizer_steps(dataset, tmp_path):
    config = TrainConfig(epochs=1, batch_size=16, grad_accum=3, learning_rate=1e-3, max_length=48, patience=0,
                         max_train_examples=480, checkpoint_every=1000)
    intermediate_finetune("none", dataset, "tiny", tmp_path / "none", config)
    result = target_finetune("xnli", dataset, tmp_path / "none", tmp_path / "xnli", config)
    assert result["train_examples"] == {"xnli": 480} and result["steps"] == 480 // 16 // 3


def test_tiny_model_builds_concurrently_without_clobbering(tmp_path):
    """Parallel branches of a local run build the tiny model at once; every builder gets a complete model."""
    script = "import sys; from pathlib import Path; from xstilts.models.tiny import ensure_tiny_model; print(ensure_tiny_model(Path(sys.argv[1])))"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    paths = {p.communicate(timeout=300)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs) and len(paths) == 1
    model_dir = Path(paths.pop())
    assert (model_dir / "config.json").exists() and (model_dir / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == [model_dir.name]  # no temp dirs left behind


@pytest.mark.parametrize("damage", ["truncate", "edit", "remove"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys, damage):
    """A checkpoint's files are checked against the md5s written with it: a truncated, edited or missing file makes
    the resume skip (and remove) it and use the checkpoint before, instead of crashing every retry."""
    import torch

    from xstilts.train.checkpoint import list_checkpoints, resume_latest, save_checkpoint

    def setup(value: float):
        model = torch.nn.Linear(4, 2)
        torch.nn.init.constant_(model.weight, value)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        return model, optimizer, scheduler

    ckpt = tmp_path / "ckpt"
    for step, value in ((10, 1.0), (20, 2.0)):
        model, optimizer, scheduler = setup(value)
        save_checkpoint(ckpt, step, model, optimizer, scheduler, {"step": step}, None)
    latest = ckpt / "step-00000020"
    weights = latest / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:40])
    elif damage == "edit":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    else:
        (latest / "trainer.pt").unlink()
    model, optimizer, scheduler = setup(0.0)
    path, state, best = resume_latest(ckpt, model, optimizer, scheduler)
    assert path == ckpt / "step-00000010" and state == {"step": 10} and best is None
    assert float(model.weight.detach().mean()) == 1.0
    log = capsys.readouterr().out
    assert f"[checkpoint] warning: {latest} is corrupt" in log and "trying the one before" in log
    assert list_checkpoints(ckpt) == [ckpt / "step-00000010"]
