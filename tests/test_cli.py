import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
XSTILTS = str(Path(sys.executable).parent / "xstilts")


def cli(*args, cwd=REPO, timeout=600, env=None):
    return subprocess.run([XSTILTS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_tasks_lists_every_task_with_kind_languages_and_metric():
    out = cli("tasks")
    assert out.returncode == 0, out.stderr
    for needed in ("xnli", "mnli", "sst2", "pair_classification", "single_classification", "accuracy", "15: en"):
        assert needed in out.stdout


@pytest.mark.parametrize("command", [[], ["run"], ["compile"], ["validate"], ["tasks"], ["step", "target"]])
def test_help_explains_parameters(command):
    out = cli(*command, "--help")
    assert out.returncode == 0 and "Usage" in out.stdout


def test_validate_good_and_bad_data(sample_root, tmp_path):
    ok = cli("validate", "--task", "xnli", "--data", str(sample_root), "--languages", "en,fr", "--out", str(tmp_path / "ok"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "ok" / "xnli" / "test.parquet").exists() and (tmp_path / "ok-report.html").exists()

    unknown = cli("validate", "--task", "nope", "--data", str(sample_root), "--out", str(tmp_path / "x"))
    assert unknown.returncode == 1 and "unknown task 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    lang = cli("validate", "--task", "xnli", "--data", str(sample_root), "--languages", "en,zz", "--out", str(tmp_path / "x"))
    assert lang.returncode == 1 and "no language(s) zz" in lang.stderr
    missing = cli("validate", "--task", "xnli", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 1 and "missing file" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_run_requires_local_or_points_to_compile():
    out = cli("run")
    assert out.returncode != 0 and "compile" in out.stderr


def test_bad_params_file_is_a_clear_error(tmp_path):
    (tmp_path / "p.yaml").write_text("target_task: xnli\nlearning_rate: 1\n")
    out = cli("run", "--local", "--params", str(tmp_path / "p.yaml"), "--workdir", str(tmp_path / "w"))
    assert out.returncode == 1 and "unknown parameter(s) learning_rate" in out.stderr


def test_params_yaml_equals_the_embedded_defaults():
    from xstilts.params import EMBEDDED_DEFAULTS

    assert yaml.safe_load((REPO / "params.yaml").read_text()) == EMBEDDED_DEFAULTS


FAST = {"intermediate_train": {"epochs": 2, "checkpoint_every": 20}, "target_train": {"epochs": 2, "checkpoint_every": 20}}


def test_local_pipeline_end_to_end(sample_root, tmp_path):
    """`xstilts run --local`: every step through kfp.local, three conditions, one report."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**FAST, "data": str(sample_root)}))
    env = {k: v for k, v in os.environ.items() if k != "XSTILTS_NO_PROGRESS"}  # as a user sees it
    out = cli("run", "--local", "--params", str(tmp_path / "params.yaml"), "--workdir", str(tmp_path / "runs"), env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report_line = [line for line in out.stdout.splitlines() if line.startswith("report: ")]
    assert report_line, out.stdout[-2000:]
    report = Path(report_line[-1].removeprefix("report: "))
    assert report.exists() and report.name == "report.html"
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["target_task"] == "xnli" and summary["metric"] == "accuracy"
    assert set(summary["conditions"]) == {"none", "mnli", "sst2"}
    for scores in summary["conditions"].values():
        assert list(scores) == ["en", "de", "es", "fr", "ru"] and all(0 <= s <= 1 for s in scores.values())
    assert (report.parent / "heatmap.png").exists() and (tmp_path / "runs" / "latest" / "report.html").exists()
    # every step ran once per condition
    run_dir = next((tmp_path / "runs" / "kfp").iterdir())
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "for-loop-1-iteration-0", "for-loop-1-iteration-1", "for-loop-1-iteration-2", "report", "validate-data"]
    for i in range(3):
        branch = sorted(p.name for p in (run_dir / f"for-loop-1-iteration-{i}").iterdir())
        assert branch == ["export-onnx", "intermediate-finetune", "target-finetune", "zero-shot-eval"]
    assert "step/s" in out.stdout  # training progress is visible


def test_local_pipeline_stops_at_validation_on_bad_data(sample_root, tmp_path):
    import shutil

    shutil.copytree(sample_root, tmp_path / "data")
    with open(tmp_path / "data" / "xnli" / "train.jsonl", "a") as f:
        f.write(json.dumps({"premise": "A.", "hypothesis": "", "label": "unsure"}) + "\n")
    out = cli("run", "--local", "--data", str(tmp_path / "data"), "--conditions", "none,mnli",
              "--workdir", str(tmp_path / "runs"))
    assert out.returncode == 1
    log = out.stdout + out.stderr
    assert "data validation failed" in log and "label='unsure'" in log and "expect_column_value_lengths_to_be_between(text_b)" in log
    assert "the local pipeline failed" in out.stderr
    run_dir = next((tmp_path / "runs" / "kfp").iterdir())
    assert [p.name for p in run_dir.iterdir()] == ["validate-data"]  # nothing downstream ran
