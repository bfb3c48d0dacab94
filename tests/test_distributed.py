"""Data-parallel training: 2 CPU processes (torchrun, gloo) take the same optimizer steps as 1 process with the same
global batch: the same losses and the same final weights."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xstilts.train.distributed import DistributedLaunchError, run_data_parallel, shard
from xstilts.io import read_json
from xstilts.config import TrainConfig

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def train_without_dropout(dataset: str, tasks: list[str], config: TrainConfig, ckpt_dir: str) -> dict:
    """The training loop on the tiny encoder with every dropout off: dropout masks are drawn per rank, so only a
    dropout-free run is exactly reproducible across world sizes."""
    from xstilts.data.load import read_split
    from xstilts.models.encoder import build_model, load_encoder
    from xstilts.models.tiny import ensure_tiny_model
    from xstilts.tasks.registry import get_task
    from xstilts.train.finetune import dataset_labels
    from xstilts.train.loop import seed_everything, train

    tiny = Path(ckpt_dir).parent / "tiny-no-dropout"
    if not tiny.exists():  # rank 0 of the 2-process run finds it made by the 1-process run
        shutil.copytree(ensure_tiny_model(), tiny)
        config_path = tiny / "config.json"
        values = json.loads(config_path.read_text())
        values.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        config_path.write_text(json.dumps(values))
    encoder, tokenizer = load_encoder(str(tiny))
    specs = {}
    for name in tasks:
        task = get_task(name)
        specs[name] = {"kind": task.kind, "labels": list(dataset_labels(dataset, task)), "metric": task.metric}
    seed_everything(config.seed)
    model = build_model(encoder, specs)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    data = [(get_task(n), tuple(specs[n]["labels"]), read_split(dataset, get_task(n).data_task, "train"),
             read_split(dataset, get_task(n).data_task, "validation")) for n in tasks]
    result = train(model, tokenizer, data, config, Path(ckpt_dir))
    return {"losses": result["losses"], "world_size": result["world_size"],
            "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


@pytest.fixture
def importable_tests(monkeypatch):
    """torchrun workers import this module by name: put tests/ and the repo on their path."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")]))


def test_shard_splits_a_batch_into_disjoint_weighted_parts(monkeypatch):
    index = np.arange(7)
    assert shard(index)[0].tolist() == list(range(7)) and shard(index)[1] == 1.0  # one process: everything
    monkeypatch.setenv("WORLD_SIZE", "2")
    parts = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        parts.append(shard(index))
    assert [p.tolist() for p, _ in parts] == [[0, 1, 2, 3], [4, 5, 6]]
    assert [w for _, w in parts] == [4 / 7, 3 / 7]
    monkeypatch.setenv("WORLD_SIZE", "8")  # more ranks than rows: an empty share runs one row with weight 0
    monkeypatch.setenv("RANK", "7")
    part, weight = shard(index)
    assert part.tolist() == [0] and weight == 0.0


@pytest.mark.parametrize("tasks, batch_size, grad_accum", [(["mnli"], 7, 2), (["mnli", "sst2"], 6, 1)])
def test_two_gloo_processes_match_one_process(tasks, batch_size, grad_accum, dataset, tmp_path, importable_tests):
    """Odd shards (4 + 3 rows), gradient accumulation (DDP's no_sync) and multi-task (unused heads) included."""
    config = TrainConfig(max_steps=4, batch_size=batch_size, grad_accum=grad_accum, learning_rate=1e-3,
                         max_length=64, doc_stride=24, max_query_length=24, max_train_examples=60,
                         max_eval_examples=16, patience=0, checkpoint_every=1000)
    kwargs = dict(dataset=str(dataset), tasks=tasks, config=config)
    single = train_without_dropout(**kwargs, ckpt_dir=str(tmp_path / "ckpt-1"))
    double = run_data_parallel(train_without_dropout, 2, **kwargs, ckpt_dir=str(tmp_path / "ckpt-2"))
    assert (single["world_size"], double["world_size"]) == (1, 2)
    assert len(double["losses"]) == 4
    np.testing.assert_allclose(double["losses"], single["losses"], atol=1e-5)
    assert single["weights"].keys() == double["weights"].keys()
    for name, weight in single["weights"].items():
        torch.testing.assert_close(double["weights"][name], weight, atol=1e-5, rtol=1e-4, msg=name)


def test_torchrun_step_writes_one_model(dataset, tmp_path, importable_tests):
    """`torchrun ... xstilts step intermediate`: both ranks train, rank 0 alone writes the model folder."""
    params = tmp_path / "params.yaml"
    params.write_text("intermediate_train: {max_steps: 2, batch_size: 8, max_length: 64, max_train_examples: 40,"
                      " max_eval_examples: 16, checkpoint_every: 1000}\n")
    out = tmp_path / "mnli"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python",
                str(Path(sys.executable).parent / "xstilts")]
    finished = subprocess.run(torchrun + ["step", "intermediate", "--condition", "mnli", "--dataset", str(dataset),
                                          "--out", str(out), "--params", str(params)],
                              cwd=REPO, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    info = read_json(out / "training.json")
    assert info["world_size"] == 2 and info["steps"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnli", "params.yaml"]  # no half-written twin


def test_a_failing_worker_fails_the_launch(tmp_path, importable_tests):
    with pytest.raises(DistributedLaunchError, match="failed under torchrun with 2 processes"):
        run_data_parallel(read_json, 2, path=tmp_path / "missing.json")
