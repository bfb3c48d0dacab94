"""The live view of a local run (pipelines/liveview.py): the plan of steps, events read from step output, the run's
state, the plain lines, the live screen and the failure report, from recorded step output (no pipeline runs)."""

import collections
import io

import pytest

from pipelines import liveview
from pipelines.liveview import CACHED, DONE, FAILED, RUNNING, WAITING, CacheEvent, PhaseEvent, ProgressEvent

RUN = "xstilts-2026-01-01-00-00-00-000000"


@pytest.fixture(scope="module")
def spec():
    from pipelines.xstilts import build_pipeline

    return build_pipeline().pipeline_spec


def params(conditions, targets, seeds=(1,)):
    return {"conditions": conditions, "target_tasks": targets, "seeds": list(seeds)}


def loop_names(spec) -> tuple[str, str, str]:
    """The names kfp gave the conditions, seeds and target-tasks loops (kfp.local's iteration folders)."""
    (step,) = [s for s in liveview.plan_steps(spec, params(["mnli"], ["xnli"])) if s.task == "export-onnx"]
    return tuple(loop for loop, _ in step.loops)


def test_plan_counts_every_step_from_the_pipeline_structure(spec):
    for conditions, targets in ((["none", "mnli", "squad"], ["xnli", "xquad", "panx", "tatoeba"]),
                                (["none", "mnli"], ["xnli", "tatoeba"]), (["none"], ["xnli"]),
                                (["mnli"], ["xnli"]), (["none"], ["tatoeba", "bucc18"])):
        plan = liveview.plan_steps(spec, params(conditions, targets))
        c, t = len(conditions), len(targets)
        # conditions × targets × (target, export, eval) + intermediate and gather per condition × seed + gather per
        # condition + resolve, validate, gate, report: of each dsl.If/Else only the branch that runs
        assert len(plan) == c * t * 3 + c + c + c + 2 + 1 + 1
        assert len({s.name for s in plan}) == len(plan)
        tasks = collections.Counter(s.task for s in plan)
        assert tasks["intermediate-pass-through"] == conditions.count("none")
        assert tasks["intermediate-finetune"] == c - conditions.count("none")
        retrieval = sum(target in ("tatoeba", "bucc18") for target in targets)
        assert tasks["target-finetune"] == c * (t - retrieval)
        assert tasks["target-pass-through-tatoeba"] + tasks["target-pass-through-bucc18"] == c * retrieval
    tiny = params(["none", "mnli", "squad"], ["xnli", "xquad", "panx", "tatoeba"])
    assert len(liveview.plan_steps(spec, tiny)) == 49
    assert len(liveview.plan_steps(spec, {**tiny, "seeds": [1, 2, 3]})) == 3 * (36 + 3 + 3) + 3 + 4  # tiny-seeds
    plan = liveview.plan_steps(spec, params(["none", "mnli"], ["xnli", "tatoeba"]))
    names = [s.name for s in plan]
    assert names[:3] == ["resolve-data", "validate-data", "intermediate-pass-through-none-1"]
    assert "target-pass-through-tatoeba-mnli-1-tatoeba" in names and "target-finetune-mnli-1-tatoeba" not in names
    assert names[-2:] == ["promotion-gate", "report"]
    assert "target-finetune-mnli-1-xnli" in names and "zero-shot-eval-mnli-1-tatoeba" in names
    assert "gather-results-mnli-1" in names and "gather-results-2-mnli" in names
    # dependencies first: a condition's target steps after its intermediate model, before its gathers
    assert names.index("intermediate-finetune-mnli-1") < names.index("target-finetune-mnli-1-xnli") \
        < names.index("export-onnx-mnli-1-xnli") < names.index("zero-shot-eval-mnli-1-xnli") \
        < names.index("gather-results-mnli-1") < names.index("gather-results-2-mnli")
    step = plan[names.index("export-onnx-mnli-1-tatoeba")]
    outer, seeds, inner = loop_names(spec)
    assert step.loops == ((outer, 1), (seeds, 0), (inner, 1)) and step.component == "comp-export-onnx"
    assert step.scope == (("conditions", "mnli"), ("seeds", 1), ("target_tasks", "tatoeba"))
    assert step.label == "export ONNX"


def test_a_seed_loop_is_one_more_level_of_scope():
    """A grid dimension added as a ParallelFor (seeds) needs no change here: one more scope level, its own rows."""
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def train(condition: str, seed: int, target: str) -> str:
        return condition

    @dsl.component(base_image="python:3.11")
    def gather(results: list) -> str:
        return ""

    @dsl.pipeline(name="grid")
    def grid(conditions: list = ["none"], seeds: list = [1], target_tasks: list = ["xnli"]):
        with dsl.ParallelFor(conditions) as condition:
            with dsl.ParallelFor(seeds) as seed:
                with dsl.ParallelFor(target_tasks) as target:
                    trained = train(condition=condition, seed=seed, target=target)
                gather(results=dsl.Collected(trained.output))

    plan = liveview.plan_steps(grid.pipeline_spec, {"conditions": ["none", "mnli"], "seeds": [1, 2],
                                                    "target_tasks": ["xnli", "panx"]})
    assert len(plan) == 2 * 2 * 2 + 2 * 2
    assert "train-mnli-2-panx" in {s.name for s in plan}
    view = liveview.RunView(plan, "/tmp/unused")
    labels = [(depth, label, [s.plan.task for s in steps]) for depth, label, steps in liveview.rows(view)]
    condition = [(1, "none", []), (2, "seed 1", ["gather"]), (3, "xnli", ["train"]), (3, "panx", ["train"]),
                 (2, "seed 2", ["gather"]), (3, "xnli", ["train"]), (3, "panx", ["train"])]
    assert labels == condition + [(1, "mnli", []), *condition[1:]]
    assert liveview.item_label("pipelinechannel--seeds", 2) == "seed 2"


ITEM = "inputs.parameter_values['pipelinechannel--target_tasks-loop-item']"


@pytest.mark.parametrize("condition, values, holds", [
    (f"{ITEM} == 'tatoeba'", {"pipelinechannel--target_tasks-loop-item": "tatoeba"}, True),
    (f"!({ITEM} == 'bucc18') && {ITEM} == 'tatoeba'", {"pipelinechannel--target_tasks-loop-item": "xnli"}, False),
    (f"!({ITEM} == 'bucc18') && !({ITEM} == 'tatoeba')", {"pipelinechannel--target_tasks-loop-item": "xnli"}, True),
    ("int(inputs.parameter_values['pipelinechannel--seeds-loop-item']) >= 2",
     {"pipelinechannel--seeds-loop-item": 2.0}, True),  # a number from the spec's JSON defaults
    ("double(inputs.parameter_values['n']) < 0.5", {"n": 1}, False),
    ("inputs.parameter_values['confirm'] == true", {"confirm": True}, True),
    ("inputs.parameter_values['a'] != inputs.parameter_values['b']", {"a": "x", "b": "x"}, False),
    ("(inputs.parameter_values['a'] == 'x') || inputs.parameter_values['b'] == 'y'", {"a": "x"}, True),
    # not known before the run (a task's output): None, unless the rest decides
    (f"{ITEM} == 'tatoeba'", {}, None),
    (f"!({ITEM} == 'bucc18') && inputs.parameter_values['pipelinechannel--flip-Output'] == 't'",
     {"pipelinechannel--target_tasks-loop-item": "bucc18"}, False),
    (f"!({ITEM} == 'xnli') && inputs.parameter_values['pipelinechannel--flip-Output'] == 't'",
     {"pipelinechannel--target_tasks-loop-item": "bucc18"}, None),
    # not the CEL kfp writes, or a comparison CEL refuses: None
    ("size(inputs.parameter_values['a']) > 1", {"a": "xy"}, None),
    ("inputs.parameter_values['a'] == 1", {"a": "1"}, None),
    ("inputs.parameter_values['a'] == 'x' &&", {"a": "x"}, None),
    ("", {}, True),
])
def test_evaluate_condition(condition, values, holds):
    assert liveview.evaluate_condition(condition, {k: (k, v) for k, v in values.items()}) is holds


def test_a_branch_is_planned_by_the_loop_items_of_any_level():
    """If/Elif/Else on the items of an outer loop, deep inside nested loops (a seeds loop between conditions and
    target tasks): the branch that runs for each item, whatever the loop item is called."""
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def step(condition: str, seed: int, target: str) -> str:
        return condition

    @dsl.pipeline(name="grid")
    def grid(conditions: list = ["none"], seeds: list = [1], target_tasks: list = ["xnli"], extra: int = 0):
        with dsl.ParallelFor(conditions) as condition:
            with dsl.ParallelFor(seeds) as seed:
                with dsl.ParallelFor(target_tasks) as target:
                    with dsl.If(condition == "none"):
                        step(condition=condition, seed=seed, target=target).set_display_name("copy")
                    with dsl.Elif(target == "tatoeba"):
                        step(condition=condition, seed=seed, target=target).set_display_name("embed")
                    with dsl.Else():
                        step(condition=condition, seed=seed, target=target).set_display_name("train")
                    with dsl.If(extra == 1):  # a lone If on an int parameter
                        step(condition=condition, seed=seed, target=target).set_display_name("extra")

    values = {"conditions": ["none", "mnli"], "seeds": [1, 2, 3], "target_tasks": ["xnli", "tatoeba"], "extra": 0}
    plan = liveview.plan_steps(grid.pipeline_spec, values)
    labels = collections.Counter(s.label for s in plan)
    assert labels == {"copy": 1 * 3 * 2, "embed": 1 * 3 * 1, "train": 1 * 3 * 1}
    assert collections.Counter(s.label for s in liveview.plan_steps(grid.pipeline_spec, {**values, "extra": 1})) \
        == {**labels, "extra": 2 * 3 * 2}
    assert {tuple(item for _, item in s.scope) for s in plan if s.label == "embed"} == {
        ("mnli", 1, "tatoeba"), ("mnli", 2, "tatoeba"), ("mnli", 3, "tatoeba")}
    assert not any(s.alternatives for s in plan)


def test_a_branch_known_only_at_run_time_is_planned_once(tmp_path):
    """A condition on a task's output cannot be evaluated beforehand: the plan keeps one branch as a stand-in (never
    every branch); when another branch starts instead, the stand-in's steps leave the view. A lone If is kept."""
    from kfp import dsl

    @dsl.component(base_image="python:3.11")
    def flip() -> str:
        return "heads"

    @dsl.component(base_image="python:3.11")
    def step(side: str) -> str:
        return side

    @dsl.pipeline(name="coin")
    def coin(items: list = ["a", "b"]):
        flipped = flip()
        with dsl.ParallelFor(items):
            with dsl.If(flipped.output == "heads"):
                step(side="heads")
            with dsl.Elif(flipped.output == "tails"):
                step(side="tails")
            with dsl.Else():
                step(side="edge")
            with dsl.If(flipped.output == "heads"):
                step(side="lone")

    plan = liveview.plan_steps(coin.pipeline_spec, {})
    assert len(plan) == 1 + 2 * 2  # flip, then per item one of the three branches and the lone If
    stand_ins = [s for s in plan if s.alternatives]
    assert len(stand_ins) == 2 and all(len(s.alternatives) == 2 for s in stand_ins)
    view = liveview.RunView(plan, tmp_path)
    (loop,) = {s.loops[0][0] for s in stand_ins}
    other = next(iter(stand_ins[1].alternatives))
    joined = view.step_started(f"{RUN}/{loop}-iteration-1", other)  # item b took another branch
    assert len(view.steps) == len(plan) and joined in view.steps
    assert stand_ins[1] not in [s.plan for s in view.steps] and stand_ins[0] in [s.plan for s in view.steps]
    started = view.step_started(f"{RUN}/{loop}-iteration-0", stand_ins[0].component)  # item a: the planned one
    assert started.plan == stand_ins[0] and len(view.steps) == len(plan)


@pytest.mark.parametrize("line, event", [
    ("::progress stage=train n=45 total=90\n", ProgressEvent("train", 45, 90)),
    ("\rtarget-xnli:  40%|####      | 36/90 [00:02<00:03]::progress stage=train n=36 total=90\n",
     ProgressEvent("train", 36, 90)),
    ("::progress stage=eval n=2 total=5 extra=x\n", ProgressEvent("eval", 2, 5)),
    ("::progress stage=eval n=two total=5\n", None),
    ("[cache] target: reused 370bc3121028e35e (/c/target-370bc3121028e35e)\n", CacheEvent("target", "reused")),
    ("    [cache] export: stored 9970efda718bc3e8 (/c/export-9970efda718bc3e8)\n", CacheEvent("export", "stored")),
    ("[KFP Executor 2026-12-02 11:18:11,701 INFO]: Looking for component `resolve_data`\n", None),
    ("::phase name=load seconds=1.234\n", PhaseEvent("load", 1.234)),
    ("    ::phase name=import seconds=0.050 extra=x\n", PhaseEvent("import", 0.05)),
    ("::phase name=load seconds=soon\n", None),
    ("::phase seconds=1.0\n", None),
])
def test_parse_line(line, event):
    assert liveview.parse_line(line) == event


def test_error_of_a_traceback_and_of_plain_output():
    traceback = ["Traceback (most recent call last):\n", '  File "x.py", line 1, in <module>\n',
                 "xstilts.errors.DataError: data validation failed: xnli train: label='unsure'\n",
                 "::progress stage=train n=1 total=2\n"]
    assert liveview.error_of(traceback) == "xstilts.errors.DataError: data validation failed: xnli train: label='unsure'"
    assert liveview.error_of(["something went wrong\n", "\n"]) == "something went wrong"
    assert liveview.error_of([]) == "(no output)"


def test_parse_resource_name():
    assert liveview.parse_resource_name(f"{RUN}/for-loop-1-iteration-2/for-loop-2-iteration-10") == \
        (RUN, (("for-loop-1", 2), ("for-loop-2", 10)))
    assert liveview.parse_resource_name(RUN) == (RUN, ())


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


# What steps print (recorded from `xstilts run --local`, shortened).
VALIDATE = ["[KFP Executor 2026-12-02 11:18:18,761 INFO]: Looking for component `validate_data`\n",
            "[cache] validate: reused fdc4bb1a7033439c (/c/validate-fdc4bb1a7033439c)\n"]
TARGET = ["[KFP Executor 2026-12-02 11:18:30,901 INFO]: Got executor_input:\n", "{\n", '    "inputs": {}\n', "}\n",
          "::progress stage=train n=0 total=90\n", "::progress stage=train n=45 total=90\n"]


def run_view(tmp_path, spec, out=None):
    clock = Clock()
    view = liveview.RunView(liveview.plan_steps(spec, params(["none", "mnli"], ["xnli", "tatoeba"])), tmp_path,
                            clock=clock)
    if out is not None:
        liveview.PlainLines(view, out)
    return view, clock


def test_states_logs_and_plain_lines_from_recorded_output(tmp_path, spec):
    out = io.StringIO()
    view, clock = run_view(tmp_path, spec, out)
    assert view.counts()[WAITING] == 22
    step = view.step_started(RUN, "comp-validate-data")
    assert view.current() is step and step.state == WAITING and not out.getvalue()  # dispatched, no process yet
    clock.now += 0.5
    view.step_running(step)
    assert step.state == RUNNING
    for line in VALIDATE:
        view.step_line(step, line)
    clock.now += 1.5
    view.step_finished(step, ok=True)
    assert step.state == CACHED
    outer, seeds, inner = loop_names(spec)
    step = view.step_started(f"{RUN}/{outer}-iteration-1/{seeds}-iteration-0/{inner}-iteration-0",
                             "comp-target-finetune")
    view.step_running(step)
    assert step.name == "target-finetune-mnli-1-xnli"
    for line in TARGET:
        view.step_line(step, line)
    assert step.progress == ProgressEvent("train", 45, 90)
    clock.now += 12
    view.step_finished(step, ok=True)
    assert step.state == DONE
    log = (tmp_path / RUN / "logs" / "target-finetune-mnli-1-xnli.log").read_text()
    assert log == "".join(TARGET)
    assert (tmp_path / RUN / "logs" / "validate-data.log").read_text() == "".join(VALIDATE)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"run {RUN}: 22 steps; logs in {tmp_path / RUN / 'logs'}"
    assert lines[1:] == ["     2s cached   validate-data in 1.5s", "    14s done     target-finetune-mnli-1-xnli in 12s"]
    assert view.summary() == "22 steps in 14s: 1 done, 1 cached, 20 not run"
    assert view.remaining() is not None and view.failure_report() is None


def test_a_failed_step_reports_its_error_tail_and_log(tmp_path, spec):
    out = io.StringIO()
    view, clock = run_view(tmp_path, spec, out)
    step = view.step_started(RUN, "comp-validate-data")
    view.step_running(step)
    lines = [f"line {i}\n" for i in range(60)] + [
        "Traceback (most recent call last):\n", '  File "/x/validate.py", line 3, in validate\n',
        "xstilts.errors.DataError: data validation failed: xnli/train.jsonl: label='unsure'\n"]
    for line in lines:
        view.step_line(step, line)
    clock.now += 2
    view.step_finished(step, ok=False)
    assert view.failed() is step and step.state == FAILED
    report = view.failure_report().splitlines()
    assert report[0] == "failed: validate-data (validate data) after 2.0s"
    assert report[1] == "error: xstilts.errors.DataError: data validation failed: xnli/train.jsonl: label='unsure'"
    assert report[2] == "last 40 lines of its log:" and len(report) == 3 + 40 + 1
    assert report[3] == "  | line 23" and report[-2].endswith("label='unsure'")
    assert report[-1] == f"full log: {tmp_path / RUN / 'logs' / 'validate-data.log'}"
    assert out.getvalue().splitlines()[-1] == ("     2s failed   validate-data after 2.0s: xstilts.errors.DataError: "
                                               "data validation failed: xnli/train.jsonl: label='unsure'")
    # a retried step appends to its log and counts its attempts
    outer, seeds, _ = loop_names(spec)
    step = view.step_started(f"{RUN}/{outer}-iteration-1/{seeds}-iteration-0", "comp-intermediate-finetune")
    view.step_running(step)
    view.step_line(step, "first\n")
    view.step_finished(step, ok=False, error="RuntimeError: boom")
    step = view.step_started(f"{RUN}/{outer}-iteration-1/{seeds}-iteration-0", "comp-intermediate-finetune")
    view.step_running(step)
    view.step_line(step, "second\n")
    view.step_finished(step, ok=True)
    assert step.attempt == 2 and step.state == DONE and "(attempt 2)" in out.getvalue()
    assert (tmp_path / RUN / "logs" / "intermediate-finetune-mnli-1.log").read_text() == \
        "first\nRuntimeError: boom\n\n---- attempt 2 ----\nsecond\n"


def test_phases_are_summed_per_step_and_dumped_to_steps_json(tmp_path, spec):
    """`::phase` lines: summed per name into the step's phases, kept in its log but out of its tail (the failure
    report) and of the plain lines; record() and write_steps() give every step's state, start, seconds, phases."""
    from xstilts.io import read_json

    out = io.StringIO()
    view, clock = run_view(tmp_path, spec, out)
    assert view.write_steps() is None  # no run yet, no logs folder
    step = view.step_started(RUN, "comp-validate-data")
    clock.now += 1
    view.step_running(step)
    lines = ["::phase name=import seconds=0.500\n", "::phase name=load seconds=1.000\n",
             "::phase name=compute seconds=2.000\n", "::phase name=load seconds=0.250\n", "::phase name=x seconds=y\n",
             "::phase name=write seconds=0.125\n"]
    for line in lines:
        view.step_line(step, line)
    assert step.phases == {"import": 0.5, "load": 1.25, "compute": 2.0, "write": 0.125}
    assert list(step.tail) == ["::phase name=x seconds=y"]  # malformed: an ordinary line
    clock.now += 4
    view.step_finished(step, ok=True)
    assert "::phase" not in out.getvalue()
    assert (tmp_path / RUN / "logs" / "validate-data.log").read_text() == "".join(lines)
    cached = view.step_started(RUN, "comp-resolve-data")
    view.step_running(cached)
    view.step_line(cached, "[cache] resolve: reused abc (/c)\n")
    clock.now += 0.5
    view.step_finished(cached, ok=True)
    view.finish()
    path = view.write_steps()
    assert path == tmp_path / RUN / "logs" / liveview.STEPS_FILE
    record = read_json(path)
    assert record["run"] == RUN and record["seconds"] == 5.5 and len(record["steps"]) == 22
    by_name = {s["name"]: s for s in record["steps"]}
    assert by_name["validate-data"] == {
        "name": "validate-data", "label": "validate data", "component": "comp-validate-data", "scope": [],
        "state": DONE, "started": 1.0, "seconds": 4.0, "attempts": 1,
        "phases": {"import": 0.5, "load": 1.25, "compute": 2.0, "write": 0.125}}
    assert by_name["resolve-data"]["state"] == CACHED and by_name["resolve-data"]["started"] == 5.0
    waiting = [s for s in record["steps"] if s["state"] == WAITING]
    assert len(waiting) == 20 and all(s["started"] is None and s["phases"] == {} for s in waiting)
    # a retried step's phases are its last attempt's
    step = view.step_started(RUN, "comp-validate-data")
    assert step.attempt == 2 and step.phases == {}


def test_the_live_screen(tmp_path, spec):
    from rich.console import Console

    view, clock = run_view(tmp_path, spec)
    for name in ("comp-resolve-data", "comp-validate-data"):
        view.step_finished(view.step_started(RUN, name), ok=True)
    outer, seeds, inner = loop_names(spec)
    step = view.step_started(f"{RUN}/{outer}-iteration-0/{seeds}-iteration-0", "comp-intermediate-pass-through")
    view.step_running(step)
    view.step_line(step, "[cache] intermediate: reused abc (/c)\n")
    clock.now += 3
    view.step_finished(step, ok=True)
    step = view.step_started(f"{RUN}/{outer}-iteration-0/{seeds}-iteration-0/{inner}-iteration-0",
                             "comp-target-finetune")
    view.step_running(step)
    view.step_line(step, "::progress stage=train n=45 total=90\n")
    clock.now += 5

    def screen(height=None):
        console = Console(record=True, width=200, color_system=None)
        console.print(liveview.render(view, height))
        return console.export_text().splitlines()

    lines = screen()
    assert lines[0].startswith(f"{RUN}  3/22 steps (1 cached) · 1 running · 8.0s elapsed · ~")
    assert lines[1].split() == ["✓", "resolve", "data", "0.0s", "✓", "validate", "data", "0.0s"]
    assert lines[2].split() == ["none", "·", "gather", "condition"]
    assert lines[3].split()[:7] == ["seed", "1", "↺", "intermediate", "pass-through", "cached", "3.0s"]
    assert "▶ target fine-tune 45/90 steps 5.0s" in lines[4] and lines[4].startswith("    xnli")
    assert lines[5].split() == ["tatoeba", "·", "target", "pass-through", "·", "export", "ONNX", "·", "zero-shot", "eval"]
    assert lines[6].strip().startswith("mnli")
    assert lines[-1].split() == ["·", "promotion", "gate", "·", "report"]
    assert len(lines) == 1 + 1 + 2 * 4 + 1
    folded = screen(height=7)  # too tall: the quiet target rows fold into their parent's row
    assert len(folded) <= 7 and any("+1 rows: 1 waiting" in line for line in folded)
    assert any("45/90 steps" in line for line in folded)  # a running step's row stays


def test_duration():
    assert [liveview.duration(s) for s in (0.84, 12.4, 245, 3723)] == ["0.8s", "12s", "4:05", "1:02:03"]


def test_progress_lines_only_when_asked(monkeypatch, capsys):
    from xstilts import env
    from xstilts.progress import Progress

    monkeypatch.delenv(env.PROGRESS_LINES, raising=False)
    Progress("train", 3).update(3)
    assert capsys.readouterr().out == ""
    monkeypatch.setenv(env.PROGRESS_LINES, "1")
    assert not env.progress_enabled()  # no bars when the lines are on
    progress = Progress("train", 3, interval=3600)
    progress.update(1)
    progress.update(2)
    progress.close()
    progress.update(3)
    assert capsys.readouterr().out.splitlines() == ["::progress stage=train n=0 total=3",
                                                    "::progress stage=train n=2 total=3",
                                                    "::progress stage=train n=3 total=3"]
