"""`xstilts code-eval --bench`: sandboxed execution throughput (programs/s per language) on the built-in fixture
problems' canonical solutions, through the same harness that scores generated code."""

from __future__ import annotations

from xstilts.codeexec.harness import Sample, evaluate
from xstilts.sampledata.code_fixtures import canonical_samples, fixture_problems


def bench(languages: tuple[str, ...] = ("python", "cpp"), programs: int = 24, workers: int | None = None,
          allow_no_isolation: bool = False) -> dict[str, dict]:
    """Throughput in programs/s per language: the fixture problems' canonical solutions, repeated to `programs`."""
    figures = {}
    for language in languages:
        rows = fixture_problems((language,))
        problems = {p["task_id"]: p for p in rows}
        copies = -(-programs // len(rows))
        samples = [Sample(s["task_id"], s["completion"], i, 0)
                   for i, s in enumerate(canonical_samples(rows, copies)[:programs])]
        evaluation = evaluate(problems, samples, ks=[1], workers=workers, allow_no_isolation=allow_no_isolation,
                              desc=f"bench {language}")
        wall = evaluation.settings["wall_s"]
        passed = sum(r["passed"] for r in evaluation.samples)
        prepare = evaluation.settings["prepare_s"]
        figures[language] = {"programs": len(samples), "passed": passed, "wall_s": wall, "prepare_s": prepare,
                             "programs_per_s": round(len(samples) / wall, 2),
                             "programs_per_s_after_prepare": round(len(samples) / max(wall - prepare, 1e-9), 2),
                             "workers": evaluation.settings["workers"]}
    return figures
