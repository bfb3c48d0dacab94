"""The TrainJob launcher through the kubeflow SDK's local process backend: a real (tiny) torchrun training step
succeeds and writes its model; a failing step makes the launcher raise with the job's log tail."""

import sys
from pathlib import Path

import pytest
from kfp.dsl import Dataset, Metrics, Model

from components.trainjob_launcher import trainjob_launcher
from xstilts.io import read_json
from xstilts.ops.trainjob import TrainJobError, TrainJobSettings, launch_trainjob, torchrun_command

VENV_BIN = Path(sys.executable).parent


def local_settings(**env) -> TrainJobSettings:
    # torchrun and xstilts from this venv; PET_* is how the torch-distributed runtime configures torchrun.
    path = f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
    return TrainJobSettings(backend="local", poll_s=1, timeout_s=600, env={"PATH": path, **env})


def test_launcher_component_runs_a_two_process_intermediate_trainjob(dataset, tmp_path):
    """The component (as Kubeflow calls it) sends the dataset through the shared folder to a 2-process torchrun job
    on the local backend; the model and its metrics come back, and the job's working folder is removed."""
    model, metrics = (cls(name=name, uri=str(tmp_path / name), metadata={}) for cls, name in ((Model, "model"),
                                                                                         (Metrics, "metrics")))
    train = {"max_steps": 2, "batch_size": 8, "max_length": 64, "max_train_examples": 40, "max_eval_examples": 16,
             "checkpoint_every": 1000}
    settings = local_settings(PET_NPROC_PER_NODE="2")
    trainjob_launcher.python_func(condition="sst2", seed=3, dataset=Dataset(name="d", uri=str(dataset), metadata={}),
                                  model_name="tiny", model_revision="", train_params=train, model=model,
                                  metrics=metrics, image="unused-locally", num_nodes=1, gpus_per_node=0,
                                  shared_mount=str(tmp_path / "shared"), env=settings.env, backend="local")
    info = read_json(tmp_path / "model" / "training.json")
    assert info["tasks"] == ["sst2"] and info["steps"] == 2 and info["world_size"] == 2 and info["seed"] == 3
    assert (tmp_path / "model" / "heads.json").exists()
    assert metrics.metadata["steps"] == 2 and metrics.metadata["world_size"] == 2
    assert model.metadata["trainjob"] and model.metadata["condition"] == "sst2"
    assert list((tmp_path / "shared" / "trainjobs").iterdir()) == []


def test_a_failing_trainjob_raises_with_its_log(dataset, tmp_path):
    command = torchrun_command(["step", "intermediate", "--condition", "no-such-task", "--dataset", str(dataset),
                                "--out", str(tmp_path / "model")])
    with pytest.raises(TrainJobError, match=r"(?s)TrainJob \w+ failed .*no-such-task"):
        launch_trainjob(command, local_settings())
    assert not (tmp_path / "model").exists()


def test_settings_are_checked_before_submitting():
    with pytest.raises(TrainJobError, match="backend must be one of kubernetes, local"):
        launch_trainjob(["true"], TrainJobSettings(backend="slurm"))
    with pytest.raises(TrainJobError, match="num_nodes must be >= 1"):
        launch_trainjob(["true"], TrainJobSettings(num_nodes=0))


def test_the_none_condition_passes_through_without_a_trainjob(dataset, tmp_path):
    from xstilts.ops.trainjob import intermediate_trainjob
    from xstilts.config import TrainConfig

    # A backend that cannot submit anything: the `none` branch must not try.
    result = intermediate_trainjob("none", dataset, "tiny", tmp_path / "model", TrainConfig(),
                                   settings=TrainJobSettings(backend="slurm"))
    assert result["trainjob"] is None and result["skipped"]
    assert (tmp_path / "model" / "encoder" / "config.json").exists()
