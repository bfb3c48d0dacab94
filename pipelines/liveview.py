"""What `xstilts run --local` shows while the pipeline runs, and each step's log.

kfp.local prints every step's executor input, its output artifacts and its whole output, indented per task (about
10,000 lines for the tiny grid). Here pipelines/local.py hands each step's output lines and kfp.local's own log
records to a RunView instead, which

  - writes each step's full output to <pipeline_root>/<run>/logs/<step>.log, the step named by its task and loop
    items (`target-finetune-mnli-xnli.log`);
  - keeps each step's state (waiting, running, cached, done, failed), duration and progress, read from its output:
    `::progress stage=train n=45 total=90` lines (xstilts.progress, on when XSTILTS_PROGRESS_LINES=1) and the step
    cache's `[cache] <step>: reused <key>`; and its phases, from `::phase name=load seconds=1.234` lines (summed per
    name), which record() and write_steps() dump as <pipeline_root>/<run>/logs/steps.json for `make measure`;
  - shows them: `live`, a rich Live screen for a terminal (render()); `plain`, one line per event for a pipe or CI
    (step started / cached / done in Ns / failed); `verbose`, every line as kfp.local prints it.

Every step the run will start is known beforehand (plan_steps: the pipeline's DAG with each ParallelFor expanded
over the items its parameter lists, and of each dsl.If/Elif/Else only the branch whose condition holds for those
items and parameters), so the view counts steps done of the total and estimates the time left. A
step's scope is the loop items it runs under, outermost first ((conditions, mnli), (target_tasks, xnli)); a grid
dimension added as another ParallelFor (seeds) is one more level of it, shown as one more level of rows.
"""

from __future__ import annotations

import collections
import contextlib
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

WAITING, RUNNING, CACHED, DONE, FAILED = "waiting", "running", "cached", "done", "failed"
MODES = ("live", "plain", "verbose")
TAIL_LINES = 40
PROGRESS = re.compile(r"::progress((?:\s+\w+=\S+)+)\s*$")
PHASE = re.compile(r"::phase((?:\s+\w+=\S+)+)\s*$")
STEPS_FILE = "steps.json"
CACHE = re.compile(r"\[cache\] (?P<step>[\w-]+): (?P<verb>reused|stored) ")
ERROR = re.compile(r"^(?P<error>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed)\b:?.*)$")
LOOP_PART = re.compile(r"^(?P<loop>.+)-iteration-(?P<index>\d+)$")


# ---- the plan: every leaf step of the pipeline's DAG, loops expanded -------------------------------------------

@dataclass(frozen=True)
class PlannedStep:
    name: str  # the log's name: task name and loop items, e.g. target-finetune-mnli-xnli
    task: str  # the task's name in its DAG (target-finetune)
    component: str  # its component (comp-target-finetune), as kfp.local's task dispatcher gets it
    label: str  # its display name (target fine-tune)
    loops: tuple[tuple[str, int], ...] = ()  # ((for-loop-1, 0), (for-loop-2, 3)): kfp.local's iteration folders
    scope: tuple[tuple[str, Any], ...] = ()  # ((conditions, "mnli"), (target_tasks, "xnli")): what the loops iterate
    # A stand-in for a dsl.If/Elif/Else whose branch is only known at run time: the branches (loops, group) and the
    # components of its other branches; when one of those starts, the stand-in's waiting steps leave the view.
    branches: tuple = ()
    alternatives: frozenset = frozenset()


def plan_steps(pipeline_spec, params: dict) -> list[PlannedStep]:
    """Every leaf step a run of `pipeline_spec` with `params` starts, in DAG order (dependencies first). A loop over
    something only known at run time (a task's output) is left out; its steps join the view as they start. Of a
    dsl.If/Elif/Else (a `condition-branches` DAG of tasks with a `trigger_policy.condition`), only the branch whose
    condition holds for the loop items and parameters (evaluate_condition); a branch whose condition cannot be
    evaluated here (a task's output) is planned once, as a stand-in for whichever branch runs (never both)."""
    from google.protobuf import json_format

    root = pipeline_spec.root
    values = {name: json_format.MessageToDict(p.default_value) for name, p in
              root.input_definitions.parameters.items() if p.HasField("default_value")}
    values.update(params)
    steps: list[PlannedStep] = []

    def walk(dag, inputs: dict[str, tuple[str, Any]], loops: tuple, scope: tuple, stand_in: dict, group: str) -> None:
        holds = {name: evaluate_condition(task.trigger_policy.condition, _known(task, inputs))
                 for name, task in sorted(dag.tasks.items(), key=lambda kv: _natural(kv[0]))
                 if task.trigger_policy.condition}
        if None in holds.values() and _is_branches(group, dag):
            # One branch of an If/Elif/Else runs: the one that holds, else (not known here) the first that may.
            maybe = [n for n, v in holds.items() if v is None]
            taken = next((n for n, v in holds.items() if v), maybe[0])
            others = frozenset(c for n in maybe if n != taken for c in _leaf_components(pipeline_spec, dag.tasks[n]))
            if taken in maybe and others:
                stand_in = {"branches": (loops, group), "alternatives": others}
            holds = {n: n == taken for n in holds}
        for name in _ordered(dag):
            task = dag.tasks[name]
            if holds.get(name) is False:  # a branch that will not run
                continue
            component = pipeline_spec.components[task.component_ref.name]
            known = _known(task, inputs)
            if component.WhichOneof("implementation") != "dag":
                items = tuple(item for _, item in scope)
                steps.append(PlannedStep(step_name(name, items), name, task.component_ref.name,
                                         task.task_info.name or name, loops, scope, **stand_in))
                continue
            if task.WhichOneof("iterator") == "parameter_iterator":
                iterator = task.parameter_iterator
                if iterator.items.HasField("raw"):
                    import json

                    source, items = name, json.loads(iterator.items.raw)
                elif iterator.items.input_parameter in known:
                    source, items = known[iterator.items.input_parameter]
                else:
                    continue
                for index, item in enumerate(items if isinstance(items, list) else []):
                    walk(component.dag, {**known, iterator.item_input: (iterator.item_input, item)},
                         loops + ((name, index),), scope + ((source, item),), stand_in, name)
            elif task.WhichOneof("iterator") is None:
                walk(component.dag, known, loops, scope, stand_in, name)  # a nested DAG (dsl.If, an exit handler)

    walk(root.dag, {name: (name, value) for name, value in values.items()}, (), (), {}, "")
    return steps


def _known(task, inputs: dict[str, tuple[str, Any]]) -> dict[str, tuple[str, Any]]:
    """The task's input parameters known before the run: (source, value) by input name, from the enclosing DAG's
    known inputs (a field of a loop item picked by its selector) or constants."""
    from google.protobuf import json_format

    known = {}
    for key, spec in task.inputs.parameters.items():
        if spec.HasField("component_input_parameter") and spec.component_input_parameter in inputs:
            source, value = inputs[spec.component_input_parameter]
            if spec.parameter_expression_selector:  # `parseJson(string_value)["a"]`: field a of a dict item
                field = re.fullmatch(r'parseJson\(string_value\)\["([^"]+)"\]', spec.parameter_expression_selector)
                if not (field and isinstance(value, dict) and field[1] in value):
                    continue
                value = value[field[1]]
            known[key] = (source, value)
        elif spec.HasField("runtime_value") and spec.runtime_value.HasField("constant"):
            known[key] = (key, json_format.MessageToDict(spec.runtime_value.constant))
    return known


def _is_branches(name: str, dag) -> bool:
    """A dsl.If/Elif/Else: kfp's `condition-branches-N` task, a DAG of branches, each a task with a condition; their
    conditions exclude each other (each Elif/Else negates the conditions before it). A lone dsl.If is none."""
    return name.startswith("condition-branches") and all(t.trigger_policy.condition for t in dag.tasks.values())


def _natural(name: str) -> tuple:
    """condition-3 before condition-10: kfp numbers an If's branches in order."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _leaf_components(pipeline_spec, task) -> set[str]:
    component = pipeline_spec.components[task.component_ref.name]
    if component.WhichOneof("implementation") != "dag":
        return {task.component_ref.name}
    return {c for sub in component.dag.tasks.values() for c in _leaf_components(pipeline_spec, sub)}


# ---- conditions: the CEL kfp compiles dsl.If/Elif/Else into --------------------------------------------------------

CEL_TOKEN = re.compile(r"""\s*(?:(?P<param>inputs\.parameter_values\['(?P<name>[^']*)'\])|'(?P<string>[^']*)'"""
                       r"""|(?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<word>[A-Za-z_]\w*)"""
                       r"""|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()]))""")
UNKNOWN = object()  # a value not known before the run (a task's output)


def evaluate_condition(condition: str, values: dict[str, tuple[str, Any]]) -> bool | None:
    """A task's `trigger_policy.condition` with its input parameters' `values` ((source, value) by input name):
    True or False, or None when it depends on a value not known here or is not the CEL kfp writes. kfp 2.17 writes
    comparisons of `inputs.parameter_values['<input>']` (inside int()/double() for numbers) with literals or each
    other, `!(...)` around the conditions before an Elif/Else, joined by `&&`:

        !(inputs.parameter_values['pipelinechannel--target_tasks-loop-item'] == 'bucc18') && inputs...== 'tatoeba'
    """
    if not condition.strip():
        return True
    tokens, pos = [], 0
    while pos < len(condition):
        match = CEL_TOKEN.match(condition, pos)
        if match is None:
            if condition[pos:].strip():
                return None
            break
        tokens.append(match)
        pos = match.end()
    try:
        value, rest = _cel_or(tokens, values)
    except (IndexError, TypeError, ValueError):
        return None
    if rest or value is UNKNOWN or not isinstance(value, bool):
        return None
    return value


def _cel_or(tokens, values):
    left, tokens = _cel_and(tokens, values)
    while tokens and tokens[0]["op"] == "||":
        right, tokens = _cel_and(tokens[1:], values)
        left = True if True in (left, right) else UNKNOWN if UNKNOWN in (left, right) else False
    return left, tokens


def _cel_and(tokens, values):
    left, tokens = _cel_not(tokens, values)
    while tokens and tokens[0]["op"] == "&&":
        right, tokens = _cel_not(tokens[1:], values)
        left = False if False in (left, right) else UNKNOWN if UNKNOWN in (left, right) else True
    return left, tokens


def _cel_not(tokens, values):
    if tokens[0]["op"] == "!":
        value, tokens = _cel_not(tokens[1:], values)
        return (UNKNOWN if value is UNKNOWN else not _boolean(value)), tokens
    return _cel_compare(tokens, values)


COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _cel_compare(tokens, values):
    left, tokens = _cel_operand(tokens, values)
    if tokens and tokens[0]["op"] in COMPARE:
        op = tokens[0]["op"]
        right, tokens = _cel_operand(tokens[1:], values)
        if UNKNOWN in (left, right):
            return UNKNOWN, tokens
        if isinstance(left, str) != isinstance(right, str) or isinstance(left, bool) != isinstance(right, bool):
            raise TypeError(f"CEL compares no {type(left).__name__} with {type(right).__name__}")
        return COMPARE[op](left, right), tokens
    return left, tokens


def _cel_operand(tokens, values):
    token, rest = tokens[0], tokens[1:]
    if token["op"] == "(":
        value, rest = _cel_or(rest, values)
        if not rest or rest[0]["op"] != ")":
            raise ValueError("unbalanced parentheses")
        return value, rest[1:]
    if token["param"] is not None:
        return (values[token["name"]][1] if token["name"] in values else UNKNOWN), rest
    if token["string"] is not None:
        return token["string"], rest
    if token["number"] is not None:
        return (float(token["number"]) if any(c in token["number"] for c in ".eE") else int(token["number"])), rest
    word = token["word"]
    if word in ("true", "false"):
        return word == "true", rest
    if word in ("int", "double") and rest and rest[0]["op"] == "(":
        value, rest = _cel_operand(rest, values)
        if value is UNKNOWN:
            return UNKNOWN, rest
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(f"{word}() of {value!r}")
        return (int(value) if word == "int" else float(value)), rest
    raise ValueError(f"unexpected {token.group().strip()!r}")


def _boolean(value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a condition: {value!r}")
    return value


def _ordered(dag) -> list[str]:
    """The DAG's tasks, each after the tasks it depends on; ties in the order the pipeline function made them
    (kfp names loops for-loop-1, -2 … in that order; other tasks keep their map order)."""
    names = list(dag.tasks)
    done: list[str] = []
    while len(done) < len(names):
        ready = [n for n in names if n not in done and all(d in done or d not in dag.tasks
                                                             for d in dag.tasks[n].dependent_tasks)]
        if not ready:  # a cycle cannot compile; keep whatever is left
            ready = [n for n in names if n not in done]
        done.append(ready[0])
    return done


def step_name(task: str, items: tuple = ()) -> str:
    """A step's log name: the task name and its loop items, as a file name (`target-finetune-mnli-xnli`)."""
    return "-".join([task, *(_safe(_item_text(item)) for item in items)])


def _item_text(item: Any) -> str:
    if isinstance(item, dict):
        return "-".join(_item_text(v) for v in item.values())
    if isinstance(item, list):
        return "+".join(_item_text(v) for v in item)
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    return str(item)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=-]+", "_", text).strip("_") or "_"


def item_label(source: str, item: Any) -> str:
    """A loop item as a row shows it: a task name as itself, a number with its parameter's name (`seed 2`)."""
    if isinstance(item, dict):
        return " ".join(f"{k}={_item_text(v)}" for k, v in item.items())
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        base = source.removeprefix("pipelinechannel--").removesuffix("-loop-item")
        return f"{base[:-1] if base.endswith('s') else base} {_item_text(item)}"
    return _item_text(item)


def parse_resource_name(resource_name: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """kfp.local's pipeline resource name of a task (`xstilts-<time>/for-loop-1-iteration-0/for-loop-2-iteration-3`)
    as (run name, ((loop, index), ...))."""
    run, *parts = resource_name.split("/")
    loops = tuple((m["loop"], int(m["index"])) for m in map(LOOP_PART.match, parts) if m)
    return run, loops


# ---- reading a step's output --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    n: int
    total: int


@dataclass(frozen=True)
class CacheEvent:
    step: str
    verb: str  # reused | stored


@dataclass(frozen=True)
class PhaseEvent:
    name: str  # xstilts.progress.PHASES: import, load, compute, ...
    seconds: float


def parse_line(line: str) -> ProgressEvent | CacheEvent | PhaseEvent | None:
    """The event in one output line of a step, if any (a tqdm bar's `\\r` may precede it)."""
    match = PROGRESS.search(line)
    if match:
        fields = dict(part.split("=", 1) for part in match.group(1).split())
        try:
            return ProgressEvent(fields.get("stage", ""), int(fields["n"]), int(fields["total"]))
        except (KeyError, ValueError):
            return None
    match = PHASE.search(line)
    if match:
        fields = dict(part.split("=", 1) for part in match.group(1).split())
        try:
            return PhaseEvent(fields["name"], float(fields["seconds"]))
        except (KeyError, ValueError):
            return None
    match = CACHE.search(line)
    if match:
        return CacheEvent(match["step"], match["verb"])
    return None


def error_of(lines: list[str]) -> str:
    """The error a failed step's output ends with: the last `SomeError: message` line (a traceback's last line),
    else its last non-empty line."""
    text = [line.rstrip() for line in lines if line.strip() and not PROGRESS.search(line) and not PHASE.search(line)]
    for line in reversed(text):
        match = ERROR.match(line)
        if match:
            return match["error"]
    return text[-1].strip() if text else "(no output)"


# ---- the state of a run -----------------------------------------------------------------------------------------

@dataclass
class StepState:
    plan: PlannedStep
    state: str = WAITING
    started: float | None = None
    ended: float | None = None
    attempt: int = 0
    cached: bool = False
    progress: ProgressEvent | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase name, summed
    error: str | None = None
    log_path: Path | None = None
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    _log: TextIO | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    def seconds(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else now) - self.started


class RunView:
    """The steps of one run, their logs and their state; thread-safe (kfp.local runs steps from a thread pool).
    `listeners` get (event, step) for started / cached / done / failed."""

    def __init__(self, plan: list[PlannedStep], pipeline_root: Path | str, clock: Callable[[], float] = time.monotonic):
        self.steps = [StepState(p) for p in plan]
        self._by_key = {(p.loops, p.component): s for p, s in zip(plan, self.steps)}
        self.pipeline_root = Path(pipeline_root)
        self.run: str | None = None
        self.clock = clock
        self.started = clock()
        self.ended: float | None = None
        self.lock = threading.RLock()
        self.listeners: list[Callable[[str, StepState], None]] = []
        self._local = threading.local()

    @property
    def logs_dir(self) -> Path | None:
        return self.pipeline_root / self.run / "logs" if self.run else None

    def current(self) -> StepState | None:
        """The step this thread runs (kfp.local runs a task's subprocess on the thread that dispatched it)."""
        return getattr(self._local, "step", None)

    def step_started(self, resource_name: str, component: str) -> StepState:
        """kfp.local dispatches a task (on this thread): the step it is, its log opened; it waits for step_running."""
        run, loops = parse_resource_name(resource_name)
        with self.lock:
            if self.run is None:
                self.run = run
                self.logs_dir.mkdir(parents=True, exist_ok=True)
            step = self._by_key.get((loops, component))
            if step is None:  # not in the plan (a loop over a task's output, another branch): joins the view now
                self._drop_stand_ins(loops, component)
                task = component.removeprefix("comp-")
                plan = PlannedStep(step_name(task, tuple(i for _, i in loops)), task, component, task, loops,
                                   tuple((loop, i) for loop, i in loops))
                step = self._by_key[(loops, component)] = StepState(plan)
                self.steps.append(step)
            step.attempt += 1
            step.state, step.started, step.ended, step.progress, step.error = WAITING, None, None, None, None
            step.cached, step.phases = False, {}
            step.log_path = self.logs_dir / f"{step.name}.log"
            if step._log is None:
                step._log = open(step.log_path, "a" if step.attempt > 1 else "w", encoding="utf-8", errors="replace")
            if step.attempt > 1:
                step._log.write(f"\n---- attempt {step.attempt} ----\n")
            self._local.step = step
        return step

    def _drop_stand_ins(self, loops: tuple, component: str) -> None:
        """`component` runs in a branch the plan could not tell (plan_steps): the waiting steps of the branch planned
        in its stead leave the view, so the run is not counted with both branches."""
        groups = {s.plan.branches for s in self.steps if component in s.plan.alternatives
                  and loops[:len(s.plan.branches[0])] == s.plan.branches[0]}
        for group in groups:
            stand_ins = [s for s in self.steps if s.plan.branches == group]
            if all(s.state == WAITING and s.attempt == 0 for s in stand_ins):
                for s in stand_ins:
                    self.steps.remove(s)
                    del self._by_key[(s.plan.loops, s.plan.component)]

    def step_running(self, step: StepState | None) -> None:
        """The step's process starts (kfp.local dispatched it earlier; it may have waited for a free slot)."""
        if step is None:
            return
        with self.lock:
            step.state, step.started = RUNNING, self.clock()
            self._emit("started", step)

    def step_line(self, step: StepState | None, line: str) -> None:
        """One line of a step's output (with its newline): to its log, its tail, its state."""
        if step is None:
            return
        event = parse_line(line)
        with self.lock:
            if step._log is not None:
                step._log.write(line)
                step._log.flush()
            if not isinstance(event, (ProgressEvent, PhaseEvent)):
                shown = line.rstrip("\n").rsplit("\r", 1)[-1]
                if shown.strip():
                    step.tail.append(shown)
            if isinstance(event, ProgressEvent):
                step.progress = event
            elif isinstance(event, PhaseEvent):
                step.phases[event.name] = step.phases.get(event.name, 0.0) + event.seconds
            elif isinstance(event, CacheEvent) and event.verb == "reused":
                step.cached = True

    def log_record(self, text: str) -> None:
        """A kfp.local log record (task started, its outputs, a retry): into the log of the step of this thread."""
        step = self.current()
        if step is not None and step._log is not None and not step._log.closed:
            with self.lock:
                step._log.write(text.rstrip("\n") + "\n")
                step._log.flush()

    def step_finished(self, step: StepState, ok: bool, error: str | None = None) -> None:
        with self.lock:
            step.ended = self.clock()
            if step.started is None:  # it ended before its process started
                step.started = step.ended
            if ok:
                step.state = CACHED if step.cached else DONE
            else:
                step.state = FAILED
                step.error = error or error_of(list(step.tail))
                if error:
                    step.tail.append(error)
            if step._log is not None:
                if not ok and error:
                    step._log.write(error.rstrip("\n") + "\n")
                step._log.close()
                step._log = None
            self._emit(step.state, step)

    def finish(self) -> None:
        with self.lock:
            self.ended = self.clock()
            for step in self.steps:
                if step._log is not None:
                    step._log.close()
                    step._log = None

    def _emit(self, event: str, step: StepState) -> None:
        for listener in self.listeners:
            listener(event, step)

    # -- summaries

    def counts(self) -> collections.Counter:
        with self.lock:
            return collections.Counter(s.state for s in self.steps)

    def failed(self) -> StepState | None:
        with self.lock:
            failed = [s for s in self.steps if s.state == FAILED]
            return min(failed, key=lambda s: s.ended or 0) if failed else None

    def elapsed(self) -> float:
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def remaining(self) -> float | None:
        """Seconds left, roughly: each waiting step takes what finished steps of its component took on average (all
        finished steps, for a component not seen yet), a running one the rest its progress lines imply (else that
        average less its time so far), and steps overlap as much as they have so far. None until a step finished."""
        with self.lock:
            now = self.clock()
            finished = [s for s in self.steps if s.state in (DONE, CACHED) and s.started is not None]
            if not finished:
                return None
            by_component = collections.defaultdict(list)
            for s in finished:
                by_component[s.plan.component].append(s.seconds(now))
            overall = sum(s.seconds(now) for s in finished) / len(finished)

            def expected(s: StepState) -> float:
                seen = by_component.get(s.plan.component)
                return sum(seen) / len(seen) if seen else overall

            def rest(s: StepState) -> float:  # a running step's: from its progress if it reports one
                p = s.progress
                if p is not None and 0 < p.n <= p.total:
                    return s.seconds(now) * (p.total - p.n) / p.n
                return max(0.0, expected(s) - s.seconds(now))

            running = [s for s in self.steps if s.state == RUNNING]
            left = sum(expected(s) for s in self.steps if s.state == WAITING) + sum(rest(s) for s in running)
            busy = sum(s.seconds(now) for s in finished) + sum(s.seconds(now) for s in running)
            overlap = max(1.0, busy / max(now - self.started, 1e-6))
            return left / overlap

    def record(self) -> dict:
        """The run's steps as `make measure` reads them: per step its state, start (seconds after the run's start),
        wall seconds (process start to end, as the view shows them), attempts and phases (seconds by name)."""
        with self.lock:
            now = self.clock()
            return {"run": self.run, "seconds": round(self.elapsed(), 3),
                    "steps": [{"name": s.name, "label": s.plan.label, "component": s.plan.component,
                               "scope": [[source, item] for source, item in s.plan.scope], "state": s.state,
                               "started": None if s.started is None else round(s.started - self.started, 3),
                               "seconds": round(s.seconds(now), 3), "attempts": s.attempt,
                               "phases": {name: round(seconds, 3) for name, seconds in s.phases.items()}}
                              for s in self.steps]}

    def write_steps(self, path: Path | None = None) -> Path | None:
        """record() as JSON, atomically, to `path` (default <logs_dir>/steps.json); None before any step started."""
        from xstilts.io import write_json

        path = path or (self.logs_dir / STEPS_FILE if self.logs_dir is not None else None)
        if path is not None:
            write_json(path, self.record())
        return path

    def summary(self) -> str:
        counts = self.counts()
        parts = [f"{counts[state]} {state}" for state in (DONE, CACHED, FAILED) if counts[state]]
        unrun = counts[WAITING] + counts[RUNNING]
        if unrun:
            parts.append(f"{unrun} not run")
        return f"{len(self.steps)} steps in {duration(self.elapsed())}: {', '.join(parts) or 'none run'}"

    def failure_report(self) -> str | None:
        """The failed step: its name, its error, its last log lines and where its whole log is."""
        step = self.failed()
        if step is None:
            return None
        tail = list(step.tail)
        lines = [f"failed: {step.name} ({step.plan.label}) after {duration(step.seconds(self.clock()))}"
                 + (f", attempt {step.attempt}" if step.attempt > 1 else ""),
                 f"error: {step.error}",
                 f"last {len(tail)} lines of its log:"]
        lines += [f"  | {line}" for line in tail]
        lines.append(f"full log: {step.log_path}")
        return "\n".join(lines)


def duration(seconds: float) -> str:
    """0.8s, 12s, 4:05, 1:02:03."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# ---- plain: one line per event --------------------------------------------------------------------------------

class PlainLines:
    """`  0:15 done     target-finetune-mnli-xnli in 3.1s`: one line per finished, cached or failed step (and per
    retry started), for output that is not a terminal; a step's start is not printed, so the tiny grid's 46 steps
    fit in about 50 lines."""

    def __init__(self, view: RunView, out: TextIO | None = None):
        self.view, self.out = view, out
        self._header = False
        view.listeners.append(self)

    def __call__(self, event: str, step: StepState) -> None:
        if event == "started" and step.attempt <= 1:
            return
        out = self.out or sys.stdout
        if not self._header:
            self._header = True
            out.write(f"run {self.view.run}: {len(self.view.steps)} steps; logs in {self.view.logs_dir}\n")
        out.write(plain_line(event, step, self.view.elapsed(), self.view.clock()) + "\n")
        out.flush()


def plain_line(event: str, step: StepState, elapsed: float, now: float) -> str:
    clock = duration(elapsed) if elapsed >= 60 else f"{elapsed:.0f}s"
    head = f"{clock:>7} {event:<8} {step.name}"
    if event == "started":
        return head + (f" (attempt {step.attempt})" if step.attempt > 1 else "")
    if event == FAILED:
        return f"{head} after {duration(step.seconds(now))}: {step.error}"
    return f"{head} in {duration(step.seconds(now))}"


# ---- live: one screen --------------------------------------------------------------------------------------------

UNITS = {"train": "steps", "eval": "languages", "generate": "samples", "execute": "programs"}  # xstilts.progress
ICONS = {WAITING: ("·", "dim"), RUNNING: ("▶", "yellow"), CACHED: ("↺", "cyan"), DONE: ("✓", "green"),
         FAILED: ("✗", "bold red")}


def _cell(step: StepState, now: float):
    from rich.text import Text

    icon, style = ICONS[step.state]
    text = Text(f"{icon} {step.plan.label}", style=style)
    if step.state == RUNNING:
        if step.progress is not None and step.progress.total:
            p = step.progress
            text.append(f" {p.n}/{p.total} {UNITS.get(p.stage, p.stage)}".rstrip())
        text.append(f" {duration(step.seconds(now))}", style="dim")
        if step.attempt > 1:
            text.append(f" (try {step.attempt})", style="red")
    elif step.state == CACHED:
        text.append(f" cached {duration(step.seconds(now))}", style="dim")
    elif step.state in (DONE, FAILED):
        text.append(f" {duration(step.seconds(now))}", style="dim")
    return text


def rows(view: RunView) -> list[tuple[int, str, list[StepState]]]:
    """The screen's rows: (depth, label, steps), a row per scope (after its parent scopes' rows) in plan order, the
    root scope split into the steps before the first loop and those after it."""
    out: dict[tuple, tuple[int, str, list[StepState]]] = {}
    seen_loop = False
    for step in view.steps:
        scope = step.plan.scope
        if not scope:
            key = ("after",) if seen_loop else ("before",)
            out.setdefault(key, (0, "", []))[2].append(step)
            continue
        seen_loop = True
        for depth in range(1, len(scope) + 1):  # a scope's row after its parents' (a seed under its condition)
            key = tuple(item for _, item in scope[:depth])
            out.setdefault(key, (depth, item_label(*scope[depth - 1]), []))
        out[key][2].append(step)
    return list(out.values())


def render(view: RunView, height: int | None = None):
    """The live screen: a line for the run (steps done of total, running, elapsed, time left) and a row per scope
    (the steps before the loops; per condition its own steps, then a row per target task, …; the steps after).
    Taller than `height`: rows whose steps are all waiting or all finished fold into their parent row's count."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    with view.lock:
        now = view.clock()
        counts = collections.Counter(s.state for s in view.steps)
        finished = counts[DONE] + counts[CACHED]
        header = Text()
        header.append(f"{view.run or 'starting'}  ", style="bold")
        header.append(f"{finished}/{len(view.steps)} steps")
        if counts[CACHED]:
            header.append(f" ({counts[CACHED]} cached)", style="cyan")
        if counts[RUNNING]:
            header.append(f" · {counts[RUNNING]} running", style="yellow")
        if counts[FAILED]:
            header.append(f" · {counts[FAILED]} failed", style="bold red")
        header.append(f" · {duration(view.elapsed())} elapsed")
        left = view.remaining() if counts[WAITING] + counts[RUNNING] else None
        if left is not None and view.ended is None:
            header.append(f" · ~{duration(left)} left")
        all_rows = rows(view)
        if height is not None and len(all_rows) + 2 > height:
            all_rows = _fold(all_rows, height - 2)
        width = max((len(r[2]) for r in all_rows), default=0)
        table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
        table.add_column("scope", no_wrap=True)
        for _ in range(width):
            table.add_column(no_wrap=True)
        for depth, label, steps in all_rows:
            cells = [(_cell(s, now) if isinstance(s, StepState) else s) for s in steps]
            table.add_row(Text("  " * max(0, depth - 1) + label, style="bold" if depth == 1 else ""), *cells)
        return Group(header, table)


def _fold(all_rows: list, budget: int) -> list:
    """Fold the deepest rows that need no attention (all waiting, or all finished) into a count on their parent."""
    from rich.text import Text

    deepest = max(r[0] for r in all_rows)
    if deepest < 2:
        return all_rows[:budget]
    out: list = []
    quiet: collections.Counter = collections.Counter()

    def flush():
        if quiet and out:
            depth, label, steps = out[-1]
            text = ", ".join(f"{n} {state}" for state, n in quiet.items())
            out[-1] = (depth, label, [*steps, Text(f"+{sum(quiet.values())} rows: {text}", style="dim")])
        quiet.clear()

    for depth, label, steps in all_rows:
        states = {s.state for s in steps}
        if depth == deepest and (states <= {WAITING} or states <= {DONE, CACHED}):
            quiet["waiting" if states <= {WAITING} else "finished"] += 1
            continue
        if depth < deepest:
            flush()
        out.append((depth, label, steps))
    flush()
    return out[:budget]


@contextlib.contextmanager
def live(view: RunView, console=None):
    """Show `render(view)` on the terminal, redrawn 4 times a second, until the block ends (the last screen stays)."""
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    with Live(console=console, refresh_per_second=4, transient=False, redirect_stdout=True, redirect_stderr=True,
              get_renderable=lambda: render(view, console.height - 1)):
        yield
