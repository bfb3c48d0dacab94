"""Run the compiled-for-Kubeflow pipeline on this machine with kfp.local (SubprocessRunner, no containers)."""

import builtins
import contextlib
import os
import threading
import warnings
from pathlib import Path

from xstilts.errors import XstiltsError
from xstilts import env as xenv

# How many steps run at once. kfp.local itself runs at most 2 iterations of each dsl.ParallelFor at once
# (ParallelExecutor.conservative_max, not a setting): with the tiny preset's three conditions the third waited for a
# whole condition and then ran alone, often on one core. Here every iteration may start, and a semaphore lets at most
# LOCAL_PARALLEL_STEPS step processes run at a time (each ~1 GB of memory): twice the cores, so both cores stay busy
# while a step starts up or writes, but not 9 processes thrashing 2 cores' caches. Each step gets
# cores // LOCAL_PARALLEL_STEPS torch/OpenMP threads (at least 1).
LOCAL_PARALLEL_STEPS = min(8, 2 * (os.cpu_count() or 1))


class PipelineFailed(XstiltsError):
    pass


def default_step_cache() -> Path:
    """Where local runs cache steps unless XSTILTS_STEP_CACHE says otherwise: <cache_dir>/steps (~/.cache/xstilts)."""
    return xenv.cache_dir() / "steps"


@contextlib.contextmanager
def _environ(values: dict):
    """Set (a value) or unset (None) environment variables for the run; the steps inherit them. Restored after."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@contextlib.contextmanager
def _parallel_steps(n: int, fork: bool = True):
    """Let kfp.local start every ParallelFor iteration, run at most `n` step processes at once (see
    LOCAL_PARALLEL_STEPS) and, with `fork`, start them as forks of a warm process (pipelines/forkserver.py). These
    patch kfp.local internals (kfp is pinned in constraints.txt); a kfp without them runs as it does."""
    try:
        from kfp.local import subprocess_task_handler as handler
        from kfp.local.orchestrator.enhanced_dag_orchestrator import ParallelExecutor
    except ImportError:
        yield
        return
    from pipelines.forkserver import ForkServer, parse_command

    original_init, original_run = ParallelExecutor.__init__, handler.run_local_subprocess
    slots = threading.BoundedSemaphore(n)
    server = ForkServer() if fork else None

    def init(self, max_workers=None):
        original_init(self, max_workers)
        if hasattr(self, "conservative_max"):
            self.conservative_max = self.max_workers = max(self.conservative_max, n)

    def run_local_subprocess(full_command, env_vars=None):  # only leaf steps wait here: nested loops cannot deadlock
        with slots:
            step = parse_command(full_command)
            if server is not None and step is not None and server.ready():
                code = server.run(*step, env={**os.environ, **(env_vars or {})}, echo=lambda line: print(line, end=""))
                if code is not None:
                    print("\n")  # as kfp.local does, to end the step's log
                    return code
            return original_run(full_command, env_vars)

    ParallelExecutor.__init__, handler.run_local_subprocess = init, run_local_subprocess
    try:
        yield
    finally:
        ParallelExecutor.__init__, handler.run_local_subprocess = original_init, original_run
        if server is not None:
            server.close()


def run_local(params: dict, workdir: Path, cache: bool = True) -> Path:
    """Run every step locally; returns the report directory (report.html, report.md, heatmap.png, summary.json).

    Checkpoints go to <workdir>/checkpoints (so a killed run resumes), artifacts to <workdir>/kfp/<run>/. With
    `cache`, steps whose inputs, parameters and code are unchanged reuse their cached outputs (xstilts.ops.stepcache)
    from $XSTILTS_STEP_CACHE, default <cache_dir>/steps; without it every step runs.
    """
    from kfp import local

    from pipelines.xstilts import build_pipeline

    workdir = workdir.resolve()
    params = dict(params)

    def absolute(root: str) -> str:  # steps run in other working directories
        return root if root.startswith("hf") or "://" in root else str(Path(root).resolve())

    params["data"] = absolute(params["data"])
    params["task_data"] = {task: absolute(root) for task, root in params["task_data"].items()}
    env = {
        xenv.CHECKPOINTS: str(xenv.checkpoints_dir(default=workdir / "checkpoints")),
        # LOCAL_PARALLEL_STEPS steps share the cores instead of oversubscribing them.
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")
        or str(max(1, (os.cpu_count() or 1) // LOCAL_PARALLEL_STEPS)),
        xenv.STEP_CACHE: str(xenv.step_cache_dir() or default_step_cache()) if cache else None,
    }
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "kfp"),
               raise_on_error=True)
    original_print = builtins.print
    with warnings.catch_warnings(), _environ(env), _parallel_steps(LOCAL_PARALLEL_STEPS, fork=xenv.forkserver_enabled()):
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")  # our image is a Python image
        # GPU, resource and kfp-kubernetes settings are for the cluster; kfp.local says so once per task.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        try:
            run = build_pipeline()(**params)
        except RuntimeError as e:
            raise PipelineFailed(f"the local pipeline failed: {e}. The failing step's log is printed above.") from None
        finally:
            # kfp.local indents subprocess output by swapping builtins.print per task; parallel tasks can restore
            # each other's swapped function, leaving later output indented. Put the real one back.
            builtins.print = original_print
    report_dir = Path(run.outputs["summary"].path)
    latest = workdir / "latest"
    tmp_link = workdir / ".latest.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(report_dir)
    os.replace(tmp_link, latest)
    return report_dir
