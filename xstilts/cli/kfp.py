"""The Kubeflow commands: `run` (locally through kfp.local) and `compile`, the KFP client operations (`upload`,
`submit`, `schedule`, `runs`) and `lineage` (a local run directory, or a KFP run id). kfp and `pipelines/` are
imported inside each command, so the rest of the CLI never loads them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from xstilts.cli.common import PARAMS_HELP, console, friendly_errors
from xstilts.config import (KFP_EXPERIMENT, KFP_NAMESPACE, KFP_SERVICE_ACCOUNT, PIPELINE_FILE, PIPELINE_NAME, split_csv,
                             split_seeds)


app = typer.Typer()


@app.command()
@friendly_errors
def run(
    local: bool = typer.Option(False, "--local", help="Run every step here through kfp.local (the embedded default)."),
    preset: Optional[str] = typer.Option(None, help="Named parameter set: `tiny` (the embedded default), `xtreme-grid` "
                                         "(the paper's design on XLM-R Large), or a code question on tiny models: "
                                         "code-mbxp, codexglue-xtreme, english-humaneval, codegen-nonenglish, "
                                         "english-vs-nonenglish. Replaces ./params.yaml as the base."),
    params: Optional[Path] = typer.Option(None, help=PARAMS_HELP + " Default: ./params.yaml if present and no --preset."),
    target_tasks: Optional[str] = typer.Option(None, help="Comma-separated target tasks (see `xstilts tasks`)."),
    conditions: Optional[str] = typer.Option(None, help="Comma-separated intermediate conditions: task names, `a+b` "
                                             "multi-task sets, and `none` (the baseline)."),
    seeds: Optional[str] = typer.Option(None, help="Comma-separated random seeds, e.g. 1,2,3: each one a full restart "
                                        "(its own intermediate and target models); the report gives mean ± std over "
                                        "them and paired tests against `none`."),
    data: Optional[str] = typer.Option(None, help="Data root (<task>/<split>.jsonl|.parquet) or `hf` for the hub."),
    languages: Optional[str] = typer.Option(None, help="Comma-separated evaluation languages (empty: all of the task's)."),
    model_name: Optional[str] = typer.Option(None, help="`tiny` (built in code) or a hub id such as FacebookAI/xlm-roberta-large."),
    workdir: Path = typer.Option(Path("runs"), help="Local runs: artifacts, checkpoints and the `latest` report link."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, even those whose inputs, parameters "
                                  "and code are unchanged since a cached run (cache: $XSTILTS_STEP_CACHE, default "
                                  "~/.cache/xstilts/steps)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream every step's whole output (kfp.local's "
                                 "executor input, training progress bars) instead of one screen (a terminal) or "
                                 "a line per step event (a pipe, CI). Either way each step's output is in "
                                 "<workdir>/kfp/<run>/logs/<step>.log."),
):
    """Run the whole pipeline: validate → intermediate (per condition) → target → export → eval (per target) → report.
    On a terminal one screen follows the steps (state, duration, progress, time left); elsewhere a line per step
    event. Steps whose inputs, parameters and code are unchanged reuse their cached outputs (shown as cached)."""
    if not local:
        raise typer.BadParameter("only local runs are started from here: use --local, or compile the pipeline "
                                 "(`xstilts compile`) and upload it to Kubeflow (see README)", param_hint="--local")
    from pipelines.local import run_local

    if params is None and preset is None and Path("params.yaml").exists():
        params = Path("params.yaml")
    overrides = {"target_tasks": split_csv(target_tasks), "conditions": split_csv(conditions), "data": data,
                 "languages": split_csv(languages), "model_name": model_name, "seeds": split_seeds(seeds)}
    from xstilts.ops.preflight import load_run_params

    values = load_run_params(params, overrides, preset)
    report_dir = run_local(values, workdir, cache=not no_cache, view="verbose" if verbose else None)
    from xstilts.evaluate.report import headline
    from xstilts.io import read_json

    print("\n".join(headline(read_json(report_dir / "summary.json"))))
    print(f"report: {report_dir / 'report.html'}")


@app.command("compile")
@friendly_errors
def compile_(
    out: Path = typer.Option(PIPELINE_FILE, help="Where to write the pipeline YAML."),
    image: Optional[str] = typer.Option(None, help="Component image (built by docker/Dockerfile). Default: the release image."),
    gpus: int = typer.Option(1, help="GPUs per training/eval pod (training steps run torchrun over all of them), "
                             "and per node with --num-nodes."),
    num_nodes: int = typer.Option(1, "--num-nodes", help="> 1: the intermediate fine-tune runs as a Kubeflow "
                                  "Trainer v2 TrainJob on this many nodes (needs the `torch-distributed` runtime "
                                  "and k8s/base/rbac.yaml's TrainJob rules)."),
    gpu_memory: str = typer.Option("64G", "--memory", help="Memory request and limit of GPU pods."),
    cpu: str = typer.Option("8", help="CPU request of GPU pods."),
    cache_pvc: str = typer.Option("xstilts-model-cache", help="PVC (ReadWriteMany) for the model cache and checkpoints."),
    preset: str = typer.Option("xtreme-grid", help="Parameter defaults the Kubeflow UI shows: the cluster form of a "
                               "preset (xtreme-grid, code-mbxp, codexglue-xtreme, english-humaneval, "
                               "codegen-nonenglish, english-vs-nonenglish)."),
):
    """Compile the pipeline to Kubeflow Pipelines YAML (upload it in the UI or with the kfp client)."""
    from components import DEFAULT_IMAGE
    from pipelines.xstilts import ClusterSettings, compile_pipeline
    from xstilts.errors import ConfigError
    from xstilts.config import CLUSTER_PRESETS

    if preset not in CLUSTER_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(CLUSTER_PRESETS)}")
    from xstilts.config import merge_params
    from xstilts.ops.preflight import check_run_params

    check_run_params(merge_params(overrides=CLUSTER_PRESETS[preset]), f"preset {preset}", local=False)
    if gpus < 1 or num_nodes < 1:
        raise ConfigError(f"--gpus and --num-nodes must be at least 1 (got {gpus}, {num_nodes})")
    cluster = ClusterSettings(gpus=gpus, memory=gpu_memory, cpu=cpu, cache_pvc=cache_pvc, num_nodes=num_nodes)
    print(f"pipeline: {compile_pipeline(out, image or DEFAULT_IMAGE, cluster, CLUSTER_PRESETS[preset])}")
    print(gpu_pods_text(preset, cluster))


def gpu_pods_text(preset: str, cluster) -> str:
    """What `compile` prints about the pods of a run: the compiled preset's GPU and CPU pods, then every preset's
    GPU pods (pipelines.xstilts.pod_counts: the steps a run plans, loops expanded, the branch that runs)."""
    from components import DEFAULT_IMAGE
    from pipelines.xstilts import build_pipeline, pod_counts
    from xstilts.config import CLUSTER_PRESETS

    spec = build_pipeline(DEFAULT_IMAGE, cluster, CLUSTER_PRESETS[preset]).pipeline_spec
    counts = {name: pod_counts(values, cluster, spec) for name, values in CLUSTER_PRESETS.items()}

    def gpu(pods: dict) -> str:
        return f"{pods['gpu_pods']}" + (f" ({pods['gpus']} GPUs)" if pods["gpus"] != pods["gpu_pods"] else "")

    pods = counts[preset]
    nodes = ", TrainJob nodes included" if cluster.num_nodes > 1 else ""
    return (f"GPU pods per run of preset {preset}: {gpu(pods)}{nodes}; CPU pods: {pods['cpu_pods']}, "
            f"{pods['pass_throughs']} of them pass-throughs (the `none` intermediate and retrieval targets copy a "
            f"model: no GPU)\nGPU pods per run of each preset: "
            + ", ".join(f"{name} {gpu(p)}" for name, p in counts.items()))


# ---- operating on Kubeflow Pipelines (pipelines/ops.py) ---------------------------------------------------------

def _host_option():
    return typer.Option(None, "--host", envvar="KFP_HOST", show_envvar=True,
                        help="Kubeflow Pipelines endpoint, e.g. https://kubeflow.example.com/pipeline, or "
                             "http://localhost:8080 after `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`.")


def _namespace_option():
    return typer.Option(KFP_NAMESPACE, "--namespace", help="Namespace (Kubeflow profile) of the pipeline, experiments and runs.")


def _token_option():
    return typer.Option(None, "--token", envvar="KFP_TOKEN", show_envvar=True, show_default=False,
                        help="Bearer token sent with every request (e.g. `kubectl create token USER-SA -n NS "
                             "--audience pipelines.kubeflow.org`).")


def _pipeline_file_option():
    return typer.Option(PIPELINE_FILE, "--pipeline-file",
                        help="Compiled pipeline YAML (`xstilts compile`).")


def _param_option():
    return typer.Option(None, "--param", metavar="NAME=VALUE",
                        help="A pipeline parameter; repeatable. VALUE is YAML: --param conditions='\\[none,mnli]' "
                             "--param intermediate_train='{epochs: 1}' (mappings are merged over the defaults).")


def _params_file_option():
    return typer.Option(None, "--params", help="YAML file of pipeline parameters (keys as in params.yaml); "
                                               "--param wins over it. Parameters not given keep the compiled defaults.")


def _endpoint(host, namespace, token):
    from pipelines.ops import Endpoint

    return Endpoint(host, namespace, token)


def _print_params(params: dict) -> None:
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "none (the compiled defaults)"
    console.print(f"parameters: {shown}", highlight=False, markup=False, soft_wrap=True)


@app.command()
@friendly_errors
def upload(
    name: str = typer.Option(PIPELINE_NAME, "--name", help="Pipeline name in Kubeflow."),
    version: Optional[str] = typer.Option(None, "--version", help="Version name when the pipeline exists. "
                                          "Default: UTC timestamp + short git commit."),
    pipeline_file: Path = _pipeline_file_option(),
    host: Optional[str] = _host_option(),
    namespace: str = _namespace_option(),
    token: Optional[str] = _token_option(),
):
    """Upload the compiled pipeline: a new pipeline if none of that name exists, else a new version of it."""
    from pipelines.ops import upload as upload_pipeline

    result = upload_pipeline(_endpoint(host, namespace, token), pipeline_file, name, version)
    if result.created:
        console.print(f"created pipeline {result.pipeline_name!r}; its first version is named {result.version_name!r}"
                      + (f" (--version applies from the next upload)" if version else ""), highlight=False)
    else:
        console.print(f"uploaded version {result.version_name!r} of pipeline {result.pipeline_name!r}", highlight=False)
    print(f"pipeline_id: {result.pipeline_id}")
    print(f"version_id: {result.version_id}")
    print(f"url: {result.url}")


@app.command()
@friendly_errors
def submit(
    experiment: str = typer.Option(KFP_EXPERIMENT, "--experiment", help="Experiment to run in (created if missing)."),
    run_name: Optional[str] = typer.Option(None, "--run-name", help="Run name. Default: `xstilts <date time>`."),
    param: Optional[List[str]] = _param_option(),
    params: Optional[Path] = _params_file_option(),
    version_id: Optional[str] = typer.Option(None, "--version-id", help="Run this uploaded pipeline version "
                                             "(`xstilts upload` prints it) instead of sending the pipeline file."),
    pipeline_name: str = typer.Option(PIPELINE_NAME, "--pipeline-name", help="Pipeline that --version-id belongs to."),
    service_account: str = typer.Option(KFP_SERVICE_ACCOUNT, "--service-account",
                                        help="Service account of the run's pods ('' for the namespace default)."),
    pipeline_file: Path = _pipeline_file_option(),
    host: Optional[str] = _host_option(),
    namespace: str = _namespace_option(),
    token: Optional[str] = _token_option(),
):
    """Start one run of the pipeline with the given parameters; prints the run id and its URL."""
    from pipelines.ops import pipeline_file as find_pipeline_file, resolve_params, submit as submit_run

    path = find_pipeline_file(pipeline_file)
    values = resolve_params(path, param or [], params)  # checked before any request
    result = submit_run(_endpoint(host, namespace, token), path, values, experiment, run_name, version_id,
                        pipeline_name, service_account)
    _print_params(result.parameters)
    print(f"run_id: {result.run_id}")
    print(f"url: {result.url}")


@app.command()
@friendly_errors
def schedule(
    cron: str = typer.Option(..., "--cron", help="6-field cron, seconds first: '0 0 3 * * 0' = Sundays 03:00 "
                             "(the scheduler's time zone, normally UTC)."),
    name: str = typer.Option(f"{PIPELINE_NAME} schedule", "--name", help="Recurring run name."),
    experiment: str = typer.Option(KFP_EXPERIMENT, "--experiment", help="Experiment of the runs (created if missing)."),
    param: Optional[List[str]] = _param_option(),
    params: Optional[Path] = _params_file_option(),
    version_id: Optional[str] = typer.Option(None, "--version-id", help="Schedule this uploaded pipeline version "
                                             "instead of sending the pipeline file."),
    pipeline_name: str = typer.Option(PIPELINE_NAME, "--pipeline-name", help="Pipeline that --version-id belongs to."),
    service_account: str = typer.Option(KFP_SERVICE_ACCOUNT, "--service-account",
                                        help="Service account of the runs' pods ('' for the namespace default)."),
    pipeline_file: Path = _pipeline_file_option(),
    host: Optional[str] = _host_option(),
    namespace: str = _namespace_option(),
    token: Optional[str] = _token_option(),
):
    """Create a recurring run (enabled, one run at a time, no catch-up of missed slots); prints its id."""
    from pipelines.ops import check_cron, pipeline_file as find_pipeline_file, resolve_params, schedule as schedule_run

    check_cron(cron)
    path = find_pipeline_file(pipeline_file)
    values = resolve_params(path, param or [], params)
    result = schedule_run(_endpoint(host, namespace, token), cron, path, values, name, experiment, version_id,
                          pipeline_name, service_account)
    _print_params(result.parameters)
    print(f"recurring_run_id: {result.recurring_run_id}")
    print(f"url: {result.url}")


@app.command()
@friendly_errors
def runs(
    limit: int = typer.Option(20, "--limit", min=1, help="How many runs, newest first."),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Only this experiment's runs."),
    host: Optional[str] = _host_option(),
    namespace: str = _namespace_option(),
    token: Optional[str] = _token_option(),
):
    """List recent runs: id, name, state, created, finished (UTC)."""
    from pipelines.ops import list_runs

    rows = list_runs(_endpoint(host, namespace, token), limit, experiment)
    table = Table(title=f"runs in {namespace or 'the shared namespace'}" + (f", experiment {experiment}" if experiment else ""))
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="fold")
    for col in ("state", "created", "finished"):
        table.add_column(col, no_wrap=True)
    for row in rows:
        table.add_row(row.run_id, row.name, row.state, row.created, row.finished)
    Console(width=max(Console().width, 150)).print(table)  # piped output is read whole, not wrapped
    if not rows:
        console.print("no runs")


# ---- lineage: a local run directory, or a KFP run id with --host ---------------------------------------------------

def lineage_local(path: Path, format: str) -> None:
    """`xstilts lineage PATH`: audit a local run and print its chain ."""
    import json

    from rich.markup import escape

    from xstilts.ops.lineage import audit, print_chain, run_directory

    if format not in ("text", "json"):
        raise typer.BadParameter("must be `text` or `json`", param_hint="--format")
    run = run_directory(path)
    nodes = audit(run)
    if format == "json":
        typer.echo(json.dumps({"run": str(run), "verified": True, "not_verified": [], "artifacts": nodes}, indent=2,
                              ensure_ascii=False))
        return

    def location(node: dict) -> str:
        return str(Path(node["path"]).relative_to(run)) if Path(node["path"]).is_relative_to(run) else node["path"]

    print_chain(nodes, f"[bold]run[/] {escape(str(run))} — [green]{len(nodes)} artifacts verified[/]", location)




@app.command()
@friendly_errors
def lineage(
    run: str = typer.Argument(..., metavar="PATH|RUN_ID", help="A local run directory (runs/kfp/<run>, or any folder "
                              "inside one such as `runs/latest`), or the id of a Kubeflow run (with --host)."),
    format: str = typer.Option("text", "--format", help="`text` (a tree per condition and target) or `json`."),
    host: Optional[str] = _host_option(),
    namespace: str = _namespace_option(),
    token: Optional[str] = _token_option(),
):
    """Audit a run's provenance and print the chain data → validation → intermediate model → target model → ONNX →
    eval results → gather → report. A local run: every artifact's md5 is recomputed against its lineage.json. A
    Kubeflow run: each artifact's record is read from the cluster and every recorded parent md5 is checked."""
    import json

    from rich.markup import escape

    from xstilts.ops.lineage import print_chain

    if Path(run).exists() or not (host or "").strip():
        if not Path(run).exists():
            raise typer.BadParameter(f"{run!r} is no local run directory; for a Kubeflow run id pass --host or set "
                                     "KFP_HOST", param_hint="PATH|RUN_ID")
        return lineage_local(Path(run), format)
    if format not in ("text", "json"):
        raise typer.BadParameter("must be `text` or `json`", param_hint="--format")
    from pipelines.ops import run_lineage

    endpoint = _endpoint(host, namespace, token)
    result = run_lineage(endpoint, run)
    if format == "json":
        typer.echo(json.dumps({"run": result.run_id, "name": result.name, "state": result.state, "host": endpoint.url,
                               "url": result.url, "verified": True, "not_verified": result.not_verified,
                               "artifacts": result.artifacts}, indent=2, ensure_ascii=False, default=str))
        return
    header = (f"[bold]run[/] {escape(result.run_id)} ({escape(result.name)}, {escape(result.state)}) at "
              f"{escape(endpoint.url)} — [green]{len(result.artifacts)} artifact records verified[/]")
    notes = [f"[yellow]not verified:[/] {escape(note)}" for note in result.not_verified]
    print_chain(result.artifacts, header, lambda n: f"{n['task_name']} · {n['uri']}", notes)

