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
