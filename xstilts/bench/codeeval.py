"""`xstilts code-eval --bench`: sandboxed execution throughput (programs/s per language) on the built-in fixture
problems' canonical solutions, through the same harness that scores generated code: this project's compilation
(`batched`: many programs per compiler process, C++'s shared precompiled header) and, in the same run, the naive
baseline (one compiler process per program, nothing prepared: as mxeval and MultiPL-E run them), with the ratio."""

from __future__ import annotations

from xstilts.codeexec.batch import MAX_BATCH
from xstilts.codeexec.harness import COMPILATIONS, Sample, evaluate
from xstilts.sampledata.code_fixtures import canonical_samples, fixture_problems

BASELINE = "naive"


def _rate(programs: int, seconds: float) -> float:
    return round(programs / max(seconds, 1e-9), 2)


def bench(languages: tuple[str, ...] = ("python", "cpp"), programs: int = 24, workers: int | None = None,
          allow_no_isolation: bool = False, compilations: tuple[str, ...] = COMPILATIONS) -> dict[str, dict]:
    """Per language: the fixture problems' canonical solutions, repeated to `programs`, evaluated once per
    compilation (this project's first, then the baseline); programs/s over the whole evaluation and after its
    one-time preparation (toolchain preparation and self-test), and each ratio to the baseline."""
    figures = {}
    for language in languages:
        rows = fixture_problems((language,))
        problems = {p["task_id"]: p for p in rows}
        copies = -(-programs // len(rows))
        samples = [Sample(s["task_id"], s["completion"], i, 0)
                   for i, s in enumerate(canonical_samples(rows, copies)[:programs])]
        row: dict = {"programs": len(samples)}
        for compilation in compilations:
            evaluation = evaluate(problems, samples, ks=[1], workers=workers, allow_no_isolation=allow_no_isolation,
                                  compilation=compilation, desc=f"bench {language} {compilation}")
            wall, prepare = evaluation.settings["wall_s"], evaluation.settings["prepare_s"]
            row["workers"] = evaluation.settings["workers"]
            row[compilation] = {"passed": sum(r["passed"] for r in evaluation.samples), "wall_s": wall,
                                "prepare_s": prepare, "programs_per_s": _rate(len(samples), wall),
                                "programs_per_s_after_prepare": _rate(len(samples), wall - prepare),
                                "batches": evaluation.settings["batches"].get(language, {})}
        if BASELINE in row and compilations[0] != BASELINE:
            ours, base = row[compilations[0]], row[BASELINE]
            row["ratio"] = round(ours["programs_per_s"] / base["programs_per_s"], 2)
            row["ratio_after_prepare"] = round(ours["programs_per_s_after_prepare"]
                                               / base["programs_per_s_after_prepare"], 2)
        figures[language] = row
    return figures


def table(figures: dict[str, dict], compilations: tuple[str, ...] = COMPILATIONS) -> str:
    """The figures as a Markdown table with a legend."""
    ours = compilations[0]
    both = BASELINE in compilations and ours != BASELINE
    head = ["language", "programs", f"{ours} programs/s"] + ([f"{BASELINE} programs/s", "ratio"] if both else []) \
        + [f"{ours} after preparation"] + ([f"{BASELINE} after preparation", "ratio after preparation"]
                                           if both else []) + ["passed"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    workers = set()
    for language, f in figures.items():
        workers.add(f["workers"])
        cells = [language, str(f["programs"]), f"{f[ours]['programs_per_s']:.2f}"]
        if both:
            cells += [f"{f[BASELINE]['programs_per_s']:.2f}", f"{f['ratio']:.2f}×"]
        cells.append(f"{f[ours]['programs_per_s_after_prepare']:.2f}")
        if both:
            cells += [f"{f[BASELINE]['programs_per_s_after_prepare']:.2f}", f"{f['ratio_after_prepare']:.2f}×"]
        cells.append(" / ".join(f"{f[c]['passed']}" for c in compilations))
        lines.append("| " + " | ".join(cells) + " |")
    legend = [(f"{', '.join(map(str, sorted(workers)))} worker(s); both compilations of a language in the same run. "
               f"`{ours}`: this project's compilation (Java, TypeScript, Go: up to {MAX_BATCH} programs per compiler "
               "process; C++: a shared precompiled header).")]
    if both:
        legend.append(f"`{BASELINE}`: one compiler process per program, nothing prepared, as mxeval and MultiPL-E "
                      f"run them. ratio = {ours} / {BASELINE}.")
    legend.append("programs/s counts the whole evaluation; `after preparation` leaves out the one-time toolchain "
                  "preparation and self-test. Every program runs alone in its own sandbox either way. passed: "
                  + " / ".join(compilations) + ".")
    return "\n".join(lines) + "\n\n" + "\n".join(legend) + "\n"
