"""`xstilts promote`: the model registry's promotion gate (DVC GTO tags), by hand or to roll back."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.console import Console
from xstilts.cli.common import friendly_errors

app = typer.Typer()


@app.command()
@friendly_errors
def promote(summary: Optional[Path] = typer.Option(None, "--summary", help="The report's summary.json holding the "
                                                   "candidate's scores (not needed with --rollback)."),
            target: Optional[str] = typer.Option(None, "--target", help="Gate on task_average[TARGET][condition]; "
                                                 "omitted: the XTREME average over tasks (xtreme_average[condition])."),
            condition: Optional[str] = typer.Option(None, "--condition", help="Condition to score; default: the "
                                                    "best-scoring one."),
            artifact: Optional[str] = typer.Option(None, "--artifact", help="GTO artifact name; default "
                                                   "`xstilts-<target>`, or `xstilts-grid` without --target."),
            repo: Path = typer.Option(Path("."), "--repo", help="Git repository holding the GTO registry tags."),
            ref: str = typer.Option("HEAD", "--ref", help="Commit to register the candidate version on."),
            tolerance: float = typer.Option(0.0, "--tolerance", help="Promote if candidate >= prod - TOLERANCE "
                                            "(absolute, score fraction: 0.005 = half a point)."),
            version: Optional[str] = typer.Option(None, "--version", help="Version to register (e.g. v2.0.0); "
                                                  "default: bump the latest (v1.0.0 for the first)."),
            bump: str = typer.Option("minor", "--bump", help="patch, minor or major."),
            out: Path = typer.Option(Path("decision.json"), "--out", help="Decision record (JSON); a Markdown "
                                     "snippet is written beside it with the .md suffix."),
            dry_run: bool = typer.Option(False, "--dry-run", help="Decide and write the record, create no tags."),
            rollback: bool = typer.Option(False, "--rollback", help="Re-assign prod to the previous prod version.")):
    """Promotion gate for scheduled retraining (DVC GTO tags): register the candidate as a new version
    (`xstilts-xnli@v1.3.0`) and assign `prod` (`xstilts-xnli#prod#N`) only if it scores at least prod − tolerance."""
    from xstilts.ops import promotion

    if rollback:
        name = artifact or promotion.artifact_name(target)
        decision = promotion.rollback(repo, name, dry_run=dry_run, out=out)
    else:
        if summary is None:
            raise typer.BadParameter("required unless --rollback", param_hint="--summary")
        decision = promotion.promote(repo, summary, target=target, condition=condition, artifact=artifact,
                                     tolerance=tolerance, version=version, bump=bump, ref=ref, dry_run=dry_run,
                                     out=out)
    verdict = {"promoted": "[green]promoted[/]", "rejected": "[yellow]not promoted[/]",
               "rollback": "[cyan]rolled back[/]"}[decision["decision"]]
    from rich.markup import escape

    Console().print(f"{escape(decision['artifact'])}: {verdict} — {escape(decision['reason'])}"
                    + (" [dim](dry run)[/]" if dry_run else ""), highlight=False)
    for tag in decision["tags"]:
        Console().print(f"  tag {escape(str(tag))}", highlight=False)
    Console().print(f"  record {escape(str(out))} + {escape(str(out.with_suffix('.md')))}", highlight=False)
