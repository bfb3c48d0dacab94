"""`make measure` (`python -m pipelines.measure`): where a local run's time goes.

Runs `xstilts run --local` twice on an empty step cache of its own (a temp folder as $XSTILTS_STEP_CACHE, removed
after): `cold`, as on a fresh machine, then `cached`, with unchanged inputs. Each run's <run>/logs/steps.json
(pipelines/liveview.py: every step's state, wall seconds and `::phase` seconds) gives

  - each run's wall time (the CLI process, start to exit);
  - for the cold run, a row per step: state, wall seconds, each phase's seconds (xstilts.progress.PHASES: import =
    the step process's start to the library call, i.e. kfp's executor and imports; load, compute, export, parity,
    write) and `other` = wall − the phases' sum: what no phase covers (kfp.local's dispatch and output handling,
    the fork, a step that reports no phases at all);
  - the phases' totals over all steps, and how many steps the cached run reused;
  - the installed environment's size.

The runs' output goes to <workdir>/{cold,cached}.log, their artifacts under <workdir>/kfp/; the figures also as JSON
(--json, default <workdir>/measure.json), so they can be quoted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xstilts import env as xenv
from xstilts.io import read_json, write_json
from xstilts.progress import PHASES

from pipelines.liveview import CACHED, STEPS_FILE, duration

RUNS = ("cold", "cached")
SORTS = ("start", "wall")
LOGS_IN = re.compile(r"; logs in (?P<logs>\S.*)$", re.MULTILINE)  # run_local's last line (plain view)


# ---- figures from a run's steps.json ----------------------------------------------------------------------------

def step_rows(record: dict, sort: str = "start") -> list[dict]:
    """One row per step that ran (a waiting one never started): name, state, start, wall, phases, other."""
    rows = []
    for step in record["steps"]:
        if step.get("started") is None:
            continue
        phases = {name: float(seconds) for name, seconds in (step.get("phases") or {}).items()}
        wall = float(step["seconds"])
        rows.append({"step": step["name"], "state": step["state"], "start": float(step["started"]), "wall": wall,
                     "phases": phases, "other": wall - sum(phases.values())})
    key = (lambda r: (r["start"], r["step"])) if sort == "start" else (lambda r: (-r["wall"], r["step"]))
    return sorted(rows, key=key)


def phase_names(rows: list[dict]) -> list[str]:
    """The phases any row reports: PHASES' order first, then names a newer library may add."""
    seen = {name for r in rows for name in r["phases"]}
    return [p for p in PHASES if p in seen] + sorted(seen - set(PHASES))


def totals(rows: list[dict]) -> dict:
    """Sums over the steps: wall (step-seconds; more than the run's wall time when steps overlap), each phase,
    other."""
    return {"steps": len(rows), "wall": sum(r["wall"] for r in rows),
            "phases": {name: sum(r["phases"].get(name, 0.0) for r in rows) for name in phase_names(rows)},
            "other": sum(r["other"] for r in rows)}


def run_summary(label: str, wall: float, record: dict, log: Path | None = None, steps_file: Path | None = None,
                sort: str = "start") -> dict:
    """One run's figures: its wall time, its steps (all, run, reused), their rows and totals."""
    rows = step_rows(record, sort)
    states: dict[str, int] = {}
    for step in record["steps"]:
        states[step["state"]] = states.get(step["state"], 0) + 1
    return {"label": label, "run": record.get("run"), "wall_seconds": round(wall, 3),
            "steps": len(record["steps"]), "states": states, "reused": states.get(CACHED, 0),
            "log": None if log is None else str(log), "steps_file": None if steps_file is None else str(steps_file),
            "totals": _rounded(totals(rows)), "rows": [_rounded(r) for r in rows]}


def _rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# ---- showing them -------------------------------------------------------------------------------------------------

def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def steps_table(summary: dict):
    """The per-step table of one run (rich): step, state, start, wall, a column per phase, other; totals last."""
    from rich.table import Table

    rows = summary["rows"]
    names = phase_names(rows)
    table = Table(show_footer=True, box=None, padding=(0, 1), pad_edge=False)
    total = summary["totals"]
    table.add_column("step", footer=f"all {total['steps']} steps", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("start", justify="right")
    table.add_column("wall", justify="right", footer=_seconds(total["wall"]))
    for name in names:
        table.add_column(name, justify="right", footer=_seconds(total["phases"].get(name)))
    table.add_column("other", justify="right", footer=_seconds(total["other"]))
    for r in rows:
        table.add_row(r["step"], r["state"], _seconds(r["start"]), _seconds(r["wall"]),
                      *(_seconds(r["phases"].get(name)) for name in names), _seconds(r["other"]))
    return table


def phases_table(summary: dict):
    """The phases' totals over all steps of a run, and each one's share of the steps' summed wall time."""
    from rich.table import Table

    total = summary["totals"]
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("phase", no_wrap=True)
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for name, seconds in [*total["phases"].items(), ("other", total["other"])]:
        share = seconds / total["wall"] if total["wall"] else 0.0
        table.add_row(name, _seconds(seconds), f"{100 * share:.0f} %")
    table.add_row("steps' wall", _seconds(total["wall"]), "100 %")
    return table


def run_line(summary: dict) -> str:
    """`cold run: 1:42 wall, 49 steps (47 done, 2 cached)`."""
    states = ", ".join(f"{n} {state}" for state, n in sorted(summary["states"].items()))
    return (f"{summary['label']} run: {duration(summary['wall_seconds'])} wall ({summary['wall_seconds']:.1f} s), "
            f"{summary['steps']} steps ({states}), {summary['reused']} reused from the step cache")


def environment_line(environment: dict) -> str:
    return f"installed environment: {_size(environment['bytes'])} ({environment['path']})"


def render(report: dict, console) -> None:
    """Everything `make measure` prints, on a rich console."""
    runs = report["runs"]
    for label in RUNS:
        if label in runs:
            console.print(run_line(runs[label]))
    if "cold" in runs:
        console.print("\ncold run, per step (seconds; start: after the run's start; other = wall − the phases):")
        console.print(steps_table(runs["cold"]))
    for label in RUNS:
        if label in runs:
            console.print(f"\n{label} run, phases over all steps:")
            console.print(phases_table(runs[label]))
    console.print()
    console.print(environment_line(report["environment"]))


def render_text(report: dict, width: int = 160) -> str:
    """render() as plain text (no colours), `width` columns."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    render(report, console)
    return console.file.getvalue()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def environment_size(path: Path) -> dict:
    """The disk space a folder's files take (`du`: allocated blocks, each hard-linked file once)."""
    seen, size = set(), 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            size += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return {"path": str(path), "bytes": size}


# ---- running the pipeline ---------------------------------------------------------------------------------------

def find_steps_file(output: str, workdir: Path, after: float) -> Path | None:
    """The run's steps.json: in the folder its last line names (`...; logs in <dir>`), else the newest one under
    <workdir>/kfp written since `after` (a time.time())."""
    for match in reversed(list(LOGS_IN.finditer(output))):
        path = Path(match["logs"].strip()) / STEPS_FILE
        if path.is_file():
            return path
    candidates = [p for p in (workdir / "kfp").glob(f"*/logs/{STEPS_FILE}") if p.stat().st_mtime >= after]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def run_pipeline(label: str, workdir: Path, step_cache: Path, extra: list[str]) -> tuple[float, Path, Path]:
    """`xstilts run --local` in a process of its own, its output in <workdir>/<label>.log: (wall seconds, the log,
    its steps.json). Exits with the log's tail when the run fails."""
    log = workdir / f"{label}.log"
    # exported graphs too: a cold run traces each architecture afresh
    environ = {**os.environ, xenv.STEP_CACHE: str(step_cache), xenv.GRAPH_CACHE: str(step_cache / "graphs")}
    environ.pop(xenv.CHECKPOINTS, None)  # checkpoints in the workdir, which starts empty: a cold run resumes nothing
    command = [sys.executable, "-m", "xstilts.cli.main", "run", "--local", "--workdir", str(workdir), *extra]
    print(f"{label} run: {' '.join(command[2:])} (output: {log})", flush=True)
    wall_clock = time.time()
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=environ)
    wall = time.perf_counter() - started
    output = log.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise SystemExit(f"{label} run failed (exit {code}); the end of {log}:\n{tail}")
    steps_file = find_steps_file(output, workdir, wall_clock)
    if steps_file is None:
        raise SystemExit(f"{label} run: no {STEPS_FILE} found under {workdir / 'kfp'} (see {log})")
    return wall, log, steps_file


MARKER = ".xstilts-measure"  # in a workdir that `make measure` made: only such a folder is cleared


def clear_workdir(workdir: Path) -> None:
    """Remove what earlier measurements left in the workdir (artifacts, checkpoints, the latest link, logs). A folder
    that holds anything but was not made by a measurement (no MARKER: e.g. `runs`, a user's own runs) is refused."""
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / MARKER).is_file():
        raise SystemExit(f"--workdir {workdir}: holds files and was not made by `make measure` (no {MARKER}); "
                         "name a new or empty folder")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).touch()
    for name in ("kfp", "checkpoints"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    for name in ("latest", *(f"{label}.log" for label in RUNS)):
        path = workdir / name
        if path.is_symlink() or path.is_file():
            path.unlink()


def measure(workdir: Path, extra: list[str], sort: str = "start", runs: tuple[str, ...] = RUNS) -> dict:
    workdir = workdir.resolve()
    clear_workdir(workdir)
    report = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
              "command": ["xstilts", "run", "--local", "--workdir", str(workdir), *extra], "runs": {}}
    step_cache = Path(tempfile.mkdtemp(prefix="xstilts-measure-cache-"))
    try:
        for label in runs:
            wall, log, steps_file = run_pipeline(label, workdir, step_cache, extra)
            report["runs"][label] = run_summary(label, wall, read_json(steps_file), log, steps_file, sort)
    finally:
        shutil.rmtree(step_cache, ignore_errors=True)
    report["environment"] = environment_size(Path(sys.prefix))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs-measure"),
                        help="the runs' workdir; what an earlier measurement left there is removed first (default: runs-measure)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here (default: <workdir>/measure.json)")
    parser.add_argument("--sort", choices=SORTS, default="start", help="order of the per-step table (default: start)")
    parser.add_argument("--cold-only", action="store_true", help="skip the cached re-run")
    parser.add_argument("run_args", nargs=argparse.REMAINDER,
                        help="after `--`: more arguments for `xstilts run --local` (e.g. --preset tiny)")
    args = parser.parse_args(argv)
    extra = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args
    report = measure(args.workdir, extra, args.sort, RUNS[:1] if args.cold_only else RUNS)
    json_path = args.json or args.workdir.resolve() / "measure.json"
    write_json(json_path, report)
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=160, color_system=None)
    console.print()
    render(report, console)
    console.print(f"figures as JSON: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
