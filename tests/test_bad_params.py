"""Bad parameters are refused when they are loaded, each problem named by its key, all of them at once: before the
first step, not inside a traceback an hour into a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.config import TrainConfig, load_params
from xstilts.errors import ConfigError
from xstilts.ops.preflight import check_run_params, load_run_params

REPO = Path(__file__).resolve().parents[1]
XSTILTS = str(Path(sys.executable).parent / "xstilts")


@pytest.mark.parametrize("values, message", [
    ({"seed": -1}, "training parameter 'seed': input should be greater than or equal to 0, got -1"),
    ({"checkpoint_every": 0}, "'checkpoint_every': input should be greater than or equal to 1, got 0"),
    ({"epochs": float("inf")}, "'epochs': input should be a finite number, got inf"),
    ({"learning_rate": float("nan")}, "'learning_rate': input should be a finite number, got nan"),
    ({"learning_rate": 0}, "'learning_rate': input should be greater than 0"),
    ({"grad_checkpointing": "false"}, "'grad_checkpointing': input should be a valid boolean, got 'false'"),
    ({"bf16": 1}, "'bf16': input should be a valid boolean, got 1"),
    ({"warmup_ratio": 5}, "'warmup_ratio': input should be less than 1, got 5"),
    ({"max_length": 1e12}, "'max_length': input should be less than or equal to 131072"),
    ({"batch_size": 8.5}, "'batch_size': input should be a valid integer, got a number with a fractional part"),
    ({"batch_size": 0}, "'batch_size': input should be greater than or equal to 1"),
    ({"sampling": "uniform"}, "'sampling': input should be 'proportional' or 'temperature', got 'uniform'"),
    ({"padding": "left"}, "'padding': input should be 'dynamic', 'buckets' or 'max_length'"),
    ({"epochs": 0}, "training needs epochs > 0 or max_steps > 0"),
    ({"compile": "on"}, "'compile' needs padding 'buckets' or 'max_length'"),
    ({"token_budget": 16, "max_length": 64}, "'token_budget' (16) must hold at least one sequence of max_length 64"),
    ({"lr": 1e-3}, "unknown training parameter(s) lr; known: epochs"),
])
def test_training_parameters(values, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict(values)
    assert message in str(e.value)


def test_training_parameters_from_kubeflow_are_floats():
    config = TrainConfig.from_dict({"batch_size": 8.0, "max_length": 384.0, "epochs": 2, "seed": 1.0})
    assert (config.batch_size, config.max_length, config.seed) == (8, 384, 1) and config.epochs == 2.0
    assert isinstance(config.batch_size, int) and isinstance(config.epochs, float)


def test_a_long_value_is_shown_cut():
    with pytest.raises(ConfigError) as e:
        TrainConfig.from_dict({"sampling": "x" * 50_000_000})
    assert len(str(e.value)) < 400 and "(50,000,002 characters)" in str(e.value)


@pytest.mark.parametrize("overrides, message", [
    ({"conditions": []}, "conditions: list should have at least 1 item"),
    ({"target_tasks": "xnli"}, "target_tasks: input should be a valid list, got 'xnli'"),
    ({"languages": ["en", 3]}, "languages.1: input should be a valid string, got 3"),
    ({"retrieval_layer": True}, "retrieval_layer: value error, a number, not true/false, got True"),
    ({"retrieval_layer": 2.5}, "retrieval_layer: input should be a valid integer, got a number with a fractional part"),
    ({"promotion_tolerance": 57.3}, "promotion_tolerance: input should be less than 1, got 57.3"),
    ({"promotion_tolerance": -3.5}, "promotion_tolerance: input should be greater than or equal to 0, got -3.5"),
    ({"task_data": {"ccg": 5}}, "task_data.ccg: input should be a valid string, got 5"),
    ({"generation": {"beams": 4}}, "generation: unknown generation setting(s) beams"),
    ({"generation": {"top_p": 2}}, "generation: generation setting 'top_p' must be a number in [0, 1], got 2"),
    ({"generation": {"allow_no_isolation": "yes"}}, "generation setting 'allow_no_isolation' must be true or false"),
    ({"intermediate_train": {"seed": -1}}, "intermediate_train.seed: input should be greater than or equal to 0"),
    ({"model_name": ""}, "model_name: string should have at least 1 character"),
])
def test_run_parameters(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_params(None, overrides)
    assert message in str(e.value)


def test_every_problem_is_listed_at_once_with_its_key():
    with pytest.raises(ConfigError) as e:
        load_run_params(None, {"conditions": ["none", "mnli+mnli", "nope", "tatoeba"], "target_tasks": ["xnli", "mnli"],
                               "promotion_targets": ["panx"], "task_data": {"nope": "/tmp"}, "retrieval_layer": 99,
                               "data": "/nowhere/at/all", "promotion_condition": "qqp"})
    text = str(e.value)
    assert text.startswith("parameters: 9 invalid parameter(s):"), text
    for expected in ("target_tasks[1]: 'mnli' is not a cross-lingual target task",
                     "conditions[1]: condition 'mnli+mnli': a multi-task condition joins distinct task names",
                     "conditions[2]: unknown task 'nope'",
                     "conditions[3]: condition 'tatoeba': tatoeba cannot be trained on",
                     "promotion_targets: panx not among the target_tasks (xnli, mnli)",
                     "promotion_condition: 'qqp' is not one of the conditions",
                     "task_data.'nope': unknown task 'nope'",
                     "retrieval_layer: 99 is outside tiny's 2 layers",
                     "data: data folder /nowhere/at/all does not exist"):
        assert expected in text, expected


def test_languages_and_duplicates(tmp_path):
    with pytest.raises(ConfigError, match=r"languages: no selected target task has language\(s\) zz"):
        load_run_params(None, {"languages": ["en", "zz"]})
    with pytest.raises(ConfigError, match="conditions: mnli listed more than once"):
        load_run_params(None, {"conditions": ["none", "mnli", "mnli"]})
    os.mkfifo(tmp_path / "data.fifo")  # a single official file is a valid `data`; a FIFO is not
    with pytest.raises(ConfigError, match=r"data: .*data.fifo is not a folder or a file"):
        load_run_params(None, {"data": str(tmp_path / "data.fifo")})
    load_run_params(None, {"task_data": {"ccg": str(tmp_path / "nowhere")}})  # ccg is read by no task of the run
    with pytest.raises(ConfigError, match="task_data.ccg: data folder .*nowhere does not exist"):
        load_run_params(None, {"task_data": {"ccg": str(tmp_path / "nowhere")}, "conditions": ["none", "ccg"]})
    with pytest.raises(ConfigError, match="hf_revisions.'nope': unknown task 'nope'"):
        load_run_params(None, {"hf_revisions": {"nope": "abc123"}})


def test_cluster_paths_are_not_checked_here():
    params = load_params(None, {"data": "/mnt/cache/data", "task_data": {"ccg": "/mnt/cache/data/ccgbank"}},
                         preset_name="xtreme-grid")
    assert check_run_params(params, local=False) is params
    with pytest.raises(ConfigError, match="task_data.ccg: data folder /mnt/cache/data/ccgbank does not exist"):
        check_run_params(params, local=True)


def test_the_presets_are_valid():
    from xstilts.config import PRESETS

    for name in PRESETS:
        check_run_params(load_params(None, None, name), name, local=False)


@pytest.mark.parametrize("content, message", [
    ("conditions: [none]\nconditions: [mnli]\n", "not valid YAML (line 2, column 1): duplicate key 'conditions'"),
    ("intermediate_train: {seed: 1, seed: 2}\n", "duplicate key 'seed'"),
    ("conditions: [none\n", "not valid YAML"),
    ("- none\n", "expected a mapping of parameter names to values, got list"),
    ("learning_rate: 1\n", "unknown parameter(s) learning_rate"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_bad_params_files(tmp_path, content, message):
    path = tmp_path / "params.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_params(path)
    assert message in str(e.value) and "\n" not in str(e.value).split("invalid parameter")[0]


@pytest.mark.parametrize("kind, message", [
    ("utf16", "is UTF-16 or UTF-32 text: save it as UTF-8"),
    ("binary", "is binary (a NUL byte at offset"),
    ("latin1", "line 2 is not UTF-8 (byte 0xe9"),
    ("folder", "is a folder, not a file"),
    ("fifo", "is not a regular file (a FIFO, socket or device)"),
    ("missing", "does not exist"),
])
def test_unreadable_params_files(tmp_path, kind, message):
    path = tmp_path / "params.yaml"
    if kind == "utf16":
        path.write_bytes("conditions: [none]\n".encode("utf-16"))
    elif kind == "binary":
        path.write_bytes(b"conditions: [none]\n\x00\x01\x02")
    elif kind == "latin1":
        path.write_bytes("conditions: [none]\ndata: caf\xe9\n".encode("latin-1"))
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # opening it would block: it must be refused from its stat
    with pytest.raises(ConfigError) as e:
        load_params(path)
    assert message in str(e.value)


def test_cli_run_refuses_bad_params_before_any_step(tmp_path):
    (tmp_path / "params.yaml").write_text("conditions: [none, mnli+mnli]\nintermediate_train: {seed: -1}\n")
    out = subprocess.run([XSTILTS, "run", "--local", "--params", "params.yaml", "--workdir", "runs"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "intermediate_train.seed" in out.stderr and "conditions[1]" in out.stderr
    assert not (tmp_path / "runs").exists()  # nothing started


@pytest.mark.parametrize("settings, message", [
    ({"memory": "lots"}, "--memory: 'lots' is not a positive Kubernetes quantity"),
    ({"cpu": "-3"}, "--cpu: '-3' is not a positive Kubernetes quantity"),
    ({"cpu": "0"}, "--cpu: '0' is not a positive Kubernetes quantity"),
    ({"cache_pvc": "Bad_Name!"}, "--cache-pvc: 'Bad_Name!' is not a Kubernetes object name"),
    ({"gpus": 0}, "--gpus: must be an integer >= 1, got 0"),
    ({"retries": -1}, "retries: must be an integer >= 0, got -1"),
])
def test_cluster_settings(settings, message):
    from pipelines.xstilts import ClusterSettings

    with pytest.raises(ConfigError) as e:
        ClusterSettings(**settings)
    assert message in str(e.value)


def test_compile_out_must_be_a_yaml_file(tmp_path):
    from pipelines.xstilts import compile_pipeline

    with pytest.raises(ConfigError, match="is a folder: name the pipeline file to write"):
        compile_pipeline(tmp_path)
    with pytest.raises(ConfigError, match="a pipeline file ends in .yaml"):
        compile_pipeline(tmp_path / "pipeline.txt")
    assert list(tmp_path.iterdir()) == []
