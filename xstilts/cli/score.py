"""`xstilts score PREDICTIONS_DIR`: every task × language metric recomputed from the per-example predictions an eval
step wrote (results/predictions/<task>/<language>.jsonl), with the metric functions the eval step uses."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.console import Console
from rich.table import Table
from xstilts.cli.common import console, friendly_errors

app = typer.Typer()


@app.command()
@friendly_errors
def score(predictions_dir: Path = typer.Argument(..., help="A predictions/ folder, or an eval results folder "
                                                 "holding one (predictions/<task>/<language>.jsonl)."),
          json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the recomputed scores here "
                                                  "(JSON: task → metric, scores, details, average, examples).")):
    """Recompute every task × language metric from per-example predictions and print a table."""
    from xstilts.evaluate.predictions import score_predictions
    from xstilts.io import fmt, write_json

    result = score_predictions(predictions_dir)
    table = Table(title=f"scores recomputed from {predictions_dir}")
    for col in ("task", "metric", "language", "score", "examples"):
        table.add_column(col, no_wrap=True)
    for task, r in result.items():
        for lang, value in r["scores"].items():
            table.add_row(task, r["metric"], lang, fmt(value), str(r["examples"][lang]))
        table.add_row(task, r["metric"], "average", fmt(r["average"]), str(sum(r["examples"].values())))
    Console().print(table)
    if json_out is not None:
        write_json(json_out, result)
        console.print(f"scores: {json_out}")


@app.command()
@friendly_errors
def compare(run_a: Path = typer.Argument(..., help="Run A (the reference, e.g. today's prod run): a report folder "
                                         "(summary.json + predictions/), its summary.json, or a local workdir "
                                         "whose `latest` link points to one."),
            run_b: Path = typer.Argument(..., help="Run B (e.g. the retrained candidate), in the same forms."),
            out: Optional[Path] = typer.Option(None, help="Also write compare.json and compare.md into this folder."),
            method: str = typer.Option("bootstrap", help="Paired test: `bootstrap` (over test examples and seeds) or "
                                       "`permutation` (approximate randomisation, seeds held fixed)."),
            correction: str = typer.Option("holm", help="Multiple-comparison correction: `holm` or `bh`."),
            resamples: int = typer.Option(10_000, help="Bootstrap / permutation resamples per test.")):
    """Test run B against run A example by example: Δ, its 95 % interval and the adjusted p-value for every task
    average and the XTREME average of each condition (every cell too, in --out's compare.json)."""
    from xstilts.evaluate.compare import HEADERS, compare_runs, headline_rows

    result = compare_runs(run_a, run_b, out, method=method, correction=correction, n_resamples=resamples)
    m = result["method"]
    table = Table(title=f"B vs A — {len(result['seeds'])} seed(s) {result['seeds']}; paired {m['test']}, "
                        f"{m['correction']}-adjusted over {m['family']}")
    for col in HEADERS:
        table.add_column(col, no_wrap=True)
    for row in headline_rows(result):
        table.add_row(*row, style="bold" if row[-1] == "yes" else None)
    import sys

    Console(width=None if sys.stdout.isatty() else 140).print(table)  # a pipe or a log: no 80-column squeeze
    if out is not None:
        console.print(f"comparison: {out / 'compare.json'}, {out / 'compare.md'}")
