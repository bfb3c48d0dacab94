"""`xstilts tasks`, `xstilts validate`, `xstilts sample-data`: the task registry and the data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.console import Console
from rich.table import Table
from xstilts.config import split_csv
from xstilts.cli.common import FORCE_HELP, console, friendly_errors, output_folder

app = typer.Typer()


@app.command()
@friendly_errors
def tasks(kind: Optional[str] = typer.Option(None, help="Only tasks of this kind (e.g. extractive_qa, tagging)."),
          role: Optional[str] = typer.Option(None, help="Only `target` (XTREME) or `intermediate` (English) tasks.")):
    """List the registered tasks: role, kind, metric, languages, labels and data source."""
    from xstilts.kinds.base import KINDS, get_spec
    from xstilts.tasks.registry import all_tasks

    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(KINDS)}", param_hint="--kind")
    table = Table(title="xstilts tasks")
    for col in ("task", "role", "kind", "metric"):
        table.add_column(col, no_wrap=True)
    for col in ("languages", "labels", "data (hub id / config)"):
        table.add_column(col, overflow="fold")
    for t in all_tasks():
        if (kind and t.kind != kind) or (role and t.role != role):
            continue
        source = f"{t.hub.path} / {t.hub.config or 'default'}" if t.hub else "local files only"
        if t.train_task:
            source += f" (trained on {t.train_task})"
        if t.extra_train:
            source += " + " + " + ".join(f"{x.path}/{x.config}" for x in t.extra_train)
        labels = ", ".join(t.labels) if t.labels else ("from the train split" if get_spec(t.kind).open_labels else "—")
        table.add_row(t.name, t.role, t.kind, t.metric, f"{len(t.languages)}: {' '.join(t.languages)}", labels, source)
    Console(width=max(Console().width, 150)).print(table)  # piped output is read whole, not wrapped


@app.command()
@friendly_errors
def validate(
    task: str = typer.Option(..., "--task", help="Task name (see `xstilts tasks`)."),
    data: str = typer.Option(..., "--data", help="Data root holding <task>/<split>.jsonl|.parquet, or `hf` for the hub."),
    languages: Optional[str] = typer.Option(None, help="Comma-separated evaluation languages (default: all of the task's)."),
    hf_revision: Optional[str] = typer.Option(None, help="Dataset revision on the hub (default: the registry's)."),
    out: Path = typer.Option(Path("outputs/validated"), help="Where the canonical Parquet tables and reports go."),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
):
    """Validate one task's data with its great-expectations suite; write canonical Parquet and an HTML/Markdown report."""
    from xstilts.data.validate import default_source, validate_tasks

    html, md = out.parent / f"{out.name}-report.html", out.parent / f"{out.name}-report.md"
    try:
        with output_folder(out, force):
            manifest = validate_tasks([task], default_source(data), out, html, md, split_csv(languages), hf_revision)
    finally:
        if html.exists():
            console.print(f"validation report: {html}")
    console.print(f"[green]valid[/]: {manifest['expectations']['evaluated']} expectations met; tables in {out}")


@app.command("sample-data")
@friendly_errors
def sample_data(out: Path = typer.Option(Path("data/sample"), help="Output folder."),
                seed: int = typer.Option(13, help="Generator seed (13 gives the bundled data)."),
                force: bool = typer.Option(False, "--force", help=FORCE_HELP)):
    """(Re)write the bundled synthetic sample data (deterministic; tracked by data.dvc)."""
    from xstilts.sampledata.generate import write_sample_data

    with output_folder(out, force):
        console.print(f"sample data: {write_sample_data(out, seed)}")
