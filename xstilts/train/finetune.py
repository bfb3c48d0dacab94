"""The training steps of the pipeline: intermediate_finetune (step 2), target_finetune (step 3), and the shared
finetune (load the initial model, build heads, train with train.loop, write the model directory) and
pass_through (a model that is passed on untrained: the `none` baseline, retrieval targets)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from xstilts.train import distributed
from xstilts.kinds import base as kinds
from xstilts.data.load import read_split
from xstilts.errors import ConfigError
from xstilts.io import atomic_dir, dir_fingerprint, fingerprint, read_json, write_json
from xstilts.progress import phase
from xstilts.provenance import Provenance
from xstilts.models.encoder import (build_model, load_encoder, resolve_pretrained, save_model_dir)
from xstilts.kinds.base import GENERATION, RETRIEVAL
from xstilts.tasks.registry import BASELINE, Task, condition_tasks, get_task
from xstilts.models.tiny import TINY_CAUSAL
from xstilts.models.causal import CausalLMModel, is_causal, lm_dir, load_causal_lm, save_causal_model_dir
from xstilts.models.tiny import ensure_tiny_causal_model
from xstilts.config import TrainConfig
from xstilts.train.checkpoint import checkpoint_root
from xstilts.train.loop import seed_everything, train


def dataset_labels(dataset_dir: str | Path, task: Task) -> tuple[str, ...]:
    """The label set the validate step recorded (open tag sets such as CCG's come from the train split)."""
    manifest = read_json(Path(dataset_dir) / "manifest.json")
    if task.name not in manifest["tasks"]:
        raise ConfigError(f"task {task.name!r} was not part of the validate step (tasks: {', '.join(manifest['tasks'])})")
    return tuple(manifest["tasks"][task.name]["labels"])


def finetune(task_names: list[str], dataset_dir: str | Path, init: str, out_dir: str | Path, config: TrainConfig,
             init_revision: str | None = None, condition: str | None = None, provenance: Provenance | None = None) -> dict:
    """Fine-tune `init` (a pretrained name, `tiny`, or a model directory whose encoder/ is used) on one or more tasks'
    English train splits (one head each), early-stopping on their validation splits; write a model directory
    (with lineage.json from `provenance`, by default a generic `finetune` record)."""
    provenance = provenance or Provenance("finetune", _model_inputs(init, dataset=dataset_dir),
                                          {"tasks": list(task_names), "init": str(init), "init_revision": init_revision,
                                           "condition": condition, "train": dataclasses.asdict(config)})
    tasks = [get_task(name) for name in task_names]
    init_path = _backbone_dir(init)
    # Generation tasks train a causal LM (prompt → completion); every other kind an encoder with heads. A causal LM
    # also takes classification/MC/QA tasks as text → text (English intermediate tasks before code generation).
    causal = any(t.kind == GENERATION for t in tasks) or is_causal(init, init_revision)
    text_to_text = [t for t in tasks if causal and t.kind != GENERATION]
    targets = [t.name for t in text_to_text if t.role == "target"]  # evaluated by their heads: need an encoder
    if targets:
        raise ConfigError(f"{init} is a causal LM, but target task(s) {', '.join(targets)} need an encoder")
    refused = [t.name for t in text_to_text if t.kind not in kinds.TEXT_TO_TEXT_KINDS]
    if refused:
        raise ConfigError(f"task(s) {', '.join(refused)} cannot train a causal LM (generation tasks and, as "
                          f"intermediate tasks, the text-to-text kinds {', '.join(kinds.TEXT_TO_TEXT_KINDS)} can)")
    with phase("load"):  # the initial model, its tokenizer, the data splits
        if causal:
            lm, tokenizer = load_causal_lm(str(init_path) if init_path else init, init_revision)
        else:
            encoder, tokenizer = load_encoder(str(init_path) if init_path else init, init_revision)
        specs = {t.name: {"kind": t.kind, "labels": list(dataset_labels(dataset_dir, t)), "metric": t.metric} for t in tasks}
        seed_everything(config.seed)  # the new heads' initial weights are part of the seeded run
        if causal:
            model = CausalLMModel(lm, {n: GENERATION for n in specs})
        else:
            model = build_model(encoder, {n: s for n, s in specs.items() if s["kind"] != RETRIEVAL})
        data = [(t, tuple(specs[t.name]["labels"]), read_split(dataset_dir, t.data_task, "train"),
                 read_split(dataset_dir, t.data_task, "validation")) for t in tasks]
        if text_to_text:  # the same rows as prompt → completion, trained like a generation task
            data = [(dataclasses.replace(t, kind=GENERATION), labels, kinds.as_generation(t, train), kinds.as_generation(t, dev))
                    if t in text_to_text else (t, labels, train, dev) for t, labels, train, dev in data]
        # The checkpoint key covers everything that changes the result, so a re-run resumes only the same training.
        init_key = dir_fingerprint(init_path) if init_path else [init, init_revision, resolve_pretrained(init)[0] if init == "tiny" else None]
        if init == TINY_CAUSAL:
            init_key.append(str(ensure_tiny_causal_model()))
        name = "+".join(t.name for t in tasks)
        key = fingerprint(name, [dir_fingerprint(Path(dataset_dir) / t.data_task) for t in tasks], init_key,
                          dataclasses.asdict(config))
        ckpt_dir = checkpoint_root() / f"{name}-{key}"
    with phase("compute"):
        metrics = train(model, tokenizer, data, config, ckpt_dir,
                        desc=name if condition in (None, name) else f"{name} (after {condition})")
    if not distributed.is_main():  # torchrun: rank 0 writes the model
        return metrics
    info = {"condition": condition, "seed": config.seed, "init": init if not init_path else "intermediate model",
            "heads": {n: s for n, s in specs.items() if s["kind"] != RETRIEVAL},
            "settings": dataclasses.asdict(config.settings())}
    contrastive = {n: s for n, s in specs.items() if s["kind"] == RETRIEVAL}
    if contrastive:  # trained into the encoder, no head to save
        info["contrastive"] = contrastive
    with phase("write"):
        with atomic_dir(out_dir) as tmp:
            if causal:
                save_causal_model_dir(tmp, model.lm.cpu(), tokenizer, info)
            else:
                save_model_dir(tmp, model.encoder.cpu(), tokenizer, model.cpu(), info)
            write_json(tmp / "training.json", {"tasks": [t.name for t in tasks], "condition": condition,
                                               "seed": config.seed, "config": dataclasses.asdict(config), **metrics})
            provenance.record(tmp)
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the output is the model now
    return metrics


def pass_through(init: str, out_dir: str | Path, condition: str, init_revision: str | None = None,
                 task: str | None = None, provenance: Provenance | None = None, seed: int | None = None) -> None:
    """The `none` baseline (the pretrained encoder unchanged), or a retrieval target (the intermediate encoder,
    evaluated without training). `seed`: the restart it belongs to (recorded, so each restart's model is its own)."""
    provenance = provenance or Provenance("pass-through", _model_inputs(init),
                                          {"init": str(init), "init_revision": init_revision, "condition": condition,
                                           "task": task})
    if not distributed.is_main():  # torchrun: rank 0 writes the model
        return
    init_path = _backbone_dir(init)
    info = {"condition": condition, "seed": seed, "heads": {}, "task": task}
    causal = is_causal(init, init_revision)  # a causal LM (`none` before a generation target) passes through as is
    with phase("load"):
        if causal:
            lm, tokenizer = load_causal_lm(init, init_revision)
        else:
            encoder, tokenizer = load_encoder(str(init_path) if init_path else init, init_revision)
    with phase("write"):
        with atomic_dir(out_dir) as tmp:
            if causal:
                save_causal_model_dir(tmp, lm, tokenizer, info)
            else:
                save_model_dir(tmp, encoder, tokenizer, info=info)
            write_json(tmp / "training.json", {"tasks": [task] if task else [], "condition": condition, "seed": seed,
                                               "init": init, "steps": 0})
            provenance.record(tmp)


def _backbone_dir(init: str | Path) -> Path | None:
    """A model directory's encoder/ (or a causal model's lm/); None when `init` is a pretrained name."""
    return Path(init) / "encoder" if (Path(init) / "encoder").is_dir() else lm_dir(init)


def _model_inputs(init: str | Path, **others) -> dict:
    """A step's parent artifacts: `others`, plus `init` when it is a model directory (not a pretrained name)."""
    return {**others, **({"intermediate_model": init} if _backbone_dir(init) is not None else {})}


def intermediate_finetune(condition: str, dataset_dir: str | Path, model_name: str, out_dir: str | Path,
                          config: TrainConfig, model_revision: str | None = None) -> dict:
    """Step 3: fine-tune the pretrained encoder on an English intermediate task, or several at once (`mnli+squad`:
    multi-task, shared encoder, one head each); `none` passes the pretrained encoder through."""
    tasks = condition_tasks(condition)
    provenance = Provenance("intermediate", {"dataset": dataset_dir},
                            {"condition": condition, "model_name": model_name, "model_revision": model_revision,
                             "train": dataclasses.asdict(config) if tasks else None})
    if not tasks:
        pass_through(model_name, out_dir, BASELINE, model_revision, provenance=provenance, seed=config.seed)
        return {"condition": BASELINE, "seed": config.seed, "steps": 0, "skipped": True}
    return finetune([t.name for t in tasks], dataset_dir, model_name, out_dir, config, model_revision, condition=condition,
                    provenance=provenance)


def target_finetune(task_name: str, dataset_dir: str | Path, intermediate_model: str | Path, out_dir: str | Path,
                    config: TrainConfig, condition: str | None = None) -> dict:
    """Step 4: the intermediate model's encoder (its heads dropped) fine-tuned on the target task. Retrieval targets
    are not trained: the intermediate encoder passes through to evaluation."""
    if not (Path(intermediate_model) / "encoder" / "config.json").exists() and lm_dir(intermediate_model) is None:
        raise ConfigError(f"{intermediate_model} is not a model directory (no encoder/config.json or lm/config.json)")
    trained = (read_json(Path(intermediate_model) / "training.json")
               if (Path(intermediate_model) / "training.json").exists() else {})
    if condition is None:
        condition = trained.get("condition")
    if trained.get("seed") is not None:  # one restart: the target model trains with its intermediate model's seed
        config = dataclasses.replace(config, seed=int(trained["seed"]))
    task = get_task(task_name)
    provenance = Provenance("target", {"dataset": dataset_dir, "intermediate_model": intermediate_model},
                            {"task": task.name, "condition": condition, "trained": task.trains,
                             "train": dataclasses.asdict(config) if task.trains else None})
    if not task.trains:
        pass_through(str(intermediate_model), out_dir, condition, task=task.name, provenance=provenance,
                     seed=trained.get("seed"))
        return {"task": task.name, "condition": condition, "seed": trained.get("seed"), "steps": 0, "skipped": True}
    return {"task": task.name, "condition": condition, "seed": config.seed,
            **finetune([task_name], dataset_dir, str(intermediate_model), out_dir, config, condition=condition,
                       provenance=provenance)}


