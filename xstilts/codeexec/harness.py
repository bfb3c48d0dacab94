"""Execution-based evaluation: run every sample's program in the sandbox, then pass@k per problem and language.

Problems are HumanEval/MBXP JSONL rows (`task_id`, `prompt`, `test`, `entry_point`, `language`, optional
`canonical_solution`); samples are JSONL rows (`task_id`, `completion`), several per problem for pass@k with k > 1.
pass@k is Chen et al. (2021)'s unbiased estimator 1 - C(n-c, k) / C(n, k), as a product (no huge binomials).
Each language's toolchain first passes a self-test (selftest.py) in the same sandbox and limits; the samples of a
language that fails it are `toolchain_error`, and that language gets no pass@k (never 0).

Compilation is `batched` by default (batch.py: Java, TypeScript and Go programs compiled many to a compiler process,
C++ with a shared precompiled header), or `naive`: one compiler process per program and no shared preparation, as
mxeval and MultiPL-E run them; both give the same results. Either way each program runs alone in its own sandbox.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar
import numpy as np
from tqdm import tqdm
from xstilts import env
from xstilts.progress import Progress
from xstilts.codeexec.batch import Compiled, adopt, batch_size, compile_batch
from xstilts.codeexec.languages import (LANGUAGES, STATUSES, Execution, Toolchain, check_typescript_mode, execute,
                                        find_toolchain, run_built)
from xstilts.codeexec.selftest import checks_for, verdict
from xstilts.errors import DataError, XstiltsError
from xstilts.io import atomic_dir, atomic_write_text, read_jsonl, write_json
from xstilts.codeexec.sandbox import Sandbox


PROBLEM_FIELDS = ("task_id", "prompt", "test", "entry_point", "language")
SAMPLE_FIELDS = ("task_id", "completion")
# batched: many programs per compiler process (batch.py); naive: one per program, nothing prepared (as mxeval).
COMPILATIONS = ("batched", "naive")


@dataclass(frozen=True)
class Sample:
    task_id: str
    completion: str
    index: int  # the completion's number among its problem's samples, in file order
    line: int


def _read_jsonl(path: Path, what: str) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    rows = read_jsonl(path, numbered=True)
    if not rows:
        raise DataError(f"{path}: empty: expected one JSON object per line ({what})")
    return rows


def _require_strings(path: Path, number: int, row: dict, fields: tuple[str, ...]) -> None:
    for name in fields:
        if name not in row:
            raise DataError(f"{path}: line {number}: missing field `{name}` (required: {', '.join(fields)})")
        if not isinstance(row[name], str):
            raise DataError(f"{path}: line {number}: field `{name}`: expected a string, "
                            f"got {type(row[name]).__name__}")
    if not row["task_id"]:
        raise DataError(f"{path}: line {number}: field `task_id`: expected a non-empty string")


def load_problems(path: str | Path) -> dict[str, dict]:
    """task_id → problem row, checked: required string fields, a known language, unique task ids."""
    path = Path(path)
    problems: dict[str, dict] = {}
    for number, row in _read_jsonl(path, "problems"):
        _require_strings(path, number, row, PROBLEM_FIELDS)
        if row["language"] not in LANGUAGES:
            raise DataError(f"{path}: line {number}: field `language`: unknown language {row['language']!r} "
                            f"(known: {', '.join(LANGUAGES)})")
        if row.get("canonical_solution") is not None and not isinstance(row["canonical_solution"], str):
            raise DataError(f"{path}: line {number}: field `canonical_solution`: expected a string or null")
        if row["task_id"] in problems:
            raise DataError(f"{path}: line {number}: field `task_id`: duplicate task id {row['task_id']!r}")
        problems[row["task_id"]] = row
    return problems


def load_samples(path: str | Path, problems: dict[str, dict]) -> list[Sample]:
    """Samples in file order, each numbered within its problem; every task_id must name a problem."""
    path = Path(path)
    samples, seen = [], Counter()
    for number, row in _read_jsonl(path, "samples"):
        _require_strings(path, number, row, SAMPLE_FIELDS)
        if row["task_id"] not in problems:
            raise DataError(f"{path}: line {number}: field `task_id`: {row['task_id']!r} is not a task id of the "
                            "problems file")
        samples.append(Sample(row["task_id"], row["completion"], seen[row["task_id"]], number))
        seen[row["task_id"]] += 1
    return samples


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) passes: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise DataError(f"--k: expected comma-separated positive integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise DataError(f"--k: expected comma-separated positive integers, got {text!r}")
    return ks


@dataclass
class Evaluation:
    ks: list[int]
    samples: list[dict]  # one row per sample, in input order
    problems: list[dict]  # one row per problem with samples
    languages: dict[str, dict]  # per-language summary with pass@k
    settings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"k": self.ks, "languages": self.languages, **self.settings}


def _summarise(problems: dict[str, dict], samples: list[Sample], executions: list[Execution], ks: list[int],
               unavailable: dict[str, str]) -> tuple[list[dict], list[dict], dict[str, dict]]:
    sample_rows = []
    by_task: dict[str, list[bool]] = defaultdict(list)
    for sample, result in zip(samples, executions):
        language = problems[sample.task_id]["language"]
        sample_rows.append({"task_id": sample.task_id, "language": language, "completion_index": sample.index,
                            "passed": result.passed, "status": result.status,
                            "duration_s": round(result.duration_s, 4), "compile_s": round(result.compile_s, 4),
                            "exit_code": result.exit_code, "stderr": result.stderr})
        by_task[sample.task_id].append(result.passed)
    problem_rows = []
    for task_id, problem in problems.items():
        if task_id not in by_task:
            continue
        n, c = len(by_task[task_id]), sum(by_task[task_id])
        scored = problem["language"] not in unavailable
        problem_rows.append({"task_id": task_id, "language": problem["language"], "n": n, "correct": c,
                             **({} if scored else {"toolchain_error": True}),
                             **{f"pass@{k}": (pass_at_k(n, c, k) if k <= n and scored else None) for k in ks}})
    languages: dict[str, dict] = {}
    for language in sorted({p["language"] for p in problems.values()}):
        rows = [r for r in problem_rows if r["language"] == language]
        statuses = Counter(r["status"] for r in sample_rows if r["language"] == language)
        summary = {"problems": len(rows), "samples": sum(r["n"] for r in rows),
                   "unattempted": sorted(t for t, p in problems.items() if p["language"] == language
                                         and t not in by_task),
                   "status_counts": {s: statuses[s] for s in STATUSES}, "skipped_k": {},
                   "available": language not in unavailable}
        if language in unavailable:
            summary["unavailable"] = unavailable[language]
        for k in ks:
            short = [r for r in rows if r["n"] < k]
            if language in unavailable:
                summary[f"pass@{k}"] = None
                summary["skipped_k"][str(k)] = "toolchain unavailable (failed its self-test)"
            elif not rows or short:  # as in HumanEval: pass@k only when every problem has at least k samples
                summary[f"pass@{k}"] = None
                summary["skipped_k"][str(k)] = (f"k={k} > n for {len(short)} of {len(rows)} problems "
                                                f"(fewest samples: {min(r['n'] for r in rows)})" if rows
                                                else "no samples")
            else:
                summary[f"pass@{k}"] = float(np.mean([r[f"pass@{k}"] for r in rows]))
        languages[language] = summary
    return sample_rows, problem_rows, languages


class UnknownCompilationError(XstiltsError):
    pass


T = TypeVar("T")


@dataclass
class _Runner:
    """Runs programs on `pool`, one sandbox slot per task: each alone (its own compile, then its run), or, with
    batched compilation, compiled in batches (batch.py) and then each run alone."""
    sandbox: Sandbox
    toolchains: dict[str, Toolchain]
    scratch: Path
    pool: ThreadPoolExecutor
    workers: int
    compilation: str
    limits: dict  # timeout_s, compile_timeout_s, memory_mb
    slots: queue.Queue = field(default_factory=queue.Queue)
    batches: Counter = field(default_factory=Counter)  # (language, batches | programs | compiled_alone) → count

    def with_slot(self, work: Callable[[int], T]) -> T:
        slot = self.slots.get()
        try:
            return work(slot)
        finally:
            self.slots.put(slot)

    def execute_alone(self, problem: dict, completion: str) -> Execution:
        return self.with_slot(lambda slot: execute(problem, completion, self.sandbox,
                                                   self.toolchains[problem["language"]], slot=slot,
                                                   scratch=self.scratch, **self.limits))

    def run_compiled(self, problem: dict, compiled: Compiled) -> Execution:
        def work(slot: int) -> Execution:
            try:
                adopt(compiled.workdir, self.sandbox, slot)
                return run_built(LANGUAGES[problem["language"]].for_problem(problem),
                                 self.toolchains[problem["language"]], compiled.built, self.sandbox,
                                 compiled.workdir, slot=slot, **self.limits)
            finally:
                shutil.rmtree(compiled.workdir, ignore_errors=True)
        return self.with_slot(work)

    def compile_chunk(self, programs: list[tuple[dict, str]]) -> list[Compiled | None]:
        problem = programs[0][0]
        language = LANGUAGES[problem["language"]].for_problem(problem)
        return self.with_slot(lambda slot: compile_batch(language, self.toolchains[problem["language"]], programs,
                                                         self.sandbox, self.scratch, slot,
                                                         self.limits["compile_timeout_s"]))

    def run_all(self, programs: list[tuple[dict, str]], done: Callable[[], None] = lambda: None) -> list[Execution]:
        """Every program's Execution, in order. A batch compiles when a worker has no run to do, so the programs a
        batch compiled run before the next batch starts: compiled programs wait on disk for a batch or two at most."""
        executions: list[Execution | None] = [None] * len(programs)
        runs: deque[tuple[int, Callable[[], Execution]]] = deque()
        waiting: deque[list[int]] = deque()
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, (problem, completion) in enumerate(programs):
            language = LANGUAGES[problem["language"]].for_problem(problem)
            if self.compilation == "batched" and language.batch is not None:
                groups[(problem["language"], language.source)].append(i)
            else:
                runs.append((i, partial(self.execute_alone, problem, completion)))
        for indices in groups.values():
            size = batch_size(len(indices), self.workers)
            for start in range(0, len(indices), size):
                chunk = indices[start:start + size]
                if len(chunk) > 1:
                    waiting.append(chunk)
                else:  # a batch of one would only add the driver's start-up
                    runs.extend((i, partial(self.execute_alone, *programs[i])) for i in chunk)
        in_flight: dict[Future, tuple[bool, int | list[int]]] = {}
        while True:
            while len(in_flight) < self.workers and (runs or waiting):
                if runs:
                    i, work = runs.popleft()
                    in_flight[self.pool.submit(work)] = (False, i)
                else:
                    chunk = waiting.popleft()
                    in_flight[self.pool.submit(self.compile_chunk, [programs[i] for i in chunk])] = (True, chunk)
            if not in_flight:
                return executions
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                is_batch, what = in_flight.pop(future)
                if not is_batch:
                    executions[what] = future.result()
                    done()
                    continue
                compiled = future.result()
                language = programs[what[0]][0]["language"]
                self.batches.update({(language, "batches"): 1, (language, "programs"): len(what),
                                     (language, "compiled_alone"): sum(c is None for c in compiled)})
                for i, outcome in zip(what, compiled):
                    runs.append((i, partial(self.run_compiled, programs[i][0], outcome) if outcome is not None
                                 else partial(self.execute_alone, *programs[i])))

    def batch_counts(self) -> dict[str, dict[str, int]]:
        return {lang: {key: self.batches[(lang, key)] for key in ("batches", "programs", "compiled_alone")}
                for lang in sorted({lang for lang, _ in self.batches})}


def evaluate(problems: dict[str, dict], samples: list[Sample], *, ks: list[int], workers: int | None = None,
             timeout_s: float = 10.0, compile_timeout_s: float = 60.0, memory_mb: int = 512,
             allow_no_isolation: bool = False, typescript_mode: str = "strict", compilation: str = "batched",
             desc: str = "code-eval") -> Evaluation:
    """Self-test each language's toolchain, then run every sample (in parallel, one sandboxed program per worker at
    a time) and compute pass@k. `compilation`: `batched` (batch.py) or `naive` (one compiler process per program,
    no precompiled header: the benchmark's baseline); the results are the same."""
    check_typescript_mode(typescript_mode)
    if compilation not in COMPILATIONS:
        raise UnknownCompilationError(f"unknown compilation {compilation!r}; known: {', '.join(COMPILATIONS)}")
    sandbox = Sandbox(allow_no_isolation=allow_no_isolation)
    used = sorted({problems[s.task_id]["language"] for s in samples})
    toolchains: dict[str, Toolchain] = {lang: find_toolchain(LANGUAGES[lang], typescript_mode=typescript_mode)
                                        for lang in used}  # fail before running
    workers = max(1, workers or os.cpu_count() or 1)
    limits = {"timeout_s": timeout_s, "compile_timeout_s": compile_timeout_s, "memory_mb": memory_mb}

    start = time.monotonic()
    executions: list[Execution | None] = [None] * len(samples)
    with sandbox.reserve_slots(workers) as reserved, sandbox.scratch() as scratch, \
            ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(samples), desc=desc, unit="program", dynamic_ncols=True, mininterval=1.0,
                 disable=not env.progress_enabled()) as progress:
        runner = _Runner(sandbox, toolchains, scratch, pool, workers, compilation, limits)
        for slot in reserved:
            runner.slots.put(slot)
        uids = [sandbox.uid(slot) for slot in reserved] if sandbox.isolation.dedicated_uids else []
        for lang, toolchain in toolchains.items():
            if LANGUAGES[lang].prepare is not None and compilation == "batched":
                toolchains[lang] = LANGUAGES[lang].prepare(toolchain, sandbox, scratch, reserved[0])
        # The self-test: once per language and evaluation, with the samples' sandbox, limits, toolchains and
        # compilation.
        checks = [(lang, check) for lang in used for check in checks_for(lang)]
        outcomes = runner.run_all([(check.problem(), check.completion) for _, check in checks])
        self_test = {lang: verdict(lang, toolchains[lang], [(c, r) for (cl, c), r in zip(checks, outcomes)
                                                             if cl == lang]) for lang in used}
        unavailable = {lang: record["reason"] for lang, record in self_test.items() if not record["available"]}
        prepare_s = time.monotonic() - start
        runner.batches.clear()
        scored = []
        for i, sample in enumerate(samples):
            language = problems[sample.task_id]["language"]
            if language in unavailable:
                executions[i] = Execution("toolchain_error", 0.0, 0.0, None, unavailable[language])
            else:
                scored.append(i)
        position = Progress("execute", len(samples))
        progress.update(len(samples) - len(scored))
        position.advance(len(samples) - len(scored))

        def advance() -> None:
            progress.update()
            position.advance()

        ran = runner.run_all([(problems[samples[i].task_id], samples[i].completion) for i in scored], advance)
        for i, execution in zip(scored, ran):
            executions[i] = execution
        position.close()
    wall = time.monotonic() - start
    sample_rows, problem_rows, languages = _summarise(problems, samples, executions, ks, unavailable)
    settings = {"timeout_s": timeout_s, "compile_timeout_s": compile_timeout_s, "memory_mb": memory_mb,
                "typescript_mode": typescript_mode, "workers": workers, "wall_s": round(wall, 3),
                "prepare_s": round(prepare_s, 3), "compilation": compilation, "batches": runner.batch_counts(),
                "isolation": {**sandbox.isolation.as_dict(), "uids": uids},
                "toolchains": {lang: _toolchain_record(tc) for lang, tc in toolchains.items()},
                "self_test": self_test}
    return Evaluation(ks, sample_rows, problem_rows, languages, settings)


def _toolchain_record(tc: Toolchain) -> dict:
    record: dict = {"paths": dict(tc.paths)}
    if tc.node_version:
        record.update(node_version=tc.node_version, es_version=tc.es_version, node_modules=tc.node_modules)
    if tc.typescript_mode:
        record["typescript_mode"] = tc.typescript_mode
    return record


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def markdown_table(evaluation: Evaluation) -> str:
    ks = evaluation.ks
    lines = ["# Execution pass@k", "",
             "| language | problems | samples | " + " | ".join(f"pass@{k}" for k in ks) + " | "
             + " | ".join(s.replace("_", " ") for s in STATUSES) + " |",
             "|---|---:|---:|" + "---:|" * (len(ks) + len(STATUSES))]
    notes = []
    self_test = evaluation.settings.get("self_test", {})
    for language, row in evaluation.languages.items():
        counts = row["status_counts"]
        lines.append(f"| {language} | {row['problems']} | {row['samples']} | "
                     + " | ".join(_percent(row[f"pass@{k}"]) for k in ks) + " | "
                     + " | ".join(str(counts.get(s, 0)) for s in STATUSES) + " |")
        if not row.get("available", True):
            notes.append(f"- {language}: **unavailable**, not scored: {row['unavailable']}")
        else:
            notes += [f"- {language}: pass@{k} skipped: {why}" for k, why in row["skipped_k"].items()]
        if row["unattempted"]:
            notes.append(f"- {language}: {len(row['unattempted'])} problems without samples (not counted)")
        missing = self_test.get(language, {}).get("missing_dependencies", [])
        if missing:
            notes.append(f"- {language}: test dependencies missing ({', '.join(missing)}): problems importing them "
                         "fail; `make toolchains` installs them")
    settings = evaluation.settings
    isolation = settings.get("isolation", {})
    checked = sorted(self_test)
    lines += ["", "pass@k in percent (unbiased estimator, mean over problems); — = not computed. Statuses count "
              "samples."] + ([""] + notes if notes else [])
    lines += ["", f"Sandbox: {isolation.get('mode', '?')}" + (f" ({isolation['reason']})" if isolation.get("reason")
                                                              else "")
              + f"; timeout {settings.get('timeout_s')} s, memory {settings.get('memory_mb')} MB."]
    if checked:
        lines.append("Toolchain self-test: " + ", ".join(
            f"{lang} {'ok' if self_test[lang]['available'] else 'FAILED'}" for lang in checked) + ".")
    typescript = settings.get("toolchains", {}).get("typescript")
    if typescript:
        lines.append(f"TypeScript: typescript_mode {typescript.get('typescript_mode')} ("
                     + ("type errors are compile errors" if typescript.get("typescript_mode") == "strict"
                        else "emitted JavaScript runs despite type errors, as in mxeval")
                     + f"), --lib/--target {typescript.get('es_version') or '?'} for node "
                     f"{typescript.get('node_version') or '?'}.")
    return "\n".join(lines) + "\n"


def write_results(out: str | Path, evaluation: Evaluation) -> Path:
    """`out/` with samples.jsonl, problems.jsonl, pass_at_k.json and pass_at_k.md, all or nothing."""
    with atomic_dir(out) as tmp:
        atomic_write_text(tmp / "samples.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in evaluation.samples))
        atomic_write_text(tmp / "problems.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in evaluation.problems))
        write_json(tmp / "pass_at_k.json", evaluation.summary())
        atomic_write_text(tmp / "pass_at_k.md", markdown_table(evaluation))
    return Path(out)


def code_eval(problems_path: str | Path, samples_path: str | Path, out: str | Path, *, ks: list[int],
              **options) -> Evaluation:
    """Load and check both files (nothing runs or is written on bad input), evaluate, write `out/`."""
    problems = load_problems(problems_path)
    samples = load_samples(samples_path, problems)
    evaluation = evaluate(problems, samples, ks=ks, **options)
    write_results(out, evaluation)
    return evaluation
