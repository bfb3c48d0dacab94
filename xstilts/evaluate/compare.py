"""`xstilts compare RUN_A RUN_B`: the paired comparison of two runs, the question a scheduled retraining asks ("is
the new run better, worse, or the same as the old one, and where?").

A run is a report folder (summary.json of format 2 and predictions/<condition>/seed-<seed>/<task>/<language>.jsonl
beside it), a summary.json inside one, or a local workdir whose `latest` link points to one. Both runs must hold the
same targets, conditions, languages, seeds and test examples. For every target × condition × language, each task
average and the XTREME average of each condition, B is tested against A with the statistics the report uses
(evaluate/statistics.py: paired bootstrap over test examples and seeds, two-sided), and the p-values of all those
tests are adjusted together (Holm by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xstilts.errors import ConfigError, DataError
from xstilts.evaluate import predictions as preds
from xstilts.evaluate import statistics as stats
from xstilts.evaluate.summary import check_summary, seed_folder
from xstilts.io import atomic_dir, atomic_write_text, markdown_table, read_json, write_json

COMPARE_FILE = "compare.json"


def _summary_path(run: str | Path) -> Path:
    path = Path(run)
    if path.is_file():
        return path
    for candidate in (path / "summary.json", path / "latest" / "summary.json"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{run}: no summary.json (expected a report folder, its summary.json, or a local workdir whose "
                    "`latest` link points to a report)")


def load_run(run: str | Path) -> dict:
    """{"summary", "root", "runs": {(target, condition, language): {seed: {id: record}}}, "metric": {target: m}}."""
    path = _summary_path(run)
    summary = check_summary(read_json(path), str(path))
    root = path.parent
    runs: dict = {}
    metric: dict = {}
    for t in summary["targets"]:
        for c in summary["conditions"]:
            for s in summary["seeds"]:
                folder = root / preds.FOLDER / str(c) / seed_folder(s) / t
                meta_path = folder / "metric.json"
                if not meta_path.is_file():
                    raise DataError(f"{meta_path}: missing: {path} lists target {t!r}, condition {c!r}, seed {s} "
                                    "but its predictions are not beside it")
                meta = read_json(meta_path)
                for lang in summary["scores"][t][c]:
                    file = folder / f"{lang}.jsonl"
                    if not file.is_file():
                        raise DataError(f"{file}: missing: {path} has a {t} score for language {lang!r}")
                    rows = preds.read_predictions(file, meta["kind"], meta["metric"])
                    metric[t], records = preds.statistic_records(meta["kind"], meta["metric"], rows, meta.get("k"))
                    runs.setdefault((t, c, lang), {})[s] = records
    return {"summary": summary, "root": root, "path": path, "runs": runs, "metric": metric}


def _differences(name: str, a: Any, b: Any) -> str | None:
    a, b = list(a), list(b)
    if set(map(str, a)) == set(map(str, b)):
        return None
    only_a = [str(x) for x in a if str(x) not in set(map(str, b))]
    only_b = [str(x) for x in b if str(x) not in set(map(str, a))]
    parts = ([f"{', '.join(only_a)} only in A"] if only_a else []) + ([f"{', '.join(only_b)} only in B"] if only_b else [])
    return f"{name} differ: " + "; ".join(parts)


def _check_same_grid(a: dict, b: dict) -> None:
    sa, sb = a["summary"], b["summary"]
    if list(sa["seeds"]) != list(sb["seeds"]):
        raise ConfigError(f"seeds differ between the runs: A {sa['seeds']}, B {sb['seeds']}: a paired comparison "
                          "pairs restart with restart, so both runs need the same seeds")
    for name in ("targets", "conditions"):
        problem = _differences(name, sa[name], sb[name])
        if problem:
            raise ConfigError(problem)
    for t in sa["targets"]:
        if sa["metric"][t] != sb["metric"][t]:
            raise ConfigError(f"{t}: metric differs: A {sa['metric'][t]}, B {sb['metric'][t]}")
        for c in sa["conditions"]:
            problem = _differences(f"{t} × {c}: languages", sa["scores"][t][c], sb["scores"][t][c])
            if problem:
                raise DataError(problem)


def compare_runs(run_a: str | Path, run_b: str | Path, out: str | Path | None = None, *,
                 method: str = "bootstrap", correction: str = "holm", alpha: float = stats.ALPHA,
                 n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> dict:
    """B vs A on every cell, task average and XTREME average; writes out/{compare.json, compare.md} if `out`."""
    a, b = load_run(run_a), load_run(run_b)
    _check_same_grid(a, b)
    summary = a["summary"]
    targets, conditions = summary["targets"], summary["conditions"]
    options = dict(method=method, n_resamples=n_resamples, seed=seed, names=("A", "B"))
    cells: dict = {}
    task_average: dict = {}
    xtreme: dict = {}
    tests: list[dict] = []

    def record(entry: dict, a_score: float, b_score: float) -> dict:
        entry.update(a=a_score, b=b_score)
        tests.append(entry)
        return entry

    for t in targets:
        for c in conditions:
            languages = list(summary["scores"][t][c])
            for lang in languages:
                key = (t, c, lang)
                entry = stats.paired_test(a["runs"][key], b["runs"][key], a["metric"][t], where=key, **options)
                cells.setdefault(t, {}).setdefault(c, {})[lang] = record(
                    entry, summary["scores"][t][c][lang], b["summary"]["scores"][t][c][lang])
            side_a = {lang: a["runs"][(t, c, lang)] for lang in languages}
            side_b = {lang: b["runs"][(t, c, lang)] for lang in languages}
            entry = stats.paired_test_average(side_a, side_b, a["metric"][t], where=(t, c), **options)
            task_average.setdefault(t, {})[c] = record(entry, summary["task_average"][t][c],
                                                       b["summary"]["task_average"][t][c])
    for c in conditions:
        keys = [(t, lang) for t in targets for lang in summary["scores"][t][c]]
        side_a = {k: a["runs"][(k[0], c, k[1])] for k in keys}
        side_b = {k: b["runs"][(k[0], c, k[1])] for k in keys}
        entry = stats.paired_test_average(side_a, side_b, a["metric"], stats.xtreme_weights(side_a),
                                          where=("XTREME", c), **options)
        xtreme[c] = record(entry, summary["xtreme_average"][c], b["summary"]["xtreme_average"][c])
    for entry, p in zip(tests, stats.adjust([e["p_value"] for e in tests], correction)):
        entry["p_adjusted"] = float(p)
        entry["significant"] = bool(p < alpha)
    result = {"a": str(a["path"]), "b": str(b["path"]), "seeds": summary["seeds"], "targets": targets,
              "conditions": conditions,
              "method": {"test": method, "correction": correction, "alpha": alpha, "n_resamples": n_resamples,
                         "seed": seed, "family": f"all {len(tests)} tests (cells, task averages, XTREME averages)",
                         "citations": {k: stats.CITATIONS[k] for k in (method, "seeds", correction)}},
              "cells": cells, "task_average": task_average, "xtreme_average": xtreme}
    if out is not None:
        with atomic_dir(out) as tmp:
            write_json(tmp / COMPARE_FILE, result)
            atomic_write_text(tmp / "compare.md", compare_markdown(result))
    return result


def headline_rows(result: dict) -> list[list[str]]:
    """Task averages and XTREME averages: target, condition, A, B, Δ, 95 % CI, p adjusted, significant."""
    rows = []
    for name, per_condition in ([(t, result["task_average"][t]) for t in result["targets"]]
                                + [("XTREME average", result["xtreme_average"])]):
        for c in result["conditions"]:
            e = per_condition[c]
            rows.append([name, c, f"{100 * e['a']:.1f}", f"{100 * e['b']:.1f}", f"{100 * e['delta']:+.1f}",
                         f"[{100 * e['delta_ci95'][0]:+.1f}, {100 * e['delta_ci95'][1]:+.1f}]",
                         f"{e['p_adjusted']:.3g}", "yes" if e["significant"] else "no"])
    return rows


HEADERS = ["target", "condition", "A", "B", "Δ B − A", "95 % CI of Δ", "p adjusted", "significant"]


def compare_markdown(result: dict) -> str:
    m = result["method"]
    seeds = result["seeds"]
    return (f"# B vs A\n\nA: `{result['a']}`  \nB: `{result['b']}`\n\n{len(seeds)} seed(s) {seeds}; paired "
            f"{m['test']} over test examples{' and seeds' if len(seeds) > 1 else ''} ({m['n_resamples']} resamples), "
            f"two-sided, {m['correction']}-adjusted across {m['family']}, α = {m['alpha']}. Scores ×100.\n\n"
            + markdown_table(HEADERS, headline_rows(result)))
