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
    from xstilts.kinds.base import KINDS
    from xstilts.tasks.registry import all_tasks

    out = cli("tasks")
    assert out.returncode == 0, out.stderr
    for task in all_tasks():
        line = next(line for line in out.stdout.splitlines() if f" {task.name} " in line)
        assert task.kind in line and task.metric in line and f"{len(task.languages)}: " in line, line
    for needed in KINDS + ("trained on squad", "local files only", "from the train split", "40: af"):
        assert needed in out.stdout
    qa = cli("tasks", "--kind", "extractive_qa")
    assert qa.returncode == 0 and "xquad" in qa.stdout and "xnli" not in qa.stdout
    assert cli("tasks", "--kind", "nope").returncode != 0


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
    (tmp_path / "p.yaml").write_text("target_tasks: [xnli]\nlearning_rate: 1\n")
    out = cli("run", "--local", "--params", str(tmp_path / "p.yaml"), "--workdir", str(tmp_path / "w"))
    assert out.returncode == 1 and "unknown parameter(s) learning_rate" in out.stderr


def test_params_yaml_equals_the_embedded_defaults():
    from xstilts.config import EMBEDDED_DEFAULTS

    assert yaml.safe_load((REPO / "params.yaml").read_text()) == EMBEDDED_DEFAULTS


def test_presets():
    from xstilts.errors import ConfigError
    from xstilts.config import load_params

    tiny = load_params(preset_name="tiny")
    assert tiny["target_tasks"] == ["xnli", "xquad", "panx", "tatoeba"] and tiny["model_name"] == "tiny"
    grid = load_params(preset_name="xtreme-grid")
    assert len(grid["target_tasks"]) == 9 and len(grid["conditions"]) == 11 and grid["data"] == "hf"
    assert grid["model_name"] == "FacebookAI/xlm-roberta-large" and grid["intermediate_train"]["learning_rate"] == 1e-5
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_params(preset_name="huge")


def test_xtreme_grid_preset_reaches_the_hub_loaders(tmp_path):
    """The paper's grid locally: its licensed CCGbank folder (/mnt/cache/...) is missing, which the parameter check
    says before anything starts; without ccg, offline, the first step's preflight stops at the hub sources (ids from
    the registry) before any training."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = cli("run", "--local", "--preset", "xtreme-grid", "--workdir", str(tmp_path / "runs"), cwd=tmp_path, env=env)
    assert out.returncode == 1 and "task_data.ccg: data folder /mnt/cache/data/ccgbank does not exist" in out.stderr
    assert not (tmp_path / "runs").exists()
    out = cli("run", "--local", "--preset", "xtreme-grid", "--conditions", "none,mnli", "--workdir",
              str(tmp_path / "runs"), cwd=tmp_path, env=env)
    assert out.returncode == 1
    assert "dataset xnli ← facebook/xnli: offline mode is on" in out.stdout + out.stderr
    assert not list(tmp_path.rglob("training.json")) and not list(tmp_path.rglob("manifest.json"))  # nothing trained


FAST = {"intermediate_train": {"epochs": 2, "checkpoint_every": 20}, "target_train": {"epochs": 2, "checkpoint_every": 20}}


def test_local_pipeline_end_to_end(sample_root, tmp_path):
    """`xstilts run --local --preset tiny`: every step through kfp.local; a target of each kind (classification, QA,
    tagging, retrieval) × none and two intermediate tasks; one grid report."""
    (tmp_path / "fast.yaml").write_text(yaml.safe_dump({**FAST, "data": str(sample_root)}))
    env = {k: v for k, v in os.environ.items() if k != "XSTILTS_NO_PROGRESS"}  # as a user sees it
    out = cli("run", "--local", "--preset", "tiny", "--params", str(tmp_path / "fast.yaml"), "--workdir",
              str(tmp_path / "runs"), env=env, timeout=1800)  # minutes on a quiet machine; a loaded one is slower
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report_line = [line for line in out.stdout.splitlines() if line.startswith("report: ")]
    assert report_line, out.stdout[-2000:]
    report = Path(report_line[-1].removeprefix("report: "))
    assert report.exists() and report.name == "report.html"
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["targets"] == ["panx", "tatoeba", "xnli", "xquad"]
    assert summary["conditions"] == ["none", "mnli", "squad"]
    languages = {"xnli": ["en", "de", "es", "fr", "ru"], "panx": ["en", "de", "es", "fr", "ru"],
                 "xquad": ["en", "de", "es", "ru"], "tatoeba": ["de", "es", "fr", "ru"]}
    for task, by_condition in summary["scores"].items():
        for scores in by_condition.values():
            assert list(scores) == languages[task] and all(0 <= s <= 1 for s in scores.values())
    assert set(summary["xtreme_average"]) == {"none", "mnli", "squad"}
    assert set(summary["best_intermediate"]) == set(languages)
    assert summary["seeds"] == [1] and summary["statistics"]["xtreme_average"]["mnli"]["std"] is None  # one seed
    assert "1 seed (1); XTREME average ×100" in out.stdout
    for png in ("grid.png", "heatmap-xquad.png", "heatmap-tatoeba.png"):
        assert (report.parent / png).exists()
    assert (tmp_path / "runs" / "latest" / "report.html").exists()
    # one intermediate model per condition, reused by the four targets; each target trained, exported, evaluated
    run_dir = next((tmp_path / "runs" / "kfp").iterdir())
    steps = [p.relative_to(run_dir).parts for p in run_dir.rglob("*") if p.is_dir() and p.name in STEPS]
    count = {name: sum(1 for parts in steps if parts[-1] == name) for name in STEPS}
    # `none` and the retrieval target (tatoeba) pass through in their own branches (CPU pods on a cluster)
    assert count == {"validate-data": 1, "intermediate-finetune": 2, "intermediate-pass-through": 1,
                     "target-finetune": 9, "target-pass-through-tatoeba": 3, "export-onnx": 12, "zero-shot-eval": 12,
                     "gather-results": 3, "gather-results-2": 3, "report": 1}, count
    # one line per step event, not the steps' output; each step's output in its log, training progress as lines
    assert "Got executor_input" not in out.stdout and "[cache]" not in out.stdout
    assert out.stdout.count(" started ") == 0 and out.stdout.count(" done ") + out.stdout.count(" cached ") == 49
    assert len(out.stdout.splitlines()) < 60 and out.stdout.splitlines()[-1].startswith("report: ")
    logs = run_dir / "logs"
    assert len(list(logs.glob("*.log"))) == 49
    # the live view planned exactly the steps that ran (of each dsl.If/Else, the branch that ran)
    from pipelines.liveview import plan_steps
    from pipelines.xstilts import build_pipeline
    from xstilts.ops.preflight import load_run_params

    planned = plan_steps(build_pipeline().pipeline_spec, load_run_params(tmp_path / "fast.yaml", preset_name="tiny"))
    assert {p.stem for p in logs.glob("*.log")} == {step.name for step in planned}
    assert "::progress stage=train n=" in (logs / "target-finetune-mnli-1-xnli.log").read_text()
    assert "::progress stage=eval n=" in (logs / "zero-shot-eval-squad-1-panx.log").read_text()


STEPS = ("validate-data", "intermediate-finetune", "intermediate-pass-through", "target-finetune",
         "target-pass-through-tatoeba", "export-onnx", "zero-shot-eval", "gather-results", "gather-results-2", "report")


def test_local_pipeline_stops_at_validation_on_bad_data(sample_root, tmp_path):
    import shutil

    shutil.copytree(sample_root, tmp_path / "data")
    with open(tmp_path / "data" / "xnli" / "train.jsonl", "a") as f:
        f.write(json.dumps({"premise": "A.", "hypothesis": "", "label": "unsure"}) + "\n")
    out = cli("run", "--local", "--data", str(tmp_path / "data"), "--conditions", "none,mnli", "--target-tasks", "xnli",
              "--workdir", str(tmp_path / "runs"))
    assert out.returncode == 1
    log = out.stdout + out.stderr
    assert "data validation failed" in log and "label='unsure'" in log and "expect_column_value_lengths_to_be_between(text_b)" in log
    assert "the local pipeline failed at step validate-data" in out.stderr
    run_dir = next((tmp_path / "runs" / "kfp").iterdir())
    assert sorted(p.name for p in run_dir.iterdir()) == ["logs", "resolve-data", "validate-data"]  # nothing downstream ran
    # the failing step's name, its error, the end of its log and the log's path; not the whole output
    step_log = run_dir / "logs" / "validate-data.log"
    report = out.stderr.splitlines()
    start = report.index(next(line for line in report if line.startswith("failed: validate-data (validate data)")))
    assert report[start + 1].startswith("error: ") and "data validation failed" in report[start + 1]
    assert report[start + 2].startswith("last ") and report[start + 2].endswith(" lines of its log:")
    tail = [line.removeprefix("  | ") for line in report[start + 3:] if line.startswith("  | ")]
    # a block of the log, without the `::phase`/`::progress` lines and blank lines the view keeps out of the tail
    log_lines = [line for line in step_log.read_text().split("\n") if line.strip() and not line.startswith("::")]
    assert len(tail) == 40 and any(log_lines[i:i + 40] == tail for i in range(len(log_lines)))
    assert "label='unsure'" in tail[-1] and "Traceback" in step_log.read_text()
    assert f"full log: {step_log}" in report
    assert "Got executor_input" not in log and len(out.stdout.splitlines()) < 10
