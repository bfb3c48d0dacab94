"""Execution-based evaluation: run every sample's program in the sandbox, then pass@k per problem and language.

Problems are HumanEval/MBXP JSONL rows (`task_id`, `prompt`, `test`, `entry_point`, `language`, optional
`canonical_solution`); samples are JSONL rows (`task_id`, `completion`), several per problem for pass@k with k > 1.
pass@k is Chen et al. (2021)'s unbiased estimator 1 - C(n-c, k) / C(n, k), as a product (no huge binomials).
Each language's toolchain first passes a self-test (selftest.py) in the same sandbox and limits; the samples of a
language that fails it are `toolchain_error`, and that language gets no pass@k (never 0).
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
from tqdm import tqdm
from xstilts import env
from xstilts.progress import Progress
from xstilts.codeexec.languages import (LANGUAGES, STATUSES, Execution, Toolchain, check_typescript_mode, execute,
                                        find_toolchain)
from xstilts.codeexec.selftest import checks_for, verdict
from xstilts.errors import DataError
from xstilts.io import atomic_dir, atomic_write_text, read_jsonl, write_json
from xstilts.codeexec.sandbox import Sandbox


PROBLEM_FIELDS = ("task_id", "prompt", "test", "entry_point", "language")
SAMPLE_FIELDS = ("task_id", "completion")


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


def evaluate(problems: dict[str, dict], samples: list[Sample], *, ks: list[int], workers: int | None = None,
             timeout_s: float = 10.0, compile_timeout_s: float = 60.0, memory_mb: int = 512,
             allow_no_isolation: bool = False, typescript_mode: str = "strict", desc: str = "code-eval") -> Evaluation:
    """Self-test each language's toolchain, then run every sample (in parallel, one sandboxed program per worker at
    a time) and compute pass@k."""
    check_typescript_mode(typescript_mode)
    sandbox = Sandbox(allow_no_isolation=allow_no_isolation)
    used = sorted({problems[s.task_id]["language"] for s in samples})
    toolchains: dict[str, Toolchain] = {lang: find_toolchain(LANGUAGES[lang], typescript_mode=typescript_mode)
                                        for lang in used}  # fail before running
    workers = max(1, workers or os.cpu_count() or 1)
    slots: queue.Queue[int] = queue.Queue()

    def run_program(problem: dict, completion: str) -> Execution:  # `scratch` is bound below, before any call
        slot = slots.get()
        try:
            return execute(problem, completion, sandbox, toolchains[problem["language"]], timeout_s=timeout_s,
                           compile_timeout_s=compile_timeout_s, memory_mb=memory_mb, slot=slot, scratch=scratch)
        finally:
            slots.put(slot)

    def run_one(sample: Sample) -> Execution:
        problem = problems[sample.task_id]
        if problem["language"] in unavailable:
            return Execution("toolchain_error", 0.0, 0.0, None, unavailable[problem["language"]])
        return run_program(problem, sample.completion)

    start = time.monotonic()
    executions: list[Execution | None] = [None] * len(samples)
    with sandbox.reserve_slots(workers) as reserved, sandbox.scratch() as scratch, \
            ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(samples), desc=desc, unit="program", dynamic_ncols=True, mininterval=1.0,
                 disable=not env.progress_enabled()) as progress:
        for slot in reserved:
            slots.put(slot)
        uids = [sandbox.uid(slot) for slot in reserved] if sandbox.isolation.dedicated_uids else []
        for lang, toolchain in toolchains.items():
            if LANGUAGES[lang].prepare is not None:
                toolchains[lang] = LANGUAGES[lang].prepare(toolchain, sandbox, scratch, reserved[0])
        # The self-test: once per language and evaluation, with the samples' sandbox, limits and toolchains.
        checks = [(lang, check) for lang in used for check in checks_for(lang)]
        outcomes = list(pool.map(lambda item: run_program(item[1].problem(), item[1].completion), checks))
        self_test = {lang: verdict(lang, toolchains[lang], [(c, r) for (cl, c), r in zip(checks, outcomes)
                                                             if cl == lang]) for lang in used}
        unavailable = {lang: record["reason"] for lang, record in self_test.items() if not record["available"]}
        prepare_s = time.monotonic() - start
        futures = {pool.submit(run_one, sample): i for i, sample in enumerate(samples)}
        position = Progress("execute", len(samples))
        for future in as_completed(futures):
            executions[futures[future]] = future.result()
            progress.update()
            position.advance()
        position.close()
    wall = time.monotonic() - start
    sample_rows, problem_rows, languages = _summarise(problems, samples, executions, ks, unavailable)
    settings = {"timeout_s": timeout_s, "compile_timeout_s": compile_timeout_s, "memory_mb": memory_mb,
                "typescript_mode": typescript_mode, "workers": workers, "wall_s": round(wall, 3),
                "prepare_s": round(prepare_s, 3), "isolation": {**sandbox.isolation.as_dict(), "uids": uids},
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
