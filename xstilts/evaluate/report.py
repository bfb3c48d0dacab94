"""Steps 7 and 9: gather each condition's zero-shot results (`gather_condition`), then every (condition, target
task) result into one report (`build_report`): a task × condition table of XTREME-style scores (each task's mean
over languages) with deltas vs the `none` baseline and the XTREME average (mean over tasks), the best intermediate
task per target, a heatmap per target task (language × condition) and one for the grid, Markdown, self-contained
HTML, and summary.json:

  {"targets": [...], "conditions": [...], "metric": {task: metric},
   "scores": {target_task: {condition: {language: score}}}, "task_average": {target_task: {condition: avg}},
   "xtreme_average": {condition: avg}, "delta_vs_none": {target_task: {condition: {language|average: Δ}}},
   "xtreme_delta_vs_none": {condition: Δ}, "best_intermediate": {target_task: {"condition", "gain"}}, ...}
"""

from __future__ import annotations

from pathlib import Path
import numpy as np
from xstilts.errors import ConfigError
from xstilts.io import atomic_copy, atomic_dir, atomic_write_text, read_json, write_json
from xstilts.provenance import Provenance
from xstilts.kinds.metrics import xtreme_average
from xstilts.io import esc, html_image, html_page, html_table, markdown_html, markdown_table


BASELINE = "none"
CONDITION_FILE = "condition.json"  # one condition's results for every target (the gather step's output)
XTREME = "XTREME average"


def _ordered_conditions(conditions: list[str]) -> list[str]:
    return ([BASELINE] if BASELINE in conditions else []) + sorted(c for c in conditions if c != BASELINE)


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def heatmap(path: Path, languages: list[str], conditions: list[str], scores: dict, metric: str, task: str,
            row_label: str = "language") -> None:
    """Scores ×100 (rows × condition) and, when a baseline exists, deltas vs the baseline side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = 100 * np.array([[scores[c][lang] for c in conditions] for lang in languages])
    panels = [("score", grid, "viridis", None)]
    others = [c for c in conditions if c != BASELINE]
    if BASELINE in conditions and others:
        base = grid[:, conditions.index(BASELINE)][:, None]
        delta = grid[:, [conditions.index(c) for c in others]] - base
        lim = max(float(np.abs(delta).max()), 1e-6)
        panels.append(("Δ vs none", delta, "RdBu", (-lim, lim)))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 + 1.3 * len(conditions) * len(panels), 1.4 + 0.45 * len(languages)),
                             squeeze=False)
    for ax, (title, values, cmap, limits) in zip(axes[0], panels):
        cols = conditions if title == "score" else others
        im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=limits[0] if limits else None, vmax=limits[1] if limits else None)
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
        ax.set_yticks(range(len(languages)), languages)
        ax.set_ylabel(row_label, fontsize=9)
        ax.set_title(f"{task} {metric}: {title}", fontsize=10)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                # White text on the dark ends of each colour map, black elsewhere.
                dark = abs(values[i, j]) > 0.5 * limits[1] if limits else values[i, j] < values.min() + 0.6 * np.ptp(values)
                ax.text(j, i, f"{values[i, j]:+.1f}" if limits else f"{values[i, j]:.1f}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _read_results(path: Path) -> list[dict]:
    """A results.json, a condition.json (several results), or a directory holding one of them."""
    if path.is_dir():
        path = path / CONDITION_FILE if (path / CONDITION_FILE).exists() else path / "results.json"
    if not path.exists():
        raise ConfigError(f"missing evaluation results: {path}")
    data = read_json(path)
    return data["results"] if "results" in data else [data]


def load_results(result_files: list[str | Path]) -> list[dict]:
    """Every result in results.json / condition.json files (or folders holding them)."""
    return [r for f in result_files for r in _read_results(Path(f))]


def _named_inputs(read: list[tuple[Path, list[dict]]], key, prefix: str) -> dict[str, Path]:
    """Lineage input names for results files: `<prefix>[<task or condition>]`, numbered if two share a name."""
    named: dict[str, Path] = {}
    for i, (path, rs) in enumerate(read):
        name = f"{prefix}[{'+'.join(sorted({key(r) for r in rs}))}]"
        named[name if name not in named else f"{name}#{i}"] = path
    return named


def gather_condition(result_files: list[str | Path], out_dir: str | Path) -> dict:
    """One condition's zero-shot results over all its target tasks, in one folder (the pipeline's per-condition
    fan-in; KFP cannot collect artifacts across two nested loops at once)."""
    provenance = Provenance("gather")
    read = [(Path(f), _read_results(Path(f))) for f in result_files]
    results = [r for _, rs in read for r in rs]
    if not results:
        raise ConfigError("no evaluation results to gather")
    conditions = {r["condition"] for r in results}
    if len(conditions) != 1:
        raise ConfigError(f"results of different conditions {sorted(map(str, conditions))} in one gather step")
    tasks = [r["task"] for r in results]
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise ConfigError(f"two results for target task(s) {', '.join(repeated)} under condition {results[0]['condition']!r}")
    data = {"condition": results[0]["condition"], "results": sorted(results, key=lambda r: r["task"])}
    provenance.inputs = _named_inputs(read, lambda r: r["task"], "results")
    provenance.params = {"condition": data["condition"], "targets": [r["task"] for r in data["results"]]}
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / CONDITION_FILE, data)
        provenance.record(tmp)
    return data


def summarize(results: list[dict]) -> dict:
    """The target × condition grid of zero-shot results: per-language scores, task averages, the XTREME average,
    deltas vs `none` and the best intermediate per target (what summary.json holds)."""
    grid: dict[str, dict[str, dict]] = {}
    for r in results:
        cell = grid.setdefault(r["task"], {})
        if r["condition"] in cell:
            raise ConfigError(f"two results for target task {r['task']!r} and condition {r['condition']!r}")
        cell[r["condition"]] = r
    targets = sorted(grid)
    conditions = _ordered_conditions(sorted({c for cells in grid.values() for c in cells}))
    for task in targets:
        missing = [c for c in conditions if c not in grid[task]]
        if missing:
            raise ConfigError(f"target task {task!r} has no results for condition(s) {', '.join(missing)}")
        languages = list(grid[task][conditions[0]]["scores"])
        for c in conditions:
            if list(grid[task][c]["scores"]) != languages:
                raise ConfigError(f"{task}: condition {c!r} was evaluated on {list(grid[task][c]['scores'])}, "
                                  f"others on {languages}")
    scores = {t: {c: grid[t][c]["scores"] for c in conditions} for t in targets}
    metric = {t: grid[t][conditions[0]]["metric"] for t in targets}
    task_average = {t: {c: float(np.mean(list(scores[t][c].values()))) for c in conditions} for t in targets}
    overall = {c: xtreme_average({t: scores[t][c] for t in targets}) for c in conditions}
    summary = {"targets": targets, "conditions": conditions, "metric": metric, "scores": scores,
               "task_average": task_average, "xtreme_average": overall,
               "providers": sorted({str(r.get("provider")) for r in results}),
               "details": {t: {c: grid[t][c].get("details", {}) for c in conditions} for t in targets}}
    others = [c for c in conditions if c != BASELINE]
    has_baseline = BASELINE in conditions
    if has_baseline:
        summary["delta_vs_none"] = {t: {c: {lang: scores[t][c][lang] - scores[t][BASELINE][lang] for lang in scores[t][c]}
                                        | {"average": task_average[t][c] - task_average[t][BASELINE]} for c in others}
                                    for t in targets}
        summary["xtreme_delta_vs_none"] = {c: overall[c] - overall[BASELINE] for c in others}
    best = {}
    for t in targets:
        if others:
            c = max(others, key=lambda c: task_average[t][c])
            best[t] = {"condition": c, "score": task_average[t][c],
                       "gain": task_average[t][c] - task_average[t][BASELINE] if has_baseline else None}
    summary["best_intermediate"] = best
    return summary


def build_report(result_files: list[str | Path], out_dir: str | Path, html_path: str | Path | None = None,
                 md_path: str | Path | None = None, decision: str | Path | None = None) -> dict:
    """Read zero-shot results (results.json / condition.json files or folders holding them) and write
    out_dir/{summary.json, report.md, report.html, grid.png, heatmap-<task>.png}. Returns the summary."""
    provenance = Provenance("report")
    read = [(Path(f), _read_results(Path(f))) for f in result_files]
    results = [r for _, rs in read for r in rs]
    provenance.inputs = _named_inputs(read, lambda r: str(r["condition"]), "condition")
    if not results:
        raise ConfigError("no evaluation results to report")
    summary = summarize(results)
    targets, conditions, metric = summary["targets"], summary["conditions"], summary["metric"]
    scores, task_average, overall = summary["scores"], summary["task_average"], summary["xtreme_average"]
    best = summary["best_intermediate"]
    others = [c for c in conditions if c != BASELINE]
    has_baseline = BASELINE in conditions

    # Task × condition table: XTREME-style scores (×100), Δ vs none, the XTREME average last.
    headers = ["target task", "metric"] + conditions + [f"Δ {c}" for c in others if has_baseline] + ["best intermediate"]
    rows, classes = [], []
    for t in targets + [XTREME]:
        values = [overall[c] if t == XTREME else task_average[t][c] for c in conditions]
        deltas = ([summary["xtreme_delta_vs_none"][c] if t == XTREME else summary["delta_vs_none"][t][c]["average"]
                   for c in others] if has_baseline else [])
        if t == XTREME:
            top = max(others, key=lambda c: overall[c]) if others else ""
        else:
            top = best[t]["condition"] if t in best else ""
        rows.append([t, "" if t == XTREME else metric[t]] + [pct(v) for v in values]
                    + [f"{100 * d:+.1f}" for d in deltas] + [top])
        classes.append([""] * (2 + len(values)) + ["pos" if d > 0 else "neg" if d < 0 else "" for d in deltas] + [""])
    verdicts = []
    for t in targets:
        if t in best and has_baseline:
            b = best[t]
            verdicts.append(f"- **{t}**: best intermediate **{b['condition']}** ({pct(b['score'])}, "
                            f"{100 * b['gain']:+.1f} vs `none`)" if b["gain"] > 0 else
                            f"- **{t}**: no intermediate task beats `none` ({pct(task_average[t][BASELINE])}); "
                            f"closest **{b['condition']}** ({100 * b['gain']:+.1f})")
    if has_baseline and others:
        top = max(others, key=lambda c: overall[c])
        gain = summary["xtreme_delta_vs_none"][top]
        verdicts.append(f"- **XTREME average**: best **{top}** ({pct(overall[top])}, {100 * gain:+.1f} vs `none` "
                        f"{pct(overall[BASELINE])})" if gain > 0 else
                        f"- **XTREME average**: no condition beats `none` ({pct(overall[BASELINE])}); closest "
                        f"**{top}** ({100 * gain:+.1f})")
    per_task_md, per_task_html = [], []
    with atomic_dir(out_dir) as tmp:
        heatmap(tmp / "grid.png", targets + [XTREME], conditions,
                {c: {t: task_average[t][c] for t in targets} | {XTREME: overall[c]} for c in conditions},
                "score, mean over languages", "all targets —", row_label="target task")
        for t in targets:
            languages = list(scores[t][conditions[0]])
            heatmap(tmp / f"heatmap-{t}.png", languages, conditions, {c: scores[t][c] for c in conditions}, metric[t], t)
            lang_headers = ["language"] + conditions + ([f"Δ {c}" for c in others] if has_baseline else [])
            lang_rows = [[lang] + [pct(scores[t][c][lang]) for c in conditions]
                         + ([f"{100 * summary['delta_vs_none'][t][c][lang]:+.1f}" for c in others] if has_baseline else [])
                         for lang in languages]
            per_task_md.append(f"### {t} ({metric[t]})\n\n" + markdown_table(lang_headers, lang_rows)
                               + f"\n![{t} heatmap](heatmap-{t}.png)\n")
            per_task_html.append(f"<h3>{esc(t)} ({esc(metric[t])})</h3>" + html_table(lang_headers, lang_rows)
                                 + html_image(tmp / f"heatmap-{t}.png", f"{t} heatmap"))
        gate_md = ""
        if decision is not None:  # the promotion step's folder: decisions.json + decision.md
            decision = Path(decision)
            decision = decision if decision.is_dir() else decision.parent
            summary["promotion"] = read_json(decision / "decisions.json")
            gate_md = (decision / "decision.md").read_text(encoding="utf-8")
            provenance.inputs["promotion"] = decision
        write_json(tmp / "summary.json", summary)
        intro = ("Each condition is an English intermediate task (or a `+`-joined multi-task set) trained before the "
                 "English target task; `none` is the baseline. Scores are zero-shot, ×100: each target task's mean "
                 "over its languages, and the XTREME average over tasks.")
        atomic_write_text(tmp / "report.md", "# Zero-shot cross-lingual transfer: intermediate tasks × target tasks\n\n"
                          f"{intro}\n\n" + "\n".join(verdicts) + "\n\n" + markdown_table(headers, rows)
                          + "\n![grid](grid.png)\n\n" + (f"## Promotion gate\n\n{gate_md}\n" if gate_md else "")
                          + "## Per target task\n\n" + "\n".join(per_task_md))
        body = (f"<p>{esc(intro.replace('`', ''))}</p><ul>"
                + "".join(f"<li>{esc(v[2:].replace('**', '').replace('`', ''))}</li>" for v in verdicts) + "</ul>"
                + html_table(headers, rows, classes) + html_image(tmp / "grid.png", "task × condition heatmap")
                + (f"<h2>Promotion gate</h2>{markdown_html(gate_md)}" if gate_md else "")
                + "<h2>Per target task</h2>" + "".join(per_task_html))
        atomic_write_text(tmp / "report.html", html_page("xstilts report — intermediate × target tasks", body))
        provenance.params = {"targets": targets, "conditions": conditions}
        provenance.record(tmp)
    for src, dest in (("report.html", html_path), ("report.md", md_path)):
        if dest:  # KFP's HTML/Markdown artifacts are single files beside the report directory
            atomic_copy(Path(out_dir) / src, dest)
    return summary
