"""`make measure` (pipelines/measure.py): its figures and tables from recorded steps.json files (no pipeline runs)."""

import json

import pytest

from pipelines import measure
from xstilts.io import write_json

# What pipelines/liveview.py's RunView.record() writes (shortened): a cold run of four steps and one never started.
COLD = {"run": "xstilts-2026-01-01-00-00-00-000000", "seconds": 30.0, "steps": [
    {"name": "resolve-data", "label": "resolve data", "component": "comp-resolve-data", "scope": [], "state": "done",
     "started": 0.2, "seconds": 1.5, "attempts": 1, "phases": {}},
    {"name": "validate-data", "label": "validate data", "component": "comp-validate-data", "scope": [],
     "state": "done", "started": 1.8, "seconds": 6.0, "attempts": 1,
     "phases": {"import": 1.0, "load": 2.0, "compute": 1.5, "write": 0.5}},
    {"name": "target-finetune-mnli-1-xnli", "label": "target fine-tune", "component": "comp-target-finetune",
     "scope": [["conditions", "mnli"], ["seeds", 1], ["target_tasks", "xnli"]], "state": "done", "started": 8.0,
     "seconds": 20.0, "attempts": 1, "phases": {"import": 1.0, "load": 3.0, "compute": 12.0, "write": 2.0}},
    {"name": "export-onnx-mnli-1-xnli", "label": "export ONNX", "component": "comp-export-onnx",
     "scope": [["conditions", "mnli"], ["seeds", 1], ["target_tasks", "xnli"]], "state": "cached", "started": 7.9,
     "seconds": 2.0, "attempts": 1, "phases": {"import": 0.5, "export": 0.75, "parity": 0.25}},
    {"name": "report", "label": "report", "component": "comp-report", "scope": [], "state": "waiting",
     "started": None, "seconds": 0.0, "attempts": 0, "phases": {}},
]}
CACHED = {"run": "xstilts-2026-01-01-00-01-00-000000", "seconds": 5.0, "steps": [
    {**s, "state": "done" if s["name"] == "resolve-data" else "cached",
     "phases": {"import": 0.5} if s["phases"] else {}, "started": 0.0, "seconds": 1.0} for s in COLD["steps"]]}


def test_rows_phases_and_other():
    rows = measure.step_rows(COLD)
    assert [r["step"] for r in rows] == ["resolve-data", "validate-data", "export-onnx-mnli-1-xnli",
                                         "target-finetune-mnli-1-xnli"]  # by start; the waiting step left out
    assert rows[0]["other"] == 1.5 and rows[0]["phases"] == {}  # no phases reported: all of it is other
    assert rows[1]["other"] == pytest.approx(1.0)
    assert [r["step"] for r in measure.step_rows(COLD, sort="wall")][:2] == ["target-finetune-mnli-1-xnli",
                                                                              "validate-data"]
    assert measure.phase_names(rows) == ["import", "load", "compute", "export", "parity", "write"]
    assert measure.phase_names(measure.step_rows({"steps": [{**COLD["steps"][1], "phases": {"gpu": 1.0, "load": 2.0}}]})) \
        == ["load", "gpu"]  # a phase name this reader does not know comes last
    total = measure.totals(rows)
    assert total["steps"] == 4 and total["wall"] == pytest.approx(29.5)
    assert total["phases"] == pytest.approx({"import": 2.5, "load": 5.0, "compute": 13.5, "export": 0.75,
                                             "parity": 0.25, "write": 2.5})
    assert total["other"] == pytest.approx(29.5 - 24.5)


def test_run_summary_counts_states_and_reused_steps(tmp_path):
    summary = measure.run_summary("cached", 12.3456, CACHED, tmp_path / "cached.log")
    assert summary["wall_seconds"] == 12.346 and summary["steps"] == 5 and summary["reused"] == 4
    assert summary["states"] == {"done": 1, "cached": 4} and summary["log"] == str(tmp_path / "cached.log")
    assert measure.run_line(summary) == ("cached run: 12s wall (12.3 s), 5 steps (4 cached, 1 done), 4 reused from "
                                         "the step cache")
    json.dumps(summary)  # the --json figures


def report():
    return {"runs": {"cold": measure.run_summary("cold", 95.0, COLD), "cached": measure.run_summary("cached", 21.0, CACHED)},
            "environment": {"path": "/x/.venv", "bytes": 5 * 1024 ** 3 + 300 * 1024 ** 2}}


def test_the_printed_tables():
    text = measure.render_text(report())
    lines = text.splitlines()
    assert lines[0] == "cold run: 1:35 wall (95.0 s), 5 steps (1 cached, 3 done, 1 waiting), 1 reused from the step cache"
    assert lines[1].startswith("cached run: 21s wall (21.0 s), 5 steps (4 cached, 1 done), 4 reused")
    header = next(line for line in lines if line.lstrip().startswith("step "))
    assert header.split() == ["step", "state", "start", "wall", "import", "load", "compute", "export", "parity",
                              "write", "other"]
    row = next(line for line in lines if line.startswith("target-finetune-mnli-1-xnli"))
    assert row.split() == ["target-finetune-mnli-1-xnli", "done", "8.0", "20.0", "1.0", "3.0", "12.0", "2.0", "2.0"]
    resolve = next(line for line in lines if line.startswith("resolve-data"))
    assert resolve.split() == ["resolve-data", "done", "0.2", "1.5", "1.5"]  # no phases: empty cells, all other
    footer = next(line for line in lines if line.startswith("all 4 steps"))
    assert footer.split()[3:] == ["29.5", "2.5", "5.0", "13.5", "0.8", "0.2", "2.5", "5.0"]
    cold = lines[lines.index("cold run, phases over all steps:") + 2:lines.index("cached run, phases over all steps:")]
    shares = {line.split()[0]: line.split()[1:] for line in cold if line}
    assert shares["compute"] == ["13.5", "46", "%"] and shares["other"] == ["5.0", "17", "%"]
    assert "cached run, phases over all steps:" in lines
    assert lines[-1] == "installed environment: 5.3 GiB (/x/.venv)"


def test_the_steps_file_is_found_from_the_last_line_or_the_newest(tmp_path):
    logs = tmp_path / "kfp" / COLD["run"] / "logs"
    write_json(logs / "steps.json", COLD)
    output = f"     9s done     report in 1.0s\n49 steps in 1:35: 49 done; logs in {logs}\nreport: /x/report.html\n"
    assert measure.find_steps_file(output, tmp_path, after=0) == logs / "steps.json"
    assert measure.find_steps_file("no summary line\n", tmp_path, after=0) == logs / "steps.json"
    assert measure.find_steps_file("no summary line\n", tmp_path, after=(logs / "steps.json").stat().st_mtime + 60) \
        is None  # an older run's file is not this run's


def test_clear_workdir_removes_only_what_a_measurement_leaves(tmp_path):
    for name in ("kfp/run/logs", "checkpoints/a"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "cold.log").write_text("x")
    (tmp_path / "latest").symlink_to(tmp_path / "kfp")
    (tmp_path / "measure.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / measure.MARKER).touch()
    measure.clear_workdir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [measure.MARKER, "measure.json", "notes.txt"]


def test_clear_workdir_refuses_a_folder_it_did_not_make(tmp_path):
    """A user's own workdir (their runs) is never cleared: only one that a measurement made, or an empty one."""
    (tmp_path / "runs" / "kfp" / "run").mkdir(parents=True)
    with pytest.raises(SystemExit, match="was not made by `make measure`"):
        measure.clear_workdir(tmp_path / "runs")
    assert (tmp_path / "runs" / "kfp" / "run").is_dir()
    measure.clear_workdir(tmp_path / "new")
    assert (tmp_path / "new" / measure.MARKER).is_file()


def test_environment_size_counts_hard_links_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10000)
    (tmp_path / "b").hardlink_to(tmp_path / "a")
    one = measure.environment_size(tmp_path)["bytes"]
    (tmp_path / "c").write_bytes(b"x" * 10000)
    assert 0 < one < measure.environment_size(tmp_path)["bytes"]
