"""The full `xstilts` CLI: the library's commands plus `run` and `compile`, which need kfp (imported lazily)."""

from pathlib import Path
from typing import Optional

import typer

from xstilts.cli import PARAMS_HELP, app, console, friendly_errors
from xstilts.params import load_params, split_csv


@app.command()
@friendly_errors
def run(
    local: bool = typer.Option(False, "--local", help="Run every step here through kfp.local (the embedded default)."),
    preset: Optional[str] = typer.Option(None, help="Named parameter set: `tiny` (the embedded default) or `xtreme-grid` "
                                         "(the paper's design on XLM-R Large). Replaces ./params.yaml as the base."),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP + " Default: ./params.yaml if present and no --preset."),
    target_tasks: Optional[str] = typer.Option(None, help="Comma-separated target tasks (see `xstilts tasks`)."),
    conditions: Optional[str] = typer.Option(None, help="Comma-separated intermediate conditions: task names, `a+b` "
                                             "multi-task sets, and `none` (the baseline)."),
    data: Optional[str] = typer.Option(None, help="Data root (<task>/<split>.jsonl|.parquet) or `hf` for the hub."),
    languages: Optional[str] = typer.Option(None, help="Comma-separated evaluation languages (empty: all of the task's)."),
    model_name: Optional[str] = typer.Option(None, help="`tiny` (built in code) or a hub id such as FacebookAI/xlm-roberta-large."),
    workdir: Path = typer.Option(Path("runs"), help="Local runs: artifacts, checkpoints and the `latest` report link."),
):
    """Run the whole pipeline: validate → intermediate (per condition) → target → export → eval (per target) → report."""
    if not local:
        raise typer.BadParameter("only local runs are started from here: use --local, or compile the pipeline "
                                 "(`xstilts compile`) and upload it to Kubeflow (see README)", param_hint="--local")
    from pipelines.local import run_local

    if params is None and preset is None and Path("params.yaml").exists():
        params = Path("params.yaml")
    overrides = {"target_tasks": split_csv(target_tasks), "conditions": split_csv(conditions), "data": data,
                 "languages": split_csv(languages), "model_name": model_name}
    values = load_params(params, overrides, preset)
    report_dir = run_local(values, workdir)
    print(f"report: {report_dir / 'report.html'}")


@app.command("compile")
@friendly_errors
def compile_(
    out: Path = typer.Option(Path("pipelines/compiled/xstilts.yaml"), help="Where to write the pipeline YAML."),
    image: Optional[str] = typer.Option(None, help="Component image (built by docker/Dockerfile). Default: the release image."),
    gpus: int = typer.Option(1, help="GPUs per training/eval pod."),
    gpu_memory: str = typer.Option("64G", "--memory", help="Memory request and limit of GPU pods."),
    cpu: str = typer.Option("8", help="CPU request of GPU pods."),
    cache_pvc: str = typer.Option("xstilts-model-cache", help="PVC (ReadWriteMany) for the model cache and checkpoints."),
):
    """Compile the pipeline to Kubeflow Pipelines YAML (upload it in the UI or with the kfp client)."""
    from components import DEFAULT_IMAGE
    from pipelines.xstilts import ClusterSettings, compile_pipeline

    cluster = ClusterSettings(gpus=gpus, memory=gpu_memory, cpu=cpu, cache_pvc=cache_pvc)
    print(f"pipeline: {compile_pipeline(out, image or DEFAULT_IMAGE, cluster)}")


def main() -> None:
    app()
