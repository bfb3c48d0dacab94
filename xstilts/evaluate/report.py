"""Step 9: every (condition, seed, target task) result in one report (`build_report`): a task × condition table of
XTREME-style scores (each task's mean over languages; mean ± std over seeds) with deltas vs the `none` baseline
marked where a paired test finds them significant, the XTREME average (mean over tasks), the best intermediate task
per target (only where its gain is significant), a significance table (Δ, 95 % CI, p, adjusted p), a forest plot of
Δ vs `none` with intervals, a heatmap per target task (language × condition) and one for the grid, Markdown,
self-contained HTML, summary.json (evaluate/summary.py says what it holds) and the per-example predictions of every
cell under predictions/<condition>/seed-<seed>/<task>/.
"""

from __future__ import annotations

from pathlib import Path
import numpy as np
import shutil

from xstilts.errors import ConfigError
from xstilts.evaluate.summary import (BASELINE, load_results, named_inputs, read_results, seed_folder,  # noqa: F401
                                      summarize, summary_for)
from xstilts.io import atomic_copy, atomic_dir, atomic_write_text, read_json, write_json
from xstilts.progress import phase
from xstilts.provenance import Provenance
from xstilts.io import esc, html_image, html_page, html_table, markdown_html, markdown_table


XTREME = "XTREME average"
SIGNIFICANT = "*"  # marks a Δ whose adjusted p-value is below α


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def heatmap(path: Path, languages: list[str], conditions: list[str], scores: dict, metric: str, task: str,
            row_label: str = "language", significant: dict | None = None) -> None:
    """Scores ×100 (rows × condition) and, when a baseline exists, deltas vs the baseline side by side; a delta
    whose `significant[condition][row]` is true carries a `*`."""
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
                mark = SIGNIFICANT if limits and significant and significant[cols[j]][languages[i]] else ""
                ax.text(j, i, f"{values[i, j]:+.1f}{mark}" if limits else f"{values[i, j]:.1f}", ha="center",
                        va="center", fontsize=8, color="white" if dark else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def forest_plot(path: Path, rows: list[str], others: list[str], statistics: dict, row_label: str = "target") -> None:
    """Δ vs `none` (×100) with its 95 % interval per condition, one panel per row (target tasks, then the XTREME
    average); filled markers where the adjusted p-value is below α."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(6.4, 0.9 + (0.32 * len(others) + 0.5) * len(rows)), squeeze=False,
                             sharex=True)
    for ax, row in zip(axes[:, 0], rows):
        entries = [statistics[row][c] for c in others]
        deltas = [100 * e["delta"] for e in entries]
        lows = [100 * (e["delta"] - e["delta_ci95"][0]) for e in entries]
        highs = [100 * (e["delta_ci95"][1] - e["delta"]) for e in entries]
        y = list(range(len(others)))[::-1]
        for yi, d, lo, hi, e in zip(y, deltas, lows, highs, entries):
            colour = "tab:blue" if d >= 0 else "tab:red"
            ax.errorbar([d], [yi], xerr=[[lo], [hi]], fmt="o", color=colour, capsize=3,
                        markerfacecolor=colour if e["significant"] else "white")
        ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, others, fontsize=8)
        ax.set_ylim(-0.7, len(others) - 0.3)
        ax.set_title(row, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("Δ vs none (points ×100), 95 % CI; filled: significant after correction", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def mean_std(entry: dict) -> str:
    """`61.2 ± 1.3` over seeds; one seed has no std and shows the mean alone (never ± 0.0)."""
    if entry.get("std") is None:
        return pct(entry["mean"])
    return f"{pct(entry['mean'])} ± {100 * entry['std']:.1f}"


def delta_text(entry: dict) -> str:
    return f"{100 * entry['delta']:+.1f}" + (SIGNIFICANT if entry.get("significant") else "")


def _method_text(summary: dict) -> str:
    method = summary["statistics"]["method"]
    n = len(summary["seeds"])
    seeds = (f"{n} seeds ({', '.join(map(str, summary['seeds']))}): cells show mean ± std over seeds" if n > 1 else
             f"1 seed ({summary['seeds'][0]}): no std, and intervals cover test-set sampling only, not restarts")
    if not method.get("test"):
        return f"{seeds}. {method.get('note', '')}"
    correction = {"holm": "Holm", "bh": "Benjamini–Hochberg"}[method["correction"]]
    test = ("paired bootstrap" if method["test"] == "bootstrap" else "paired permutation test")
    over = "test examples and seeds" if method.get("resample_seeds") and n > 1 else "test examples"
    return (f"{seeds}. Δ vs `none`: {test} over {over} ({method['n_resamples']} resamples), two-sided, "
            f"{correction}-adjusted across {method['family']}; {SIGNIFICANT} marks adjusted p < {method['alpha']}. "
            f"95 % intervals: Student's t over seeds (≥ 2 seeds) or a percentile bootstrap over examples.")


def headline(summary: dict) -> list[str]:
    """A few plain lines for the end of a run: the seeds and, per condition, its XTREME average (mean ± std) and its
    Δ vs `none` with the 95 % interval and adjusted p (`*` significant)."""
    seeds = summary["seeds"]
    lines = [f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))}); XTREME average ×100"
             + (", Δ vs none with 95 % CI and Holm-adjusted p:" if BASELINE in summary["conditions"] else ":")]
    width = max(len(c) for c in summary["conditions"])
    for c in summary["conditions"]:
        e = summary["statistics"]["xtreme_average"][c]
        line = f"  {c:<{width}}  {mean_std(e):>11}"
        if "delta" in e:
            line += (f"  Δ {delta_text(e):<7} [{100 * e['delta_ci95'][0]:+.1f}, {100 * e['delta_ci95'][1]:+.1f}]"
                     f"  p_adj {e['p_adjusted']:.3g}")
        lines.append(line)
    return lines


def _verdicts(summary: dict) -> list[str]:
    """One line per target and for the XTREME average: the best intermediate where its gain is significant,
    otherwise that no condition differs from `none`."""
    statistics, conditions = summary["statistics"], summary["conditions"]
    others = [c for c in conditions if c != BASELINE]
    if BASELINE not in conditions or not others:
        return []
    lines = []
    rows = [(t, statistics["task_average"][t]) for t in summary["targets"]] + [("XTREME average",
                                                                               statistics["xtreme_average"])]
    for name, per_condition in rows:
        top = max(others, key=lambda c: per_condition[c]["mean"])
        entry = per_condition[top]
        interval = f"95 % CI [{100 * entry['delta_ci95'][0]:+.1f}, {100 * entry['delta_ci95'][1]:+.1f}]"
        p = f"p_adj = {entry['p_adjusted']:.3g}"
        if entry["significant"] and entry["delta"] > 0:
            lines.append(f"- **{name}**: best intermediate **{top}** ({mean_std(entry)}, {100 * entry['delta']:+.1f} "
                         f"vs `none`, {interval}, {p})")
        else:
            winners = [c for c in others if per_condition[c]["significant"] and per_condition[c]["delta"] > 0]
            losers = [c for c in others if per_condition[c]["significant"] and per_condition[c]["delta"] < 0]
            worse = f"; significantly worse: {', '.join(losers)}" if losers else ""
            if not winners:
                lines.append(f"- **{name}**: no condition differs significantly from `none` "
                             f"({mean_std(per_condition[BASELINE])}); highest **{top}** ({100 * entry['delta']:+.1f}, "
                             f"{interval}, {p}){worse}")
    return lines


def _significance_rows(summary: dict) -> list[list[str]]:
    statistics = summary["statistics"]
    others = [c for c in summary["conditions"] if c != BASELINE]
    rows = []
    for name, per_condition in ([(t, statistics["task_average"][t]) for t in summary["targets"]]
                                + [(XTREME, statistics["xtreme_average"])]):
        for c in others:
            e = per_condition[c]
            rows.append([name, c, delta_text(e), f"[{100 * e['delta_ci95'][0]:+.1f}, {100 * e['delta_ci95'][1]:+.1f}]",
                         f"{e['p_value']:.3g}", f"{e['p_adjusted']:.3g}", "yes" if e["significant"] else "no"])
    return rows


def copy_predictions(read: list[tuple[Path, list[dict]]], root: Path) -> None:
    """Every cell's per-example predictions into root/predictions/<condition>/seed-<seed>/<task>/."""
    from xstilts.evaluate.predictions import FOLDER
    from xstilts.evaluate.summary import link_or_copy

    for _, results in read:
        for r in results:
            if r.get("predictions_dir"):
                dest = root / FOLDER / str(r["condition"]) / seed_folder(r.get("seed")) / r["task"]
                shutil.copytree(r["predictions_dir"], dest, copy_function=link_or_copy)


def build_report(result_files: list[str | Path], out_dir: str | Path, html_path: str | Path | None = None,
                 md_path: str | Path | None = None, decision: str | Path | None = None) -> dict:
    """Read zero-shot results (results.json / gathered.json files or folders holding them) and their per-example
    predictions, and write out_dir/{summary.json, report.md, report.html, grid.png, forest.png, heatmap-<task>.png,
    predictions/}. Returns the summary."""
    provenance = Provenance("report")
    with phase("load"):
        read = [(Path(f), read_results(Path(f))) for f in result_files]
    results = [r for _, rs in read for r in rs]
    provenance.inputs = named_inputs(read, lambda r: str(r["condition"]), "condition")
    if not results:
        raise ConfigError("no evaluation results to report")
    with phase("compute"):  # the statistics over seeds and examples (the promotion gate's, where it has them)
        summary = summary_for(result_files, decision) or summarize(results)
    targets, conditions, metric = summary["targets"], summary["conditions"], summary["metric"]
    statistics = summary["statistics"]
    scores, task_average, overall = summary["scores"], summary["task_average"], summary["xtreme_average"]
    best = summary["best_intermediate"]
    others = [c for c in conditions if c != BASELINE]
    tested = BASELINE in conditions and bool(others)

    # Task × condition table: mean ± std over seeds (×100), Δ vs none (* significant), the XTREME average last.
    headers = ["target task", "metric"] + conditions + [f"Δ {c}" for c in others if tested] + ["best intermediate"]
    rows, classes = [], []
    for t in targets + [XTREME]:
        per_condition = statistics["xtreme_average"] if t == XTREME else statistics["task_average"][t]
        deltas = [per_condition[c] for c in others] if tested else []
        if t == XTREME:
            winners = [c for c in others if tested and per_condition[c]["significant"] and per_condition[c]["delta"] > 0]
            top = max(winners, key=lambda c: per_condition[c]["mean"]) if winners else ("—" if tested else "")
        else:
            top = (best[t]["condition"] or "—") if t in best and tested else ""
        rows.append([t, "" if t == XTREME else metric[t]] + [mean_std(per_condition[c]) for c in conditions]
                    + [delta_text(e) for e in deltas] + [top])
        classes.append([""] * (2 + len(conditions)) + ["pos" if e["delta"] > 0 else "neg" if e["delta"] < 0 else ""
                                                       for e in deltas] + [""])
    verdicts = _verdicts(summary) if tested else []
    method = _method_text(summary)
    sig_headers = ["target", "condition", "Δ vs none", "95 % CI of Δ", "p", "p adjusted", "significant"]
    sig_rows = _significance_rows(summary) if tested else []
    per_task_md, per_task_html = [], []
    with phase("write"):  # the figures, pages and predictions
        with atomic_dir(out_dir) as tmp:
            grid_marks = ({c: {t: statistics["task_average"][t][c]["significant"] for t in targets}
                           | {XTREME: statistics["xtreme_average"][c]["significant"]} for c in others} if tested else None)
            heatmap(tmp / "grid.png", targets + [XTREME], conditions,
                    {c: {t: task_average[t][c] for t in targets} | {XTREME: overall[c]} for c in conditions},
                    "score, mean over languages", "all targets —", row_label="target task", significant=grid_marks)
            if tested:
                forest_plot(tmp / "forest.png", targets + [XTREME], others,
                            {**{t: statistics["task_average"][t] for t in targets}, XTREME: statistics["xtreme_average"]})
            for t in targets:
                languages = list(scores[t][conditions[0]])
                cells = statistics["cells"][t]
                marks = {c: {lang: cells[c][lang]["significant"] for lang in languages} for c in others} if tested else None
                heatmap(tmp / f"heatmap-{t}.png", languages, conditions, {c: scores[t][c] for c in conditions}, metric[t], t,
                        significant=marks)
                lang_headers = ["language"] + conditions + ([f"Δ {c}" for c in others] if tested else [])
                lang_rows = [[lang] + [mean_std(cells[c][lang]) for c in conditions]
                             + ([delta_text(cells[c][lang]) for c in others] if tested else [])
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
            copy_predictions(read, tmp)
            write_json(tmp / "summary.json", summary)
            intro = ("Each condition is an English intermediate task (or a `+`-joined multi-task set) trained before the "
                     "English target task; `none` is the baseline. Scores are zero-shot, ×100: each target task's mean "
                     "over its languages, and the XTREME average over tasks.")
            significance_md = ("## Significance\n\n" + markdown_table(sig_headers, sig_rows)
                               + "\n![forest plot](forest.png)\n\n" if tested else "")
            atomic_write_text(tmp / "report.md", "# Zero-shot cross-lingual transfer: intermediate tasks × target tasks\n\n"
                              f"{intro}\n\n{method}\n\n" + "\n".join(verdicts) + "\n\n" + markdown_table(headers, rows)
                              + "\n![grid](grid.png)\n\n" + significance_md
                              + (f"## Promotion gate\n\n{gate_md}\n" if gate_md else "")
                              + "## Per target task\n\n" + "\n".join(per_task_md))
            significance_html = ("<h2>Significance</h2>" + html_table(sig_headers, sig_rows)
                                 + html_image(tmp / "forest.png", "forest plot: Δ vs none with 95 % intervals")
                                 if tested else "")
            body = (f"<p>{esc(intro.replace('`', ''))}</p><p>{esc(method.replace('`', ''))}</p><ul>"
                    + "".join(f"<li>{esc(v[2:].replace('**', '').replace('`', ''))}</li>" for v in verdicts) + "</ul>"
                    + html_table(headers, rows, classes) + html_image(tmp / "grid.png", "task × condition heatmap")
                    + significance_html
                    + (f"<h2>Promotion gate</h2>{markdown_html(gate_md)}" if gate_md else "")
                    + "<h2>Per target task</h2>" + "".join(per_task_html))
            atomic_write_text(tmp / "report.html", html_page("xstilts report — intermediate × target tasks", body))
            provenance.params = {"targets": targets, "conditions": conditions, "seeds": summary["seeds"]}
            provenance.record(tmp)
        for src, dest in (("report.html", html_path), ("report.md", md_path)):
            if dest:  # KFP's HTML/Markdown artifacts are single files beside the report directory
                atomic_copy(Path(out_dir) / src, dest)
    return summary
