"""Step 6: gather every condition's zero-shot results into one report: per-language scores, deltas vs the `none`
baseline, a PNG heatmap, Markdown, self-contained HTML, and summary.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError
from .fsutil import atomic_copy, atomic_dir, atomic_write_text, read_json, write_json
from .render import esc, html_image, html_page, html_table, markdown_table

BASELINE = "none"


def _ordered_conditions(conditions: list[str]) -> list[str]:
    return ([BASELINE] if BASELINE in conditions else []) + sorted(c for c in conditions if c != BASELINE)


def heatmap(path: Path, languages: list[str], conditions: list[str], scores: dict, metric: str, task: str) -> None:
    """Scores (language × condition) and, when a baseline exists, deltas vs the baseline side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.array([[scores[c][lang] for c in conditions] for lang in languages])
    panels = [("score", grid, "viridis", None)]
    others = [c for c in conditions if c != BASELINE]
    if BASELINE in conditions and others:
        base = grid[:, conditions.index(BASELINE)][:, None]
        delta = grid[:, [conditions.index(c) for c in others]] - base
        lim = max(float(np.abs(delta).max()), 1e-6)
        panels.append(("Δ vs none", delta, "RdBu", (-lim, lim)))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 + 1.3 * len(conditions) * len(panels), 1.2 + 0.45 * len(languages)),
                             squeeze=False)
    for ax, (title, values, cmap, limits) in zip(axes[0], panels):
        cols = conditions if title == "score" else others
        im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=limits[0] if limits else None, vmax=limits[1] if limits else None)
        ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
        ax.set_yticks(range(len(languages)), languages)
        ax.set_title(f"{task} {metric}: {title}", fontsize=10)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                # White text on the dark ends of each colour map, black elsewhere.
                dark = abs(values[i, j]) > 0.5 * limits[1] if limits else values[i, j] < values.min() + 0.6 * np.ptp(values)
                ax.text(j, i, f"{values[i, j]:+.3f}" if limits else f"{values[i, j]:.3f}", ha="center", va="center",
                        fontsize=8, color="white" if dark else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(result_files: list[str | Path], out_dir: str | Path, html_path: str | Path | None = None,
                 md_path: str | Path | None = None) -> dict:
    """Read zero-shot results (one results.json, or a directory holding one, per condition) and write
    out_dir/{summary.json, report.md, report.html, heatmap.png}. Returns the summary."""
    results = []
    for f in result_files:
        path = Path(f) / "results.json" if Path(f).is_dir() else Path(f)
        if not path.exists():
            raise ConfigError(f"missing evaluation results: {path}")
        results.append(read_json(path))
    if not results:
        raise ConfigError("no evaluation results to report")
    tasks = {r["task"] for r in results}
    if len(tasks) != 1:
        raise ConfigError(f"results mix target tasks {sorted(tasks)}; one report covers one target task")
    by_condition = {}
    for r in results:
        if r["condition"] in by_condition:
            raise ConfigError(f"two results for condition {r['condition']!r}")
        by_condition[r["condition"]] = r
    task, metric = results[0]["task"], results[0]["metric"]
    conditions = _ordered_conditions(list(by_condition))
    languages = list(by_condition[conditions[0]]["scores"])
    for c in conditions:
        if list(by_condition[c]["scores"]) != languages:
            raise ConfigError(f"condition {c!r} was evaluated on {list(by_condition[c]['scores'])}, others on {languages}")
    scores = {c: by_condition[c]["scores"] for c in conditions}
    averages = {c: float(np.mean(list(scores[c].values()))) for c in conditions}
    summary = {"target_task": task, "metric": metric, "conditions": scores, "average": averages,
               "providers": {c: by_condition[c].get("provider") for c in conditions}}
    if BASELINE in scores:
        summary["delta_vs_none"] = {c: {lang: scores[c][lang] - scores[BASELINE][lang] for lang in languages}
                                    | {"average": averages[c] - averages[BASELINE]} for c in conditions if c != BASELINE}
    headers = ["language"] + conditions + [f"Δ {c}" for c in conditions if c != BASELINE and BASELINE in scores]
    rows, classes = [], []
    for lang in languages + ["average"]:
        values = [averages[c] if lang == "average" else scores[c][lang] for c in conditions]
        deltas = [summary["delta_vs_none"][c][lang] for c in conditions if c != BASELINE] if BASELINE in scores else []
        rows.append([lang] + values + [f"{d:+.4f}" for d in deltas])
        classes.append([""] * (1 + len(values)) + ["pos" if d > 0 else "neg" if d < 0 else "" for d in deltas])
    best = max((c for c in conditions if c != BASELINE), key=lambda c: averages[c], default=None)
    verdict = ""
    if best and BASELINE in scores:
        gain = averages[best] - averages[BASELINE]
        verdict = (f"Best intermediate task: **{best}** ({averages[best]:.4f} average {metric}, {gain:+.4f} vs the "
                   f"`none` baseline)." if gain > 0 else
                   f"No intermediate task beats the `none` baseline ({averages[BASELINE]:.4f} average {metric}); "
                   f"the closest is **{best}** ({gain:+.4f}).")
    with atomic_dir(out_dir) as tmp:
        heatmap(tmp / "heatmap.png", languages, conditions, scores, metric, task)
        write_json(tmp / "summary.json", summary)
        atomic_write_text(tmp / "report.md", f"# Zero-shot cross-lingual transfer: {task}\n\n"
                          f"Metric: {metric}. Conditions: intermediate task before target fine-tuning "
                          f"(`none` = baseline).\n\n{verdict}\n\n" + markdown_table(headers, rows)
                          + "\n![heatmap](heatmap.png)\n")
        body = (f"<p>Metric: {esc(metric)}. Each condition is an English intermediate task trained before the "
                f"English target task; <code>none</code> is the baseline. Scores are zero-shot per language.</p>"
                f"<p>{esc(verdict.replace('**', '').replace('`', ''))}</p>" + html_table(headers, rows, classes)
                + "<h2>Heatmap</h2>" + html_image(tmp / "heatmap.png", f"{task} {metric} heatmap"))
        atomic_write_text(tmp / "report.html", html_page(f"xstilts report — {task}", body))
    for src, dest in (("report.html", html_path), ("report.md", md_path)):
        if dest:  # KFP's HTML/Markdown artifacts are single files beside the report directory
            atomic_copy(Path(out_dir) / src, dest)
    return summary
