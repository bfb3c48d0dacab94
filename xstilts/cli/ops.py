"""`xstilts promote`: the model registry's promotion gate (DVC GTO tags), by hand or to roll back; `xstilts preflight`:
what a run needs from the outside world (hub data and model, folders, remotes, toolchains), checked before it starts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.console import Console
from xstilts.cli.common import PARAMS_HELP, friendly_errors

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


@app.command()
@friendly_errors
def preflight(preset: Optional[str] = typer.Option(None, "--preset", help="Named parameter set to check (with "
                                                   "--cluster: its cluster form, as `xstilts compile` bakes in)."),
              params: Optional[Path] = typer.Option(None, "--params", help=PARAMS_HELP + " Default: ./params.yaml "
                                                    "if present and no --preset."),
              local: bool = typer.Option(True, "--local/--cluster", help="--local (default): the run reads its data "
                                         "and runs code on this machine, so local folders and toolchains are "
                                         "checked here. --cluster: those are skipped (the pipeline's first step "
                                         "checks them in the pod)."),
              gpu_memory: str = typer.Option("80G", "--gpu-memory", help="One GPU's memory (80G, 141G, 40GiB; 0: "
                                             "not checked): AdamW training needs ~16 bytes per model parameter."),
              json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here.")):
    """Check everything a run needs before any training: every hub dataset source of the targets and conditions
    (repository accessible, revision, config and split as Parquet/JSON, not a loading script), the model
    (repository, revision, config.json, tokenizer, weights, training memory against --gpu-memory), data folders,
    the DVC remote, the data repository and model registry (git ls-remote), code toolchains. Exit 1 if any fails.
    The hub is HF_ENDPOINT (default https://huggingface.co), with HF_TOKEN for private or gated repositories."""
    if preset is not None and params is not None:
        raise typer.BadParameter("give --preset or --params, not both", param_hint="--preset")
    if params is None and preset is None and Path("params.yaml").exists():
        params = Path("params.yaml")
    from xstilts.config import CLUSTER_PRESETS, merge_params
    from xstilts.errors import ConfigError
    from xstilts.io import write_json
    from xstilts.ops.preflight import parse_memory, preflight as run_preflight

    parse_memory(gpu_memory)  # a malformed size fails before any request
    if json_out is not None and json_out.exists() and not json_out.is_file():  # never rename over /dev/null, a dir
        raise ConfigError(f"--json {json_out}: not a regular file")
    if preset is not None and not local:
        if preset not in CLUSTER_PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(CLUSTER_PRESETS)}")
        values, source = merge_params(overrides=CLUSTER_PRESETS[preset]), f"preset {preset} (cluster form)"
    else:
        values = merge_params(params, None, preset)
        source = str(params) if params else f"preset {preset or 'tiny'}"
    report = run_preflight(values, local=local, gpu_memory=gpu_memory, source=source)
    out = Console()
    out.print(report.table(f"preflight: {source} ({'local' if local else 'cluster'})"))
    counts = report.counts()
    verdict = "[green]ready[/]" if report.ok else "[bold red]not ready[/]"
    out.print(f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped", highlight=False)
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if not report.ok:
        raise typer.Exit(1)
