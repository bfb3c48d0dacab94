"""`xstilts step validate|intermediate|target|export|evaluate|report|promote`: one pipeline step outside Kubeflow,
as dvc.yaml runs them. Each imports its library module (and with it torch, where it trains or evaluates) when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from xstilts.config import load_params
from xstilts.cli.common import PARAMS_HELP, console, friendly_errors



app = typer.Typer(help="Run one pipeline step outside Kubeflow (what dvc.yaml calls).", no_args_is_help=True)


@app.command("validate")
@friendly_errors
def step_validate(out: Path = typer.Option(..., help="Dataset output folder."),
                  params: Optional[Path] = typer.Option(None, help=PARAMS_HELP)):
    """Steps 1 and 2: resolve the data (with data_repo), validate the target task and the intermediate tasks of every
    condition."""
    from xstilts.data.dvc import resolve_run_data
    from xstilts.data.validate import validate_experiment

    p = load_params(params)
    data = resolve_run_data(p["data"], p["task_data"], p["data_repo"], p["data_rev"]) if p["data_repo"] else p
    validate_experiment(p["target_tasks"], p["conditions"], data["data"], out, out.parent / f"{out.name}-report.html",
                        out.parent / f"{out.name}-report.md", p["languages"] or None, p["hf_revision"] or None,
                        data["task_data"], hf_revisions=p["hf_revisions"] or None)
    console.print(f"dataset: {out}")


@app.command("intermediate")
@friendly_errors
def step_intermediate(condition: str = typer.Option(..., help="Intermediate task name, or `none`."),
                      dataset: Path = typer.Option(..., help="Validated dataset folder."),
                      out: Path = typer.Option(..., help="Model output folder."),
                      params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
                      seed: Optional[int] = typer.Option(None, help="The restart's random seed (the target step "
                                                         "after it uses it too). Default: the first of the "
                                                         "parameters' `seeds` (`dvc repro` runs that one).")):
    """Step 3: intermediate fine-tune (`none` passes the pretrained encoder through)."""
    from xstilts.config import TrainConfig
    from xstilts.train.finetune import intermediate_finetune

    p = load_params(params)
    config = TrainConfig.from_dict({**p["intermediate_train"], "seed": p["seeds"][0] if seed is None else seed},
                                   where="intermediate_train (with --seed)")
    intermediate_finetune(condition, dataset, p["model_name"], out, config, p["model_revision"] or None)
    console.print(f"model: {out}")


@app.command("target")
@friendly_errors
def step_target(target_task: str = typer.Option(..., help="Target task (one of the run's target_tasks)."),
                condition: str = typer.Option(..., help="The intermediate condition this branch belongs to."),
                dataset: Path = typer.Option(..., help="Validated dataset folder."),
                intermediate_model: Path = typer.Option(..., help="Model folder from the intermediate step."),
                out: Path = typer.Option(..., help="Model output folder."),
                params: Optional[Path] = typer.Option(None, help=PARAMS_HELP)):
    """Step 4: target fine-tune from the intermediate model's encoder (its head dropped)."""
    from xstilts.config import TrainConfig
    from xstilts.train.finetune import target_finetune

    p = load_params(params)
    target_finetune(target_task, dataset, intermediate_model, out, TrainConfig.from_dict(p["target_train"]), condition)
    console.print(f"model: {out}")


@app.command("export")
@friendly_errors
def step_export(model: Path = typer.Option(..., help="Target model folder."),
                out: Path = typer.Option(..., help="ONNX output folder."),
                tolerance: float = typer.Option(1e-4, help="Max |ONNX - PyTorch| allowed on held-out inputs (fp32)."),
                params: Optional[Path] = typer.Option(None, help=PARAMS_HELP + " (for retrieval_layer)"),
                optimize: Optional[bool] = typer.Option(None, "--optimize/--no-optimize", help="Optimize and fuse "
                                                        "the graph for onnxruntime (default: for models of 10 M "
                                                        "parameters or more; smaller ones are saved as traced).")):
    """Step 5: ONNX export with a parity check."""
    from xstilts.export.encoder import export_onnx

    report = export_onnx(model, out, tolerance, retrieval_layer=load_params(params)["retrieval_layer"],
                         optimize=optimize)
    console.print(f"onnx: {out}/model.onnx (max abs diff {report['max_abs_diff']:.2e})")


@app.command("evaluate")
@friendly_errors
def step_evaluate(onnx: Path = typer.Option(..., help="ONNX folder from the export step."),
                  dataset: Path = typer.Option(..., help="Validated dataset folder."),
                  out: Path = typer.Option(..., help="Results output folder."),
                  condition: Optional[str] = typer.Option(None, help="Condition name (default: read from the model).")):
    """Step 6: zero-shot evaluation in onnxruntime over every evaluation language."""
    from xstilts.evaluate.zero_shot import zero_shot_eval

    results = zero_shot_eval(onnx, dataset, out, condition)
    console.print(f"results: {out}/results.json (average {results['metric']} {results['average']:.4f})")


@app.command("report")
@friendly_errors
def step_report(results: Optional[list[Path]] = typer.Argument(None, help="Results folders (or results.json files)."),
                results_root: Optional[Path] = typer.Option(None, help="Instead of listing results: "
                                                            "<root>/<condition>/<target> for the run in --params."),
                params: Optional[Path] = typer.Option(None, help=PARAMS_HELP),
                decision: Optional[Path] = typer.Option(None, help="The promotion step's output folder, shown in "
                                                        "the report."),
                out: Path = typer.Option(..., help="Report output folder.")):
    """Step 9: the grid report (task × condition, XTREME average, deltas vs `none`, promotion decision, heatmaps,
    summary.json)."""
    from xstilts.evaluate.report import build_report

    build_report(_results_of_run(results, results_root, params), out, decision=decision)
    console.print(f"report: {out}/report.html")


def _results_of_run(results: Optional[list[Path]], results_root: Optional[Path], params: Optional[Path]) -> list[Path]:
    if results_root is not None:
        p = load_params(params)
        results = [results_root / condition / target for condition in p["conditions"] for target in p["target_tasks"]]
    if not results:
        raise typer.BadParameter("give results folders, or --results-root with --params")
    return results


@app.command("promote")
@friendly_errors
def step_promote(results: Optional[list[Path]] = typer.Argument(None, help="Results folders (or results.json files)."),
                 results_root: Optional[Path] = typer.Option(None, help="Instead of listing results: "
                                                             "<root>/<condition>/<target> for the run in --params."),
                 params: Optional[Path] = typer.Option(None, help=PARAMS_HELP + " Gate settings: registry_repo, "
                                                       "promotion_targets, promotion_tolerance, promotion_condition."),
                 run_name: str = typer.Option("", help="Names the candidate record committed to the registry."),
                 out: Path = typer.Option(..., help="Decision output folder (decisions.json, decision.md).")):
    """Step 8: the promotion gate (skipped when registry_repo is empty): register the run's model with GTO and
    promote it to `prod` only if it is not worse than production by more than promotion_tolerance."""
    from xstilts.ops.promotion import gate_run

    p = load_params(params)
    result = gate_run(_results_of_run(results, results_root, params), out, p["registry_repo"], p["promotion_targets"],
                      p["promotion_tolerance"], p["promotion_condition"] or None, run_name=run_name)
    if result["skipped"]:
        console.print("promotion gate: skipped (registry_repo is empty)")
    for d in result["decisions"]:
        console.print(f"promotion gate: {d['artifact']}: {d['decision']} — {d['reason']}", highlight=False)
