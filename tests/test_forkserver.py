"""pipelines/forkserver.py: kfp.local steps run as forks of a warm process, with the same outputs, logs and failures
as kfp.local's own subprocesses; commands of another shape, and steps started before the server is up, run as
kfp.local runs them."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kfp import dsl, local
from kfp.dsl import Input, Output, Dataset

from pipelines import forkserver
from pipelines.forkserver import ForkServer, parse_command
from pipelines.local import _parallel_steps

REPO = Path(__file__).resolve().parents[1]
IMAGE = "python:3.11-slim"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def preloaded(out: Output[Dataset]) -> str:
    """Writes an artifact; says whether torch was imported before the step's code ran (only in a fork)."""
    import os
    import sys

    loaded = "torch" in sys.modules
    with open(out.path, "w") as f:
        f.write(f"{os.environ.get('FORK_TEST_VALUE')}")
    print("step says hello")
    return "fork" if loaded else "fresh"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def read_back(data: Input[Dataset], how: str) -> str:
    with open(data.path) as f:
        return f"{how}:{f.read()}"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fails(how: str):
    import os
    import signal

    if how == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    raise ValueError("this step fails on purpose")


@dsl.pipeline
def two_steps() -> str:
    first = preloaded()
    return read_back(data=first.outputs["out"], how=first.outputs["Output"]).output


@dsl.pipeline
def failing(how: str):
    fails(how=how)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def maybe_cached(out: Output[Dataset]) -> str:
    """A step computed through the step cache; says where its code ran: a fork with torch loaded or without."""
    import sys

    from xstilts.ops.stepcache import lazy, run_cached

    run_cached("probe-test", lazy("xstilts.io:write_json"), inputs={}, outputs={"path": out.path},
               params={"obj": {"value": 1}})
    return "heavy" if "torch" in sys.modules else "light"


@dsl.pipeline
def cached_once() -> str:
    return maybe_cached().outputs["Output"]


def run_pipeline(pipeline, tmp_path, fork=True, probe=False, **args):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    with _parallel_steps(2, fork=fork, probe=probe):
        return pipeline(**args)


def test_parse_command_takes_kfp_step_commands_only():
    spec = next(yaml.safe_load_all((REPO / "pipelines" / "compiled" / "xstilts.yaml").read_text()))
    container = spec["deploymentSpec"]["executors"]["exec-report"]["container"]
    command = [part.replace("python3", sys.executable) for part in container["command"]] + ["--executor_input", "{}",
                                                                                         "--function_to_execute", "report"]
    program, args = parse_command(command)
    assert "def report(" in program and args == ["--executor_input", "{}", "--function_to_execute", "report"]
    assert parse_command(["sh", "-c", "echo hi", "x"]) is None
    assert parse_command([sys.executable, "-m", "kfp.dsl.executor_main"]) is None
    assert parse_command(command[:3]) is None


def test_steps_run_in_forks_with_the_same_outputs(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("FORK_TEST_VALUE", "from the runner's environment")
    assert run_pipeline(two_steps, tmp_path).output == "fork:from the runner's environment"
    assert "step says hello" in capfd.readouterr().out  # the step's output reaches the runner's log


def test_without_fork_steps_are_fresh_interpreters(tmp_path, monkeypatch):
    monkeypatch.setenv("FORK_TEST_VALUE", "x")
    assert run_pipeline(two_steps, tmp_path, fork=False).output == "fresh:x"


@pytest.mark.parametrize("how", ["raises", "killed"])
def test_a_failing_or_killed_step_fails_the_run(tmp_path, capfd, how):
    with pytest.raises(RuntimeError):
        run_pipeline(failing, tmp_path, how=how)
    out = capfd.readouterr().out
    if how == "raises":
        assert "ValueError: this step fails on purpose" in out
    else:
        assert "ended without an exit code" in out


def test_server_exits_when_its_runner_is_gone(tmp_path):
    """A runner killed mid-run leaves no server behind (it polls its parent)."""
    import subprocess

    code = ("import time; from pipelines.forkserver import ForkServer; s = ForkServer(); "
            "print(s.process.pid, flush=True); time.sleep(60)")
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    server_pid = int(runner.stdout.readline())
    runner.kill()
    runner.wait()
    deadline = time.monotonic() + 120  # the server may still be importing: it checks once it listens
    while time.monotonic() < deadline:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{server_pid}/status").exists() and "zombie" in Path(f"/proc/{server_pid}/status").read_text():
            return
        time.sleep(0.5)
    pytest.fail("the fork server outlived its runner")


def test_preload_names_importable_modules_and_the_light_server_no_torch():
    import importlib.util

    for kind in forkserver.PRELOAD:
        for name in forkserver.PRELOAD[kind] + forkserver.LATER[kind]:
            module, _, function = name.partition(":")  # a "module:function" is a warm-up the server calls
            assert importlib.util.find_spec(module) is not None, (kind, name)
            if function:
                assert callable(getattr(importlib.import_module(module), function)), (kind, name)
    light = forkserver.PRELOAD["light"] + forkserver.LATER["light"]
    code = f"import sys; {'; '.join(f'import {name}' for name in light)}; print(sorted({{'torch', 'onnxruntime', " \
           f"'transformers'}} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_the_light_server_warms_every_components_function():
    """Every component names its library function lazily, and the light server finds each of those names."""
    references = forkserver.step_functions()
    for component in (REPO / "components").glob("*.py"):
        source = component.read_text()
        if "run_cached(" in source:
            assert forkserver.LAZY_REFERENCE.search(source), component.name
    assert "xstilts.train.finetune:target_finetune" in references
    assert "xstilts.evaluate.summary:write_summary" in references  # the promotion gate's cached part


def test_a_cached_step_is_restored_without_torch_and_a_miss_computes_with_it(tmp_path, monkeypatch, capfd):
    """With the step cache on, a step first runs in the light server's fork: a miss there ends before computing
    (PROBE_MISS_EXIT) and the step runs again in the heavy server's fork (torch loaded); the re-run is restored in
    the light fork without importing torch."""
    monkeypatch.setenv("XSTILTS_STEP_CACHE", str(tmp_path / "cache"))
    assert run_pipeline(cached_once, tmp_path / "first", probe=True).output == "heavy"
    first = capfd.readouterr().out
    assert "[cache] probe-test: not cached" in first and "[cache] probe-test: stored" in first
    assert run_pipeline(cached_once, tmp_path / "second", probe=True).output == "light"
    assert "[cache] probe-test: reused" in capfd.readouterr().out


def test_a_server_gone_after_ready_runs_the_step_as_a_subprocess(tmp_path, monkeypatch):
    """Between `ready` and the connection the server may die: the step then runs as kfp.local would run it."""
    monkeypatch.setenv("FORK_TEST_VALUE", "y")
    original_run = ForkServer.run

    def server_gone(self, *args, **kwargs):
        self.process.kill()
        self.process.wait()
        os.unlink(self.path)
        return original_run(self, *args, **kwargs)

    monkeypatch.setattr(ForkServer, "run", server_gone)
    assert run_pipeline(two_steps, tmp_path).output == "fresh:y"


def test_priority_slots_give_a_freed_slot_to_trainings_first():
    """Waiting steps take a freed slot by rank (intermediate, target, export, the rest), then in arrival order."""
    import threading

    from pipelines.local import PrioritySlots, step_rank

    assert [step_rank(t) for t in ("intermediate-pass-through", "target-finetune", "export-onnx", "zero-shot-eval",
                                   None)] == [0, 1, 3, 4, 4]
    slots, order = PrioritySlots(1), []

    def step(rank: int, name: str) -> None:
        with slots.slot(rank):
            order.append(name)

    with slots.slot(4):
        threads = []
        for rank, name in ((4, "eval"), (3, "export"), (0, "intermediate"), (1, "target"), (0, "intermediate 2")):
            threads.append(threading.Thread(target=step, args=(rank, name)))
            threads[-1].start()
            while len(slots.waiting) < len(threads):  # queued in this order
                time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["intermediate", "intermediate 2", "target", "export", "eval"]


def test_the_first_export_of_each_target_goes_before_the_other_exports():
    """It traces the graph that its target's other exports wait for (xstilts/export/graphs.py)."""
    from pipelines.local import FIRST_EXPORT_RANK, StepRanks, step_rank

    ranks = StepRanks()
    scope = {"conditions": "none", "target_tasks": "xquad"}
    assert ranks("export-onnx", scope) == FIRST_EXPORT_RANK
    assert ranks("export-onnx", {**scope, "conditions": "mnli"}) == step_rank("export-onnx") > FIRST_EXPORT_RANK
    assert ranks("export-onnx", {**scope, "target_tasks": "xnli"}) == FIRST_EXPORT_RANK
    assert step_rank("target-finetune") < FIRST_EXPORT_RANK
    assert ranks("target-finetune", scope) == step_rank("target-finetune")  # only exports are first of a kind
    assert ranks("export-onnx") == step_rank("export-onnx")  # no target in scope: the plain rank


def test_a_step_fork_skips_torchs_exit_chores_but_not_other_exit_handlers(tmp_path):
    """Unregistering torch.library registrations and dynamo's compile-time table cost each fork time at exit; a
    temporary folder's cleanup (another exit finalizer) still runs."""
    code = ("import sys, tempfile, weakref, torch, torch._dynamo.utils\n"
            "from pipelines.forkserver import _skip_exit_chores\n"
            f"kept = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})\n"
            "_skip_exit_chores()\n"
            "pending = [i.func.__name__ for i in weakref.finalize._registry.values() if i.atexit]\n"
            "print('_del_library' in pending, any(n == 'cleanup' or 'cleanup' in n for n in pending))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
    assert list(tmp_path.iterdir()) == []  # the temporary folder's finalizer ran at exit
