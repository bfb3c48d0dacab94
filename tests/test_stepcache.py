"""The local step cache (xstilts.ops.stepcache): misses run and store, hits restore outputs and the return value, and any
change of input content, parameters or code is a miss; `xstilts run --local` twice reuses every cacheable step."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xstilts.ops import stepcache
from xstilts.io import read_json, write_json
from xstilts.ops.stepcache import run_cached

REPO = Path(__file__).resolve().parents[1]
XSTILTS = str(Path(sys.executable).parent / "xstilts")
CACHED_STEPS = ("validate", "intermediate", "target", "export", "evaluate", "gather", "report")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(stepcache.ENV, str(root))
    return root


class Step:
    """A step function: reads a file and a folder, writes a folder and a single file, counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, source, model_dir, out_dir, md_path, scale=1):
        self.calls += 1
        text = Path(source).read_text()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sub").mkdir(exist_ok=True)
        (out / "sub" / "result.txt").write_text(text * scale)
        Path(md_path).write_text(f"# {len(text) * scale}\n")
        return {"length": len(text) * scale, "labels": ("a", "b")}


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "source.txt").write_text("hello")
    (tmp_path / "model").mkdir()
    write_json(tmp_path / "model" / "weights.json", [1, 2, 3])
    return {"source": tmp_path / "source.txt", "model_dir": tmp_path / "model"}


def call(step, inputs, out, scale=1):
    return run_cached("demo", step, inputs=inputs, outputs={"out_dir": out / "out", "md_path": out / "report.md"},
                      params={"scale": scale})


def test_off_without_the_environment_variable(inputs, tmp_path, monkeypatch):
    monkeypatch.delenv(stepcache.ENV, raising=False)
    step = Step()
    assert call(step, inputs, tmp_path / "a") == {"length": 5, "labels": ("a", "b")}  # untouched: not JSON'd
    call(step, inputs, tmp_path / "b")
    assert step.calls == 2


def test_miss_stores_then_hit_restores_outputs_and_result(cache, inputs, tmp_path, capsys):
    step = Step()
    first = call(step, inputs, tmp_path / "run1")
    assert step.calls == 1 and first == {"length": 5, "labels": ["a", "b"]}  # JSON, as a hit returns it
    key = stepcache.step_key("demo", step, inputs, {"out_dir": 1, "md_path": 1}, {"scale": 1})[0]
    assert f"[cache] demo: stored {key}" in capsys.readouterr().out
    entry = cache / f"demo-{key}"
    assert read_json(entry / "entry.json")["stored"] == ["out_dir", "md_path"]

    (tmp_path / "run2" / "out").mkdir(parents=True)
    (tmp_path / "run2" / "out" / "stale.txt").write_text("from before")  # a hit replaces the folder entirely
    second = call(step, inputs, tmp_path / "run2")
    assert step.calls == 1 and second == first
    assert f"[cache] demo: reused {key}" in capsys.readouterr().out
    assert (tmp_path / "run2" / "out" / "sub" / "result.txt").read_text() == "hello"
    assert (tmp_path / "run2" / "report.md").read_text() == "# 5\n"
    assert not (tmp_path / "run2" / "out" / "stale.txt").exists()
    assert not [p for p in (tmp_path / "run2").iterdir() if ".tmp-" in p.name]  # no temp left behind


def test_changed_input_file_param_or_code_is_a_miss(cache, inputs, tmp_path, monkeypatch):
    step = Step()
    call(step, inputs, tmp_path / "r1")
    inputs["source"].write_text("hello!")  # the content changed, not the path
    assert call(step, inputs, tmp_path / "r2")["length"] == 6 and step.calls == 2
    assert call(step, inputs, tmp_path / "r3", scale=2)["length"] == 12 and step.calls == 3
    write_json(inputs["model_dir"] / "weights.json", [1, 2, 4])  # a file inside an input folder
    call(step, inputs, tmp_path / "r4", scale=2)
    assert step.calls == 4
    monkeypatch.setattr(stepcache, "code_fingerprint", lambda func: "changed code")
    call(step, inputs, tmp_path / "r5", scale=2)
    assert step.calls == 5
    call(step, inputs, tmp_path / "r6", scale=2)
    assert step.calls == 5 and len(list(cache.glob("demo-*"))) == 5


def test_code_key_covers_the_modules_the_step_imports_only(tmp_path, monkeypatch):
    """Editing a benchmark, the CLI or the sample generator keeps a step's key; editing a module the step imports
    (transitively, a lazy import too) or a data file of a package it imports changes it."""
    import shutil
    from functools import partial

    from xstilts.data.validate import validate_experiment
    from xstilts.train.distributed import run_data_parallel
    from xstilts.train.finetune import intermediate_finetune

    package = tmp_path / "xstilts"
    shutil.copytree(REPO / "xstilts", package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(stepcache, "PACKAGE_DIR", package)

    def keys():
        stepcache._closure_fingerprint.cache_clear()
        return (stepcache.code_fingerprint(validate_experiment),
                stepcache.code_fingerprint(partial(run_data_parallel, intermediate_finetune)))

    def edit(relative):
        with open(package / relative, "a", encoding="utf-8") as f:
            f.write("\n# edited\n")

    before = keys()
    assert before == keys() and before[0] != before[1]
    for relative in ("bench/eval.py", "cli/main.py", "cli/steps.py", "sampledata/generate.py", "export/encoder.py"):
        edit(relative)
    assert keys() == before  # nothing the two steps import
    edit("models/tiny.py")  # imported by finetune only
    changed = keys()
    assert changed[0] == before[0] and changed[1] != before[1]
    (package / "models" / "corpus" / "tiny-encoder.jsonl").write_text('"another corpus"\n', encoding="utf-8")
    assert keys()[0] == before[0] and keys()[1] != changed[1]  # a data file of xstilts.models
    edit("io.py")  # imported by both
    assert all(a != b for a, b in zip(keys(), before))


def test_key_is_content_not_path_nor_lineage_record(cache, inputs, tmp_path):
    """The same bytes elsewhere hit; an input's lineage.json (timestamps, paths) is not part of its content."""
    step = Step()
    call(step, inputs, tmp_path / "r1")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "source.txt").write_text("hello")
    (moved / "model").mkdir()
    write_json(moved / "model" / "weights.json", [1, 2, 3])
    write_json(moved / "model" / "lineage.json", {"started_at": "another run"})
    call(step, {"source": moved / "source.txt", "model_dir": moved / "model"}, tmp_path / "r2")
    assert step.calls == 1


def test_list_inputs_dataclass_params_and_which_outputs(cache, tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Config:
        epochs: int = 1

    seen = []

    def gather(result_files, out_dir, config, md_path=None):
        seen.append(config)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "all.txt").write_text("".join(Path(f).read_text() for f in result_files))
        if md_path:
            Path(md_path).write_text("md")
        return {"files": len(result_files)}

    files = []
    for i in range(2):
        files.append(tmp_path / f"r{i}.txt")
        files[-1].write_text(str(i))
    for run in ("a", "b"):
        run_cached("gather", gather, inputs={"result_files": files}, outputs={"out_dir": tmp_path / run},
                   params={"config": Config()})
    assert len(seen) == 1 and (tmp_path / "b" / "all.txt").read_text() == "01"
    run_cached("gather", gather, inputs={"result_files": files[::-1]}, outputs={"out_dir": tmp_path / "c"},
               params={"config": Config()})  # another order is another input
    run_cached("gather", gather, inputs={"result_files": files}, outputs={"out_dir": tmp_path / "d"},
               params={"config": Config(epochs=2)})
    # asking for an output the entry does not have (md_path) is another call
    run_cached("gather", gather, inputs={"result_files": files},
               outputs={"out_dir": tmp_path / "e", "md_path": tmp_path / "e.md"}, params={"config": Config()})
    assert len(seen) == 4 and (tmp_path / "e.md").read_text() == "md"


def test_failed_step_stores_nothing_and_broken_entry_reruns(cache, inputs, tmp_path):
    def fails(**_):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_cached("demo", fails, inputs=inputs, outputs={"out_dir": tmp_path / "x"})
    assert not cache.exists() or not any(p.name.startswith("demo-") for p in cache.iterdir())

    step = Step()
    call(step, inputs, tmp_path / "r1")
    entry = next(cache.glob("demo-*"))
    (entry / "outputs" / "md_path").unlink()  # an entry that lost an output it recorded is not used
    call(step, inputs, tmp_path / "r2")
    assert step.calls == 2 and (tmp_path / "r2" / "report.md").exists()


@pytest.mark.parametrize("damage", ["edit result.json, same size", "edit an output, same size", "truncate an output",
                                    "an entry without fingerprints"])
def test_a_corrupt_entry_is_dropped_with_a_warning_and_the_step_recomputed(cache, inputs, tmp_path, capsys, damage):
    step = Step()
    first = call(step, inputs, tmp_path / "r1")
    entry = next(cache.glob("demo-*"))
    result_file, output = entry / "result.json", entry / "outputs" / "out_dir" / "sub" / "result.txt"
    if damage == "edit result.json, same size":
        result_file.write_text(result_file.read_text().replace("5", "9"))
    elif damage == "edit an output, same size":
        output.write_text("jello")
    elif damage == "truncate an output":
        output.write_text("")
    else:
        recorded = read_json(entry / "entry.json")
        del recorded["fingerprints"]
        write_json(entry / "entry.json", recorded)
    capsys.readouterr()
    again = call(step, inputs, tmp_path / "r2")
    log = capsys.readouterr().out
    assert step.calls == 2 and again == first  # recomputed, not the damaged bytes
    assert f"[cache] warning: demo: entry {entry} is corrupt" in log and "dropped, running the step" in log
    assert (tmp_path / "r2" / "out" / "sub" / "result.txt").read_text() == "hello"
    assert call(step, inputs, tmp_path / "r3") == first and step.calls == 2  # the fresh entry is whole again


def test_concurrent_runs_compute_a_step_once(cache, inputs, tmp_path, capsys):
    import threading
    import time

    started = threading.Event()

    class SlowStep(Step):
        def __call__(self, *args, **kwargs):
            started.set()
            time.sleep(1.0)
            return super().__call__(*args, **kwargs)

    step = SlowStep()
    first = threading.Thread(target=call, args=(step, inputs, tmp_path / "a"))
    first.start()
    assert started.wait(30)
    second = call(step, inputs, tmp_path / "b")  # waits for the first run, then reuses its entry
    first.join()
    assert step.calls == 1 and second["length"] == 5
    log = capsys.readouterr().out
    assert "another run is computing" in log and "[cache] demo: reused" in log
    assert (tmp_path / "b" / "out" / "sub" / "result.txt").read_text() == "hello"


def test_compiled_components_cache_all_but_resolve_and_gate():
    """Every step but `resolve data` and the promotion gate goes through run_cached (those two always run, as in
    the compiled pipeline, where their caching is off)."""
    spec = next(yaml.safe_load_all((REPO / "pipelines" / "compiled" / "xstilts.yaml").read_text()))
    sources = {name: "".join(e["container"]["command"]) for name, e in spec["deploymentSpec"]["executors"].items()}
    cached = {name for name, source in sources.items() if "run_cached(" in source}
    assert cached == {"exec-validate-data", "exec-intermediate-finetune", "exec-intermediate-pass-through",
                      "exec-target-finetune", "exec-target-pass-through-bucc18", "exec-target-pass-through-tatoeba",
                      "exec-export-onnx", "exec-zero-shot-eval", "exec-gather-results", "exec-gather-results-2",
                      "exec-report"}
    for step in CACHED_STEPS:
        assert any(f'run_cached("{step}"' in source for source in sources.values()), step


def test_local_run_sets_the_cache_only_for_its_steps(tmp_path, monkeypatch):
    from pipelines.local import _environ, default_step_cache

    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv(stepcache.ENV, raising=False)
    assert default_step_cache() == tmp_path / "c" / "steps"
    with _environ({stepcache.ENV: str(default_step_cache()), "OMP_NUM_THREADS": None}):
        assert stepcache.cache_root() == tmp_path / "c" / "steps" and "OMP_NUM_THREADS" not in os.environ
    assert stepcache.cache_root() is None


def test_local_pipeline_twice_reuses_every_cached_step(sample_root, tmp_path):
    """`xstilts run --local` twice with the same inputs: the second run reuses every step but resolve and the gate,
    and writes the same summary.json; its lineage still audits. Not on a terminal, each run prints a line per step
    event and ends with `report: <path>`; every step's output is in its run's logs/<step>.log."""
    from pipelines.liveview import plan_steps
    from pipelines.xstilts import build_pipeline
    from xstilts.ops.lineage import audit
    from xstilts.ops.preflight import load_run_params

    params = {"data": str(sample_root), "target_tasks": ["xnli", "tatoeba"], "conditions": ["none", "mnli"],
              "languages": ["en", "fr"], "intermediate_train": {"epochs": 1}, "target_train": {"epochs": 1}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, XSTILTS_STEP_CACHE=str(tmp_path / "steps"))
    logs, summaries = [], []
    planned = {step.name for step in plan_steps(build_pipeline().pipeline_spec, load_run_params(tmp_path / "p.yaml"))}
    for run in ("first", "second"):
        out = subprocess.run([XSTILTS, "run", "--local", "--params", str(tmp_path / "p.yaml"), "--workdir",
                              str(tmp_path / run)], cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        lines = out.stdout.splitlines()
        assert len(lines) < 60 and lines[-1].startswith("report: "), out.stdout
        run_dir = next((tmp_path / run / "kfp").iterdir())
        step_logs = {p.stem: p.read_text() for p in (run_dir / "logs").glob("*.log")}
        assert set(step_logs) == STEP_LOGS == planned  # the live view planned the steps that ran
        assert "Got executor_input" in step_logs["target-finetune-mnli-1-xnli"]  # the step's whole output
        assert "Got executor_input" not in out.stdout
        verb = "stored" if run == "first" else "reused"
        assert f"[cache] target: {verb} " in step_logs["target-finetune-mnli-1-xnli"]
        # logs/steps.json (make measure): every step's state and phases; a reused step has only its import phase
        steps = {s["name"]: s for s in json.loads((run_dir / "logs" / "steps.json").read_text())["steps"]}
        assert set(steps) == STEP_LOGS and steps["target-finetune-mnli-1-xnli"]["state"] == ("done" if run == "first"
                                                                                          else "cached")
        assert set(steps["target-finetune-mnli-1-xnli"]["phases"]) == (
            {"import", "load", "compute", "write"} if run == "first" else {"import"})
        assert all(f" {s} " in out.stdout for s in STEP_LOGS)
        logs.append("".join(step_logs.values()))
        report = Path(lines[-1][8:])
        summaries.append(json.loads((report.parent / "summary.json").read_text()))
    assert sum(" cached " in line for line in lines) == 20 and sum(" done " in line for line in lines) == 2
    # 1 validate, 2 intermediate, 2 × 2 target/export/evaluate, 2 + 2 gather (per condition × seed, per condition),
    # 1 report
    expected = {"validate": 1, "intermediate": 2, "target": 4, "export": 4, "evaluate": 4, "gather": 4, "report": 1}
    for verb, log in (("stored", logs[0]), ("reused", logs[1])):
        counts = {step: log.count(f"[cache] {step}: {verb} ") for step in CACHED_STEPS}
        assert counts == expected, (verb, counts)
    assert " stored " not in "".join(line for line in logs[1].splitlines() if "[cache]" in line)
    assert summaries[0] == summaries[1]
    # the promotion gate runs every time; its summary (a bootstrap) is a cached part of it
    assert "[cache] summarize (part of the step): reused " in logs[1]
    assert len(list((tmp_path / "steps").glob("*-*"))) == sum(expected.values()) + 1
    run_dir = next((tmp_path / "second" / "kfp").iterdir())
    assert len(audit(run_dir)) >= sum(expected.values())


# `none` and the retrieval target (tatoeba) pass through in their own branches (CPU pods on a cluster)
STEP_LOGS = {"resolve-data", "validate-data", "promotion-gate", "report", "intermediate-pass-through-none-1",
             "intermediate-finetune-mnli-1", "gather-results-none-1", "gather-results-mnli-1", "gather-results-2-none",
             "gather-results-2-mnli",
             *(f"{step}-{c}-1-{t}" for step in ("export-onnx", "zero-shot-eval") for c in ("none", "mnli")
               for t in ("xnli", "tatoeba")),
             *(f"target-finetune-{c}-1-xnli" for c in ("none", "mnli")),
             *(f"target-pass-through-tatoeba-{c}-1-tatoeba" for c in ("none", "mnli"))}


def test_timings_and_run_paths_do_not_change_the_key(cache, tmp_path):
    """Two runs of a step on the same inputs write the same results but other timings and run folders: the steps
    after them must find the same cache entries."""
    def model(root, seconds, init):
        root.mkdir(parents=True)
        write_json(root / "training.json", {"losses": [1.0, 0.5], "train_seconds": seconds, "init": init,
                                            "dev": [{"score": 0.5, "seconds": seconds}]})
        (root / "weights.bin").write_bytes(b"w")
        write_json(root / "lineage.json", {"started_at": str(seconds)})
        return root

    first = model(tmp_path / "run1" / "model", 12.5, "/runs/run1/intermediate")
    second = model(tmp_path / "run2" / "model", 13.1, "/runs/run2/intermediate")
    assert stepcache.content_md5(first) == stepcache.content_md5(second)
    write_json(second / "training.json", {"losses": [1.0, 0.4], "train_seconds": 13.1, "init": "/x",
                                          "dev": [{"score": 0.5, "seconds": 1}]})
    assert stepcache.content_md5(first) != stepcache.content_md5(second)  # a result changed: a new key
    (second / "weights.bin").write_bytes(b"v")
    (first / "weights.bin").write_bytes(b"v")
    assert stepcache.content_md5(first) != stepcache.content_md5(second)
