"""Checks a run's parameters before its first step: the schema of xstilts.config (types, ranges, enums) and the rules
that need the task registry, the models' shapes or the file system. Every problem is listed at once, with its key,
in one ConfigError, seconds after the command starts rather than after an hour of training.

`xstilts run --local`, `compile`, `submit` and `schedule` call `check_run_params`; the pipeline's validate step
calls it too, since the Kubeflow UI can start a run with any values.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.config import merge_params, params_problems
from xstilts.data.dvc import is_dvc_source
from xstilts.errors import ConfigError, XstiltsError
from xstilts.io import shorten
from xstilts.models.tiny import TINY, TINY_CAUSAL, TINY_CAUSAL_CONFIG, TINY_CONFIG
from xstilts.tasks.registry import all_tasks, condition_tasks, get_task, languages_for

HUB_DATA = ("hf", "hub", "hf://")


def experiment_problems(params: dict, local: bool) -> list[str]:
    """The rules between parameters: known target tasks and languages, conditions made of distinct trainable tasks,
    promotion targets among the targets, task_data for known tasks, a retrieval layer inside the model, and
    (`local`: the data is read on this machine) data folders that exist. Expects check_params to have passed."""
    problems = []
    targets = []
    for i, name in enumerate(params["target_tasks"]):
        try:
            task = get_task(name)
        except XstiltsError as e:
            problems.append(f"target_tasks[{i}]: {e}")
            continue
        if task.role != "target":
            problems.append(f"target_tasks[{i}]: {name!r} is not a cross-lingual target task; targets: "
                            f"{', '.join(t.name for t in all_tasks() if t.role == 'target')}")
        else:
            targets.append(task)
    for key in ("target_tasks", "conditions"):
        repeated = sorted({v for v in params[key] if params[key].count(v) > 1})
        if repeated:  # two branches would train the same model into the same checkpoint directory
            problems.append(f"{key}: {', '.join(repeated)} listed more than once")
    for i, condition in enumerate(params["conditions"]):
        try:
            condition_tasks(condition)
        except XstiltsError as e:
            problems.append(f"conditions[{i}]: {e}")
    if targets and len(targets) == len(params["target_tasks"]):
        try:
            languages_for(targets, params["languages"])
        except XstiltsError as e:
            problems.append(f"languages: {e}")
    strangers = [t for t in params["promotion_targets"] if t not in params["target_tasks"]]
    if strangers:
        problems.append(f"promotion_targets: {', '.join(strangers)} not among the target_tasks "
                        f"({', '.join(params['target_tasks'])})")
    if params["promotion_condition"] and params["promotion_condition"] not in params["conditions"]:
        problems.append(f"promotion_condition: {shorten(params['promotion_condition'])} is not one of the conditions")
    for name in params["task_data"]:
        try:
            get_task(name)
        except XstiltsError as e:
            problems.append(f"task_data.{shorten(name, 60)}: {e}")
    layers = _layers(params["model_name"])
    layer = params["retrieval_layer"]
    if layers is not None and not (layer == 0 or 1 <= layer <= layers or -layers <= layer <= -1):
        problems.append(f"retrieval_layer: {layer} is outside {params['model_name']}'s {layers} layers "
                        f"(use 1..{layers}, -1..-{layers} or 0 for the middle one)")
    if local:
        problems += _missing_data(params)
    return problems


def _layers(model_name: str) -> int | None:
    """Transformer layers of the model, where they are known without a download (tiny models, local folders)."""
    if model_name in (TINY, TINY_CAUSAL):
        return (TINY_CONFIG if model_name == TINY else TINY_CAUSAL_CONFIG)["num_hidden_layers"]
    config = Path(model_name) / "config.json"
    if config.is_file():
        import json

        try:
            return int(json.loads(config.read_text())["num_hidden_layers"])
        except (ValueError, KeyError, TypeError):
            return None
    return None


def _missing_data(params: dict) -> list[str]:
    """Local data roots that do not exist (the hub, DVC sources and a data_repo's paths are resolved by the run)."""
    problems = []
    if params["data_repo"]:
        return problems
    roots = {"data": params["data"], **{f"task_data.{k}": v for k, v in params["task_data"].items()}}
    for key, root in roots.items():
        if root in HUB_DATA or "://" in root or is_dvc_source(root):
            continue
        path = Path(root)
        if not path.exists():
            problems.append(f"{key}: data folder {root} does not exist")
        elif not path.is_dir():
            problems.append(f"{key}: {root} is not a folder")
    return problems


def check_run_params(params: dict, source: str = "parameters", local: bool = True) -> dict:
    """The schema's problems (types, ranges) and experiment_problems, all in one ConfigError."""
    problems = params_problems(params)
    try:
        problems += experiment_problems(params, local)
    except (TypeError, AttributeError, KeyError, ValueError):  # a key of the wrong type: the schema has said so
        if not problems:
            raise
    if problems:
        raise ConfigError(f"{source}: {len(problems)} invalid parameter(s):\n  - " + "\n  - ".join(problems))
    return params


def load_run_params(path: str | Path | None = None, overrides: dict | None = None, preset_name: str | None = None,
                    local: bool = True) -> dict:
    """merge_params (a preset, a YAML file, CLI overrides), checked by check_run_params."""
    params = merge_params(path, overrides, preset_name)
    return check_run_params(params, str(path) if path else "parameters", local)

