"""A run's results as one grid: the gather steps (7), which collect zero-shot results and their per-example
predictions, and `summarize`, which turns them into summary.json's numbers and statistics.

A result is one eval step's results.json: one target task × condition × seed, its score per language. Its
per-example predictions (predictions/<task>/<language>.jsonl, see predictions.py) travel with it: each gather step
copies them into its own folder, `predictions/<condition>/seed-<seed>/<task>/`, and the report keeps that tree, so a
finished run holds every example of every cell.

summary.json (format 2):

  {"format": 2, "targets", "conditions", "seeds", "metric": {task: metric},
   "scores": {target: {condition: {language: mean over seeds}}}, "task_average": {target: {condition: avg}},
   "xtreme_average": {condition: avg}, "delta_vs_none": {target: {condition: {language|average: Δ}}},
   "xtreme_delta_vs_none": {condition: Δ}, "per_seed": {target: {condition: {seed: {language: score}}}},
   "best_intermediate": {target: {"condition" (null unless its gain is significant), "candidate", "score", "gain",
                                  "p_adjusted", "significant"}},
   "statistics": {"method": {...}, "cells": {target: {condition: {language: stats}}},
                  "task_average": {target: {condition: stats}}, "xtreme_average": {condition: stats}}, ...}

where stats = {mean, std (null with one seed), n_seeds, ci95, ci95_method, per_seed, ...} plus, for a condition other
than `none`, {delta, delta_ci95, p_value, p_adjusted, significant, method} (evaluate/statistics.py).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.errors import ConfigError, DataError
from xstilts.evaluate import predictions as preds
from xstilts.evaluate import statistics as stats
from xstilts.io import atomic_dir, dir_fingerprint, fingerprint, read_json, write_json
from xstilts.kinds.metrics import xtreme_average
from xstilts.progress import phase
from xstilts.provenance import Provenance

BASELINE = stats.BASELINE
FORMAT = 2
GATHERED_FILE = "gathered.json"  # a gather step's results (older runs: condition.json)
OLD_GATHERED_FILE = "condition.json"
RESULTS_FILE = "results.json"
SCORE_SLACK = 1e-6  # a score recomputed from the per-example records may differ from results.json by float rounding


def ordered_conditions(conditions) -> list[str]:
    return ([BASELINE] if BASELINE in conditions else []) + sorted(c for c in conditions if c != BASELINE)


def seed_folder(seed: Any) -> str:
    return f"seed-{seed}"


# ---- reading results -------------------------------------------------------------------------------------------

def read_results(path: Path) -> list[dict]:
    """The results in a results.json, a gathered.json, or a folder holding one; each with "predictions_dir": the
    folder of its per-example predictions (absolute), or None when there is none."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        for name in (GATHERED_FILE, OLD_GATHERED_FILE, RESULTS_FILE):
            if (path / name).exists():
                path = path / name
                break
        else:
            path = path / RESULTS_FILE
    if not path.exists():
        raise ConfigError(f"missing evaluation results: {path}")
    data = read_json(path)
    if "results" in data:  # gathered: predictions paths are relative to the gather folder
        results = [dict(r) for r in data["results"]]
        for r in results:
            r["predictions_dir"] = str(folder / r["predictions"]) if r.get("predictions") else None
        return results
    task_predictions = folder / preds.FOLDER / str(data.get("task"))
    return [{**data, "predictions_dir": str(task_predictions) if task_predictions.is_dir() else None}]


def load_results(result_files: list[str | Path]) -> list[dict]:
    """Every result in results.json / gathered.json files (or folders holding them)."""
    return [r for f in result_files for r in read_results(Path(f))]


def named_inputs(read: list[tuple[Path, list[dict]]], key, prefix: str) -> dict[str, Path]:
    """Lineage input names for results files: `<prefix>[<task or condition>]`, numbered if two share a name."""
    named: dict[str, Path] = {}
    for i, (path, rs) in enumerate(read):
        name = f"{prefix}[{'+'.join(sorted({key(r) for r in rs}))}]"
        named[name if name not in named else f"{name}#{i}"] = path
    return named


def link_or_copy(src: str, dst: str) -> str:
    """A hard link where both sides share a file system (a local run), else a copy (pods on a cluster)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _seed_text(seed: Any) -> str:
    return "no seed recorded" if seed is None else f"seed {seed}"


def gather_results(result_files: list[str | Path], out_dir: str | Path) -> dict:
    """One condition's zero-shot results (over its target tasks, or over its seeds' gathered folders) in one folder,
    with their per-example predictions under predictions/<condition>/seed-<seed>/<task>/ (the pipeline's fan-in:
    KFP cannot collect artifacts across two nested loops at once)."""
    provenance = Provenance("gather")
    with phase("load"):
        read = [(Path(f), read_results(Path(f))) for f in result_files]
    results = [r for _, rs in read for r in rs]
    if not results:
        raise ConfigError("no evaluation results to gather")
    conditions = {r["condition"] for r in results}
    if len(conditions) != 1:
        raise ConfigError(f"results of different conditions {sorted(map(str, conditions))} in one gather step")
    condition = results[0]["condition"]
    keys = [(r["task"], r.get("seed")) for r in results]
    repeated = sorted({f"{t} ({_seed_text(s)})" for t, s in keys if keys.count((t, s)) > 1})
    if repeated:
        raise ConfigError(f"two results for target task(s) {', '.join(repeated)} under condition {condition!r}")
    with phase("write"):  # the results and their predictions, copied (or hard-linked)
        gathered = []
        with atomic_dir(out_dir) as tmp:
            for r in sorted(results, key=lambda r: (str(r.get("seed")), r["task"])):
                source = r.pop("predictions_dir")
                relative = None
                if source is not None:
                    relative = Path(preds.FOLDER) / str(condition) / seed_folder(r.get("seed")) / r["task"]
                    shutil.copytree(source, tmp / relative, copy_function=link_or_copy)
                gathered.append({**r, "predictions": None if relative is None else relative.as_posix()})
            data = {"condition": condition, "seeds": sorted({r.get("seed") for r in gathered}, key=str),
                    "results": gathered}
            write_json(tmp / GATHERED_FILE, data)
            provenance.inputs = named_inputs(read, lambda r: r["task"], "results")
            provenance.params = {"condition": condition, "targets": sorted({r["task"] for r in gathered}),
                                 "seeds": data["seeds"]}
            provenance.record(tmp)
    return data


# ---- the grid ----------------------------------------------------------------------------------------------------

def _grid(results: list[dict]) -> tuple[dict, list, list, list]:
    """{target: {condition: {seed: result}}}, targets, conditions, seeds; every hole or duplicate a ConfigError."""
    grid: dict[str, dict[str, dict]] = {}
    for r in results:
        cell = grid.setdefault(r["task"], {}).setdefault(r["condition"], {})
        if r.get("seed") in cell:
            seed = "" if r.get("seed") is None else f" and seed {r['seed']}"
            raise ConfigError(f"two results for target task {r['task']!r} and condition {r['condition']!r}{seed}")
        cell[r.get("seed")] = r
    targets = sorted(grid)
    conditions = ordered_conditions(sorted({c for cells in grid.values() for c in cells}))
    seeds = sorted({s for cells in grid.values() for per_seed in cells.values() for s in per_seed},
                   key=lambda s: (s is None, s if isinstance(s, (int, float)) else 0, str(s)))
    for task in targets:
        missing = [c for c in conditions if c not in grid[task]]
        if missing:
            raise ConfigError(f"target task {task!r} has no results for condition(s) {', '.join(missing)}")
        first = grid[task][conditions[0]][next(iter(grid[task][conditions[0]]))]
        languages = list(first["scores"])
        for c in conditions:
            have = list(grid[task][c])
            if set(have) != set(seeds):
                absent = [_seed_text(s) for s in seeds if s not in have]
                raise ConfigError(f"target task {task!r}, condition {c!r}: no results for {', '.join(absent)} "
                                  f"(the run's seeds: {', '.join(_seed_text(s) for s in seeds)})")
            for s in have:
                if list(grid[task][c][s]["scores"]) != languages:
                    raise ConfigError(f"{task}: condition {c!r} ({_seed_text(s)}) was evaluated on "
                                      f"{list(grid[task][c][s]['scores'])}, others on {languages}")
    return grid, targets, conditions, seeds


def cell_records(result: dict, language: str) -> tuple[Any, dict]:
    """(statistics metric, {example id: record}) of one result's language, read from its per-example predictions and
    checked against the score results.json holds."""
    folder = result.get("predictions_dir")
    where = f"target {result['task']!r}, condition {result['condition']!r}, {_seed_text(result.get('seed'))}"
    if not folder:
        raise DataError(f"{where}: no per-example predictions (predictions/<task>/<language>.jsonl): the report's "
                        "statistics need them; re-run the eval step with this version of xstilts")
    folder = Path(folder)
    path = folder / f"{language}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: missing: {where} has a score for language {language!r} but no predictions for it")
    meta = read_json(folder / "metric.json") if (folder / "metric.json").is_file() else {}
    kind = result.get("kind") or meta.get("kind") or _task_kind(result["task"])
    rows = preds.read_predictions(path, kind, result["metric"])
    metric, records = preds.statistic_records(kind, result["metric"], rows, meta.get("k"))
    expected = result.get("examples", {}).get(language)
    if expected is not None and expected != len(records):
        raise DataError(f"{path}: {len(records)} examples, but results.json counted {expected} for {where}")
    recomputed = _score_of(metric, records)
    score = float(result["scores"][language])
    if not math.isclose(recomputed, score, abs_tol=SCORE_SLACK):
        raise DataError(f"{path}: the per-example records give {recomputed:.6f}, results.json says {score:.6f} "
                        f"({where}): the predictions do not belong to this result")
    return metric, records


def _task_kind(task: str) -> str:
    from xstilts.tasks.registry import get_task

    return get_task(task).kind


def _score_of(metric: Any, records: dict) -> float:
    values = np.asarray(list(records.values()), dtype=np.float64)
    if metric is stats.MEAN:
        return float(values.mean())
    return float(metric.finish(values.sum(axis=0)))


def _statistics(grid: dict, targets: list, conditions: list, seeds: list, n_resamples: int) -> dict:
    runs, metric = {}, {}
    for t in targets:
        for c in conditions:
            for s in seeds:
                result = grid[t][c][s]
                for language in result["scores"]:
                    metric[t], records = cell_records(result, language)
                    runs.setdefault((t, c, language), {})[s] = records
    if BASELINE in conditions:
        return stats.grid_statistics(runs, metric, n_resamples=n_resamples)
    # No baseline: intervals, no tests.
    out: dict = {"method": {"test": None, "correction": None, "confidence": stats.CONFIDENCE,
                            "n_resamples": n_resamples, "note": f"no {BASELINE!r} condition: nothing to test against",
                            "citations": {"t": stats.CITATIONS["t"]}},
                 "cells": {}, "task_average": {}, "xtreme_average": {}}
    for t in targets:
        languages = list(grid[t][conditions[0]][seeds[0]]["scores"])
        for c in conditions:
            for lang in languages:
                out["cells"].setdefault(t, {}).setdefault(c, {})[lang] = stats.seed_summary(
                    runs[(t, c, lang)], metric[t], n_resamples=n_resamples, where=(t, c, lang))
            out["task_average"].setdefault(t, {})[c] = stats.summary_average(
                {lang: runs[(t, c, lang)] for lang in languages}, metric[t], n_resamples=n_resamples, where=(t, c))
    for c in conditions:
        side = {(t, lang): runs[(t, c, lang)] for t in targets for lang in grid[t][conditions[0]][seeds[0]]["scores"]}
        out["xtreme_average"][c] = stats.summary_average(side, metric, stats.xtreme_weights(side),
                                                         n_resamples=n_resamples, where=("XTREME", c))
    return out


def _best(targets: list, conditions: list, task_average: dict, statistics: dict) -> dict:
    """Per target: the top condition by mean, declared best only when its gain over `none` is significant."""
    others = [c for c in conditions if c != BASELINE]
    best = {}
    for t in targets:
        if not others:
            continue
        top = max(others, key=lambda c: task_average[t][c])
        entry = statistics["task_average"][t][top]
        gain = task_average[t][top] - task_average[t][BASELINE] if BASELINE in conditions else None
        significant = bool(entry.get("significant", False)) and gain is not None and gain > 0
        best[t] = {"condition": top if significant else None, "candidate": top, "score": task_average[t][top],
                   "gain": gain, "p_adjusted": entry.get("p_adjusted"), "significant": significant}
    return best


SUMMARY_INPUTS = "summary-inputs.json"  # beside a summary.json: the fingerprint of the results it summarizes


def results_fingerprint(result_files: list[str | Path]) -> list[str]:
    """Each result file's or folder's content hash (names and bytes of every file), in order."""
    return [dir_fingerprint(f) if Path(f).is_dir() else fingerprint(Path(f).read_bytes().hex())
            for f in result_files]


def summary_for(result_files: list[str | Path], folder: str | Path | None) -> dict | None:
    """The summary.json that `folder` (the promotion gate's decision) holds for exactly these results, if any: the
    report takes it instead of running the same bootstrap again."""
    if folder is None or not (Path(folder) / SUMMARY_INPUTS).is_file() or not (Path(folder) / "summary.json").is_file():
        return None
    try:
        recorded = read_json(Path(folder) / SUMMARY_INPUTS)
        summary = read_json(Path(folder) / "summary.json")
    except (OSError, ValueError):
        return None
    if recorded != results_fingerprint(result_files) or summary.get("format") != FORMAT:
        return None
    return summary


def write_summary(result_files: list[str | Path], out_path: str | Path, n_resamples: int = stats.N_RESAMPLES) -> dict:
    """summarize(load_results(result_files)) into out_path (JSON); returns its targets and conditions. The promotion
    gate calls it through the step cache: its bootstrap is seconds, and the gate runs in every run."""
    summary = summarize(load_results(result_files), n_resamples)
    write_json(out_path, summary)
    return {"targets": summary["targets"], "conditions": summary["conditions"]}


def summarize(results: list[dict], n_resamples: int = stats.N_RESAMPLES) -> dict:
    """The target × condition × seed grid of zero-shot results: per-language scores (mean over seeds), task averages,
    the XTREME average, deltas vs `none`, statistics from the per-example predictions (intervals, paired tests,
    Holm-adjusted) and the best intermediate per target where its gain is significant (what summary.json holds)."""
    grid, targets, conditions, seeds = _grid(results)

    def mean_scores(t, c):
        languages = list(grid[t][c][seeds[0]]["scores"])
        return {lang: float(np.mean([grid[t][c][s]["scores"][lang] for s in seeds])) for lang in languages}

    scores = {t: {c: mean_scores(t, c) for c in conditions} for t in targets}
    first = {t: grid[t][conditions[0]][seeds[0]] for t in targets}
    metric = {t: first[t]["metric"] for t in targets}
    task_average = {t: {c: float(np.mean(list(scores[t][c].values()))) for c in conditions} for t in targets}
    overall = {c: xtreme_average({t: scores[t][c] for t in targets}) for c in conditions}
    statistics = _statistics(grid, targets, conditions, seeds, n_resamples)
    summary = {"format": FORMAT, "targets": targets, "conditions": conditions, "seeds": seeds, "metric": metric,
               "scores": scores, "task_average": task_average, "xtreme_average": overall,
               "per_seed": {t: {c: {str(s): grid[t][c][s]["scores"] for s in seeds} for c in conditions}
                            for t in targets},
               "providers": sorted({str(r.get("provider")) for r in results}),
               "details": {t: {c: grid[t][c][seeds[0]].get("details", {}) for c in conditions} for t in targets}}
    others = [c for c in conditions if c != BASELINE]
    if BASELINE in conditions:
        summary["delta_vs_none"] = {t: {c: {lang: scores[t][c][lang] - scores[t][BASELINE][lang] for lang in scores[t][c]}
                                        | {"average": task_average[t][c] - task_average[t][BASELINE]} for c in others}
                                    for t in targets}
        summary["xtreme_delta_vs_none"] = {c: overall[c] - overall[BASELINE] for c in others}
    summary["best_intermediate"] = _best(targets, conditions, task_average, statistics)
    summary["statistics"] = statistics
    summary["predictions"] = f"{preds.FOLDER}/<condition>/{seed_folder('<seed>')}/<task>/<language>.jsonl"
    return summary


def check_summary(data: Any, where: str) -> dict:
    """A summary.json of this format, or a DataError saying what it is instead."""
    if not isinstance(data, dict) or "targets" not in data or "scores" not in data:
        raise DataError(f"{where}: not an xstilts summary.json (no targets/scores)")
    if data.get("format") != FORMAT or "statistics" not in data:
        raise DataError(f"{where}: an older summary format ({data.get('format', 1)}; this xstilts reads format "
                        f"{FORMAT}, with per-example predictions and statistics): re-run the report step")
    return data
