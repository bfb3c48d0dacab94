"""Run the compiled-for-Kubeflow pipeline on this machine with kfp.local (SubprocessRunner, no containers)."""

import builtins
import contextlib
import heapq
import itertools
import os
import re
import subprocess
import sys
import tempfile
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
# How many iterations of one dsl.ParallelFor kfp.local may have in flight (threads that mostly wait for a slot).
# Fewer than a loop's items made its last iterations wait for whole earlier chains: with 3 slots the tiny preset's
# fourth target started its chain only when a first one had finished.
LOOP_ITERATIONS_IN_FLIGHT = 256


# Which waiting step gets a free slot first: trainings head the long chains (intermediate → target → export → eval),
# so they go before the exports and evaluations that other chains have ready; then the order they became ready in.
STEP_RANKS = (("intermediate-", 0), ("target-", 1), ("export-", 3))
LAST_RANK = 4
# The first export of each target task traces its architecture's graph, which that target's other exports wait
# for (xstilts/export/graphs.py): it goes before the other exports. Behind them, the slowest target's trace (QA,
# whose training ends last) started last, and its exports and evaluations were the run's tail.
FIRST_EXPORT_RANK = 2


def step_rank(task: str | None) -> int:
    return next((rank for prefix, rank in STEP_RANKS if (task or "").startswith(prefix)), LAST_RANK)


class StepRanks:
    """step_rank, with FIRST_EXPORT_RANK for the first export of each target task that asks for a slot."""

    def __init__(self):
        self.traced_targets: set = set()
        self.lock = threading.Lock()

    def __call__(self, task: str | None, scope: dict | None = None) -> int:
        rank = step_rank(task)
        target = (scope or {}).get("target_tasks")
        if not (task or "").startswith("export-") or target is None:
            return rank
        with self.lock:
            first = target not in self.traced_targets
            self.traced_targets.add(target)
        return FIRST_EXPORT_RANK if first else rank


class PrioritySlots:
    """At most `n` holders at once; a freed slot goes to the waiting holder of the lowest rank, then the earliest."""

    def __init__(self, n: int):
        self.free = n
        self.waiting: list[tuple[int, int]] = []
        self.tickets = itertools.count()
        self.changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self, rank: int):
        with self.changed:
            ticket = (rank, next(self.tickets))
            heapq.heappush(self.waiting, ticket)
            while self.free == 0 or self.waiting[0] != ticket:
                self.changed.wait()
            heapq.heappop(self.waiting)
            self.free -= 1
            self.changed.notify_all()  # the next in line may take another free slot
        try:
            yield
        finally:
            with self.changed:
                self.free += 1
                self.changed.notify_all()


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
def _parallel_steps(n: int, fork: bool = True, view=None, verbose: bool = True, probe: bool = True):
    """Let kfp.local start every ParallelFor iteration, run at most `n` step processes at once (see
    LOCAL_PARALLEL_STEPS) and, with `fork`, start them as forks of warm processes (pipelines/forkserver.py): with
    `probe` (the step cache on) each step first in a fork of the light server, where a cached step is restored without
    importing torch, and a step that is not cached again in a fork of the heavy server, started at the first such
    step; without `probe` every step in the heavy server's forks. Each step's output lines go to `view`
    (pipelines/liveview.py: its log, its state) and, if `verbose`, to stdout as kfp.local prints them. These patch
    kfp.local internals (kfp is pinned in constraints.txt); a kfp without them runs as it does."""
    try:
        from kfp.local import subprocess_task_handler as handler
        from kfp.local.orchestrator.enhanced_dag_orchestrator import ParallelExecutor
    except ImportError:
        yield
        return
    from pipelines.forkserver import ForkServer, parse_command
    from xstilts.ops.stepcache import NOT_CACHED

    original_init, original_run = ParallelExecutor.__init__, handler.run_local_subprocess
    slots, ranks = PrioritySlots(n), StepRanks()
    servers: dict[str, ForkServer] = {}
    servers_lock = threading.Lock()

    def server(kind: str) -> ForkServer:
        with servers_lock:
            if kind not in servers:
                servers[kind] = ForkServer(kind)
            return servers[kind]

    if fork:  # start now: the first step waits for it
        server("light" if probe else "heavy")

    def init(self, max_workers=None):
        original_init(self, max_workers)
        if hasattr(self, "conservative_max"):  # every iteration in flight: the slots, not the loops, bound the processes
            self.conservative_max = self.max_workers = max(self.conservative_max, LOOP_ITERATIONS_IN_FLIGHT)

    def run_local_subprocess(full_command, env_vars=None):  # only leaf steps wait here: nested loops cannot deadlock
        step = view.current() if view is not None else None

        def echo(line: str) -> None:
            if fork and line.startswith("[cache] ") and f": {NOT_CACHED} (" in line:
                server("heavy")  # a step to compute: more will follow, most of them needing torch & co.
            if view is not None:
                view.step_line(step, line)
            if verbose:
                print(line, end="")

        with slots.slot(ranks(step.plan.task, dict(step.plan.scope)) if step is not None else ranks(None)):
            if view is not None:
                view.step_running(step)
            command = parse_command(full_command)
            step_env = {**os.environ, **(env_vars or {})}
            code = None
            if fork and command is not None and probe and server("light").ready(wait=True):
                code = server("light").run(*command, env={**step_env, xenv.STEP_PROBE: "1"}, echo=echo)
                if code == xenv.PROBE_MISS_EXIT:  # not cached: compute it where torch & co. are loaded
                    code = None
            if code is None and fork and command is not None and server("heavy").ready(wait=True):
                code = server("heavy").run(*command, env=step_env, echo=echo)
            if code is None:
                code = _run_subprocess(full_command, env_vars, echo)
            if verbose:
                print("\n")  # as kfp.local does, to end the step's log
            return code

    ParallelExecutor.__init__, handler.run_local_subprocess = init, run_local_subprocess
    try:
        yield
    finally:
        ParallelExecutor.__init__, handler.run_local_subprocess = original_init, original_run
        for started in servers.values():
            started.close()


@contextlib.contextmanager
def _outer_loop_items():
    """Keep an outer dsl.ParallelFor's item inside a nested loop. kfp.local 2.17 replaces every `...-loop-item` input
    of a nested loop's iteration with the *inner* item, so in conditions → seeds the intermediate step got the seed
    as its condition; inputs that name another loop's item are left to resolve from the parent DAG, as Kubeflow
    does."""
    try:
        from kfp.local.orchestrator import task_spec_utils
    except ImportError:
        yield
        return
    original = task_spec_utils.create_parameter_loop_iteration_task_spec

    def iteration_task_spec(task_spec, loop_item, loop_task_name):
        item_input = (task_spec.parameter_iterator.item_input
                      if task_spec.WhichOneof("iterator") == "parameter_iterator" else None)
        outer = {}
        for name, spec in task_spec.inputs.parameters.items():
            source = spec.component_input_parameter if spec.HasField("component_input_parameter") else ""
            if source.endswith("-loop-item") and source != item_input and f"{loop_task_name}-loop-item" not in source:
                outer[name] = type(spec)()
                outer[name].CopyFrom(spec)
        iteration = original(task_spec, loop_item, loop_task_name)
        for name, spec in outer.items():
            iteration.inputs.parameters[name].CopyFrom(spec)
        return iteration

    task_spec_utils.create_parameter_loop_iteration_task_spec = iteration_task_spec
    try:
        yield
    finally:
        task_spec_utils.create_parameter_loop_iteration_task_spec = original


def _run_subprocess(full_command: list[str], env_vars: dict | None, echo) -> int:
    """kfp.local's run_local_subprocess, its output lines going to `echo`."""
    env = {**os.environ, **env_vars} if env_vars else None
    with subprocess.Popen(full_command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          env=env, errors="replace") as process:
        for line in process.stdout:
            echo(line)
        return process.wait()


@contextlib.contextmanager
def _watched(view, verbose: bool):
    """Tell `view` when each task starts and ends (kfp.local's task dispatcher, on the thread that runs the task);
    unless `verbose`, send kfp.local's own log (task started, its outputs, the pipeline's status) to the view (into
    the task's log) instead of stdout."""
    import logging

    from kfp.local import logging_utils, status, task_dispatcher

    original_run_task = task_dispatcher.run_single_task_implementation
    original_logger, original_line = logging_utils.local_logger_context, logging_utils.print_horizontal_line

    def run_task(*args, **kwargs):
        bound = dict(zip(("pipeline_resource_name", "component_name"), args), **kwargs)
        step = view.step_started(bound["pipeline_resource_name"], bound["component_name"])
        try:
            outputs, task_status = original_run_task(*args, **kwargs)
        except BaseException as e:
            view.step_finished(step, ok=False, error=f"{type(e).__name__}: {e}")
            raise
        view.step_finished(step, ok=task_status == status.Status.SUCCESS)
        return outputs, task_status

    class ToView(logging.Handler):
        def emit(self, record):
            view.log_record(re.sub(r"\x1b\[[0-9;]*m", "", self.format(record)))

    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    task_dispatcher.run_single_task_implementation = run_task
    if not verbose:
        logging_utils.local_logger_context = contextlib.nullcontext
        logging_utils.print_horizontal_line = lambda: None
        handler = ToView()
        handler.setFormatter(logging.Formatter("%(asctime)s - %(levelname)s - %(message)s"))
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        task_dispatcher.run_single_task_implementation = original_run_task
        logging_utils.local_logger_context, logging_utils.print_horizontal_line = original_logger, original_line
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


@contextlib.contextmanager
def _oneof_artifacts():
    """Let kfp.local join artifact outputs of dsl.If/dsl.Else branches (dsl.OneOf): kfp 2.17's local orchestrator
    joins only parameters and fails on an artifact with "Expected 1 artifact in ArtifactSelectorSpec". The pipeline
    runs its pass-throughs (`none`, retrieval targets) in such branches, on CPU pods; the branch that ran produced the
    artifact, as the cluster's OneOf resolves it. Patches a kfp.local internal (kfp is pinned in constraints.txt)."""
    try:
        from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
        from kfp.pipeline_spec import pipeline_spec_pb2
    except ImportError:
        yield
        return
    original = OrchestratorUtils.__dict__["get_dag_output_artifacts"]

    def get_dag_output_artifacts(cls, dag_outputs_spec, io_store):
        single, joined = pipeline_spec_pb2.DagOutputsSpec(), {}
        for key, selectors in dag_outputs_spec.artifacts.items():
            if len(selectors.artifact_selectors) == 1:
                single.artifacts[key].CopyFrom(selectors)
                continue
            produced = []
            for selector in selectors.artifact_selectors:  # only the branch that ran has an output
                try:
                    produced.append(io_store.get_task_output(selector.producer_subtask, selector.output_artifact_key))
                except ValueError:
                    continue
            if len(produced) != 1:
                raise ValueError(f"dsl.OneOf output {key!r}: {len(produced)} of its branches produced it, expected 1")
            joined[key] = produced[0]
        return {**original.__func__(cls, single, io_store), **joined}

    OrchestratorUtils.get_dag_output_artifacts = classmethod(get_dag_output_artifacts)
    try:
        yield
    finally:
        OrchestratorUtils.get_dag_output_artifacts = original


def run_local(params: dict, workdir: Path, cache: bool = True, view: str | None = None) -> Path:
    """Run every step locally; returns the report directory (report.html, report.md, heatmap.png, summary.json).

    Checkpoints go to <workdir>/checkpoints (so a killed run resumes), artifacts to <workdir>/kfp/<run>/, each
    step's output to <workdir>/kfp/<run>/logs/<step>.log and, at the end, every step's state, wall time and phases
    to <workdir>/kfp/<run>/logs/steps.json. With `cache`, steps whose inputs, parameters and code are
    unchanged reuse their cached outputs (xstilts.ops.stepcache) from $XSTILTS_STEP_CACHE, default
    <cache_dir>/steps, and export steps reuse traced ONNX graphs from $XSTILTS_GRAPH_CACHE, default
    <cache_dir>/graphs; without it every step runs and the exports share a graph store of the run's own. `view` (pipelines/liveview.py): `live`
    (a screen that follows the steps; the default on a terminal), `plain` (a line per step event; the default
    otherwise) or `verbose` (every step's output, as kfp.local prints it). A failed run raises PipelineFailed
    after printing the failing step's error, the end of its log and the log's path.
    """
    from kfp import local

    from pipelines import liveview
    from pipelines.xstilts import build_pipeline

    view = view or ("live" if sys.stdout.isatty() else "plain")
    if view not in liveview.MODES:
        raise ValueError(f"view must be one of {liveview.MODES}, not {view!r}")
    verbose = view == "verbose"
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
        # export steps of one architecture trace its graph once (same model.onnx bytes as without the store)
        # (without the cache: a store of this run's own, removed after it)
        xenv.GRAPH_CACHE: str(xenv.graph_cache_dir() or xenv.cache_dir() / "graphs") if cache else None,
        # progress as `::progress` lines the view reads, not bars; --verbose shows the bars as they are
        xenv.PROGRESS_LINES: None if verbose else "1",
    }
    pipeline = build_pipeline()
    steps = liveview.RunView(liveview.plan_steps(pipeline.pipeline_spec, params), workdir / "kfp")
    if view == "plain":
        liveview.PlainLines(steps)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "kfp"),
               raise_on_error=True)
    original_print = builtins.print
    screen = liveview.live(steps) if view == "live" else contextlib.nullcontext()
    failed = None
    run_graphs = None if cache else tempfile.TemporaryDirectory(prefix="xstilts-graphs-")
    if run_graphs is not None:
        env[xenv.GRAPH_CACHE] = run_graphs.name
    with run_graphs or contextlib.nullcontext(), warnings.catch_warnings(), _environ(env), _oneof_artifacts(), \
            _outer_loop_items(), screen, _watched(steps, verbose), \
            _parallel_steps(LOCAL_PARALLEL_STEPS, fork=xenv.forkserver_enabled(), view=steps, verbose=verbose,
                            probe=cache):
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")  # our image is a Python image
        # GPU, resource and kfp-kubernetes settings are for the cluster; kfp.local says so once per task.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        try:
            run = pipeline(**params)
        except RuntimeError as e:
            failed = e
        finally:
            # kfp.local indents subprocess output by swapping builtins.print per task; parallel tasks can restore
            # each other's swapped function, leaving later output indented. Put the real one back.
            builtins.print = original_print
            steps.finish()
            steps.write_steps()  # <run>/logs/steps.json: each step's state, time and phases (pipelines/measure.py)
    if failed is not None:
        report = steps.failure_report()
        step = steps.failed()
        if report is None or step is None:
            raise PipelineFailed(f"the local pipeline failed: {failed}") from None
        print(report, file=sys.stderr, flush=True)
        raise PipelineFailed(f"the local pipeline failed at step {step.name}: {step.error} "
                             f"(its log: {step.log_path})") from None
    if not verbose:
        print(steps.summary() + f"; logs in {steps.logs_dir}", flush=True)
    report_dir = Path(run.outputs["summary"].path)
    latest = workdir / "latest"
    tmp_link = workdir / ".latest.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(report_dir)
    os.replace(tmp_link, latest)
    return report_dir
