"""Fine-tuning: one readable loop (nanoGPT-style), used for intermediate and target tasks alike.

bf16 autocast on CUDA (fp32 on CPU), dynamic padding over length-grouped batches, AdamW (fused on CUDA) with
linear warm-up and decay, gradient accumulation, early stopping on the English dev split, fixed seeds, a
progress bar, and a checkpoint every N optimizer steps written atomically. A re-run of the same step (same
task, data, initial model and settings) resumes from its latest checkpoint: the data order is a function of
(seed, epoch), so the position in the data follows from the step count.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .data import read_split
from .errors import ConfigError
from .fsutil import atomic_dir, dir_fingerprint, fingerprint, read_json, write_json
from .modeling import EncoderWithHead, load_encoder, new_classifier, resolve_pretrained, save_model_dir
from .tasks import Task, get_task

KEEP_CHECKPOINTS = 2


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 3.0
    max_steps: int = 0  # > 0 caps optimizer steps
    batch_size: int = 32  # per micro-batch
    grad_accum: int = 1
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    eval_every: int = 0  # optimizer steps between dev evaluations; 0 = once per epoch
    patience: int = 3  # dev evaluations without improvement before stopping; 0 = never stop early
    checkpoint_every: int = 500
    seed: int = 1
    max_train_examples: int = 0  # > 0 subsamples the training split (fast trials)

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainConfig":
        values = dict(values or {})
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"unknown training parameter(s) {', '.join(unknown)}; known: {', '.join(names)}")
        cast = {}
        for key, value in values.items():
            default = getattr(cls, key)
            try:
                cast[key] = type(default)(value)
            except (TypeError, ValueError):
                raise ConfigError(f"training parameter {key!r} must be {type(default).__name__}, got {value!r}") from None
        config = cls(**cast)
        if config.batch_size < 1 or config.grad_accum < 1 or config.learning_rate <= 0 or config.max_length < 8:
            raise ConfigError(f"invalid training parameters: {config}")
        if config.epochs <= 0 and config.max_steps <= 0:
            raise ConfigError("training needs epochs > 0 or max_steps > 0")
        return config


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def encode(df: pd.DataFrame, tokenizer, task: Task, max_length: int) -> tuple[list[list[int]], np.ndarray]:
    label_ids = {label: i for i, label in enumerate(task.labels)}
    texts_b = df["text_b"].tolist() if task.is_pair else None
    enc = tokenizer(df["text_a"].tolist(), texts_b, truncation=True, max_length=max_length)
    return enc["input_ids"], np.array([label_ids[label] for label in df["label"]], dtype=np.int64)


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffle, then sort by length inside mega-batches of 50 batches, so padding is small but order is random."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lengths_arr = np.asarray(lengths)
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = order[start:start + mega]
        chunk = chunk[np.argsort(-lengths_arr[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(ids: list[list[int]], labels: np.ndarray, index: np.ndarray, pad_id: int, dev: torch.device):
    """Pad a batch to its own longest sequence (dynamic padding)."""
    width = max(len(ids[i]) for i in index)
    input_ids = torch.full((len(index), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(index), width), dtype=torch.long)
    for row, i in enumerate(index):
        input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
        mask[row, :len(ids[i])] = 1
    y = torch.as_tensor(labels[index])
    pin = dev.type == "cuda"
    if pin:
        input_ids, mask, y = input_ids.pin_memory(), mask.pin_memory(), y.pin_memory()
    return input_ids.to(dev, non_blocking=pin), mask.to(dev, non_blocking=pin), y.to(dev, non_blocking=pin)


@torch.no_grad()
def accuracy(model: EncoderWithHead, ids, labels, pad_id: int, batch_size: int, dev: torch.device) -> float:
    model.eval()
    correct = 0
    order = np.argsort([len(x) for x in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        x, mask, y = collate(ids, labels, order[start:start + batch_size], pad_id, dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            logits = model(x, mask)
        correct += (logits.argmax(-1) == y).sum().item()
    model.train()
    return correct / len(ids)


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    found = [p for p in ckpt_dir.glob("step-*") if re.fullmatch(r"step-\d{8}", p.name)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def save_checkpoint(ckpt_dir: Path, step: int, model, optimizer, scheduler, state: dict, best_state: dict | None) -> None:
    """Everything needed to continue exactly: weights, optimizer, schedule, RNG, early-stopping state."""
    with atomic_dir(ckpt_dir / f"step-{step:08d}") as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
        if best_state is not None:
            save_file(best_state, tmp / "best.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "trainer.pt")
        write_json(tmp / "state.json", state)
    for old in _checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def train_classifier(model: EncoderWithHead, tokenizer, task: Task, train_df: pd.DataFrame, dev_df: pd.DataFrame | None,
                     config: TrainConfig, ckpt_dir: Path, desc: str = "train") -> dict:
    """Train in place; on return the model holds the best dev weights. Returns training metrics."""
    dev = device()
    seed_everything(config.seed)
    if config.max_train_examples and len(train_df) > config.max_train_examples:
        train_df = train_df.sample(n=config.max_train_examples, random_state=config.seed).reset_index(drop=True)
    ids, labels = encode(train_df, tokenizer, task, config.max_length)
    dev_ids, dev_labels = encode(dev_df, tokenizer, task, config.max_length) if dev_df is not None else (None, None)
    pad_id = tokenizer.pad_token_id
    lengths = [len(x) for x in ids]
    micro_per_epoch = math.ceil(len(ids) / config.batch_size)
    steps_per_epoch = max(1, micro_per_epoch // config.grad_accum)
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * steps_per_epoch)
    eval_every = config.eval_every or steps_per_epoch

    model.to(dev).train()
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=dev.type == "cuda")
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)

    state = {"step": 0, "best_score": -1.0, "best_step": 0, "bad_evals": 0, "losses": [], "dev_scores": [],
             "stopped_early": False}
    best_state: dict | None = None
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    existing = _checkpoints(ckpt_dir)
    if existing:
        latest = existing[-1]
        model.load_state_dict(load_file(latest / "model.safetensors"))
        trainer_state = torch.load(latest / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(trainer_state["optimizer"])
        scheduler.load_state_dict(trainer_state["scheduler"])
        torch.set_rng_state(trainer_state["torch_rng"])
        if trainer_state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(trainer_state["cuda_rng"])
        state = read_json(latest / "state.json")
        if (latest / "best.safetensors").exists():
            best_state = load_file(latest / "best.safetensors")
        tqdm.write(f"[{desc}] resumed from checkpoint {latest} (step {state['step']}/{total_steps})")

    started = time.perf_counter()
    start_step = state["step"]
    seen_tokens = 0
    progress = tqdm(total=total_steps, initial=state["step"], desc=desc, unit="step", dynamic_ncols=True,
                    mininterval=1.0, disable=os.environ.get("XSTILTS_NO_PROGRESS") == "1")
    batches, batches_epoch = [], -1
    while state["step"] < total_steps and not state["stopped_early"]:
        loss_sum = torch.zeros((), device=dev)
        for accum_index in range(config.grad_accum):
            micro = state["step"] * config.grad_accum + accum_index
            epoch, position = divmod(micro, micro_per_epoch)
            if epoch != batches_epoch:
                batches, batches_epoch = length_grouped_batches(lengths, config.batch_size, config.seed, epoch), epoch
            x, mask, y = collate(ids, labels, batches[position], pad_id, dev)
            seen_tokens += sum(lengths[i] for i in batches[position])  # counted on the host: no device sync
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = model(x, mask)
            loss = F.cross_entropy(logits.float(), y) / config.grad_accum
            loss.backward()
            loss_sum += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["losses"].append(round(float(loss_sum), 6))
        progress.update(1)
        progress.set_postfix(loss=f"{state['losses'][-1]:.4f}", refresh=False)

        if dev_ids is not None and (state["step"] % eval_every == 0 or state["step"] == total_steps):
            score = accuracy(model, dev_ids, dev_labels, pad_id, config.batch_size * 2, dev)
            state["dev_scores"].append([state["step"], score])
            if score > state["best_score"]:
                state.update(best_score=score, best_step=state["step"], bad_evals=0)
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                state["bad_evals"] += 1
                if config.patience and state["bad_evals"] >= config.patience:
                    state["stopped_early"] = True
                    tqdm.write(f"[{desc}] early stop at step {state['step']}: dev accuracy has not improved on "
                               f"{state['best_score']:.4f} (step {state['best_step']}) for {config.patience} evaluations")
        if state["step"] % config.checkpoint_every == 0 and state["step"] < total_steps and not state["stopped_early"]:
            save_checkpoint(ckpt_dir, state["step"], model, optimizer, scheduler, state, best_state)
    progress.close()
    seconds = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)
    steps_run = state["step"] - start_step
    return {
        "steps": state["step"], "total_steps": total_steps, "resumed_from_step": start_step,
        "train_examples": len(ids), "final_loss": state["losses"][-1] if state["losses"] else None,
        "best_dev_accuracy": state["best_score"] if dev_ids is not None else None, "best_step": state["best_step"],
        "stopped_early": state["stopped_early"], "dev_scores": state["dev_scores"], "losses": state["losses"],
        "train_seconds": round(seconds, 3),
        "samples_per_second": round(steps_run * config.batch_size * config.grad_accum / seconds, 2) if seconds else None,
        "tokens_per_second": round(seen_tokens / seconds, 1) if seconds else None, "device": dev.type,
    }


def checkpoint_root() -> Path:
    """Where step checkpoints live: XSTILTS_CHECKPOINTS (the model-cache PVC on the cluster), else a local dir."""
    return Path(os.environ.get("XSTILTS_CHECKPOINTS", Path.home() / ".cache" / "xstilts" / "checkpoints"))


def finetune(task_name: str, dataset_dir: str | Path, init: str, out_dir: str | Path, config: TrainConfig,
             init_revision: str | None = None, condition: str | None = None) -> dict:
    """Fine-tune `init` (a pretrained name, `tiny`, or a model directory whose encoder/ is used) on a task's
    English train split, early-stopping on its validation split; write a model directory to out_dir."""
    task = get_task(task_name)
    train_df = read_split(dataset_dir, task.name, "train")
    dev_df = read_split(dataset_dir, task.name, "validation")
    init_path = Path(init) / "encoder" if (Path(init) / "encoder").is_dir() else None
    encoder, tokenizer = load_encoder(str(init_path) if init_path else init, init_revision)
    seed_everything(config.seed)  # the new head's initial weights are part of the seeded run
    model = new_classifier(encoder, len(task.labels))
    # The checkpoint key covers everything that changes the result, so a re-run resumes only the same training.
    init_key = dir_fingerprint(init_path) if init_path else [init, init_revision, resolve_pretrained(init)[0] if init == "tiny" else None]
    key = fingerprint(task.name, dir_fingerprint(Path(dataset_dir) / task.name), init_key, dataclasses.asdict(config))
    ckpt_dir = checkpoint_root() / f"{task.name}-{key}"
    metrics = train_classifier(model, tokenizer, task, train_df, dev_df, config, ckpt_dir,
                               desc=task.name if condition in (None, task.name) else f"{task.name} (after {condition})")
    head_info = {"task": task.name, "kind": task.kind, "labels": list(task.labels), "metric": task.metric,
                 "init": init if not init_path else "intermediate model", "condition": condition}
    with atomic_dir(out_dir) as tmp:
        save_model_dir(tmp, model.encoder.cpu(), tokenizer, model.head.cpu(), head_info)
        write_json(tmp / "training.json", {"task": task.name, "condition": condition, "config": dataclasses.asdict(config),
                                           **metrics})
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the output is the model now
    return metrics


def save_pretrained_as_model(init: str, out_dir: str | Path, init_revision: str | None = None) -> None:
    """The `none` baseline: the pretrained encoder unchanged, no head."""
    encoder, tokenizer = load_encoder(init, init_revision)
    with atomic_dir(out_dir) as tmp:
        save_model_dir(tmp, encoder, tokenizer)
        write_json(tmp / "training.json", {"task": None, "condition": "none", "init": init, "steps": 0})


BASELINE = "none"


def intermediate_finetune(condition: str, dataset_dir: str | Path, model_name: str, out_dir: str | Path,
                          config: TrainConfig, model_revision: str | None = None) -> dict:
    """Step 2: fine-tune the pretrained encoder on an English intermediate task; `none` passes it through."""
    if condition == BASELINE:
        save_pretrained_as_model(model_name, out_dir, model_revision)
        return {"condition": BASELINE, "steps": 0, "skipped": True}
    return finetune(condition, dataset_dir, model_name, out_dir, config, model_revision, condition=condition)


def target_finetune(task_name: str, dataset_dir: str | Path, intermediate_model: str | Path, out_dir: str | Path,
                    config: TrainConfig, condition: str | None = None) -> dict:
    """Step 3: the intermediate model's encoder (its head dropped) fine-tuned on the target task."""
    if not (Path(intermediate_model) / "encoder" / "config.json").exists():
        raise ConfigError(f"{intermediate_model} is not a model directory (no encoder/config.json)")
    if condition is None:
        condition = (read_json(Path(intermediate_model) / "training.json").get("condition")
                     if (Path(intermediate_model) / "training.json").exists() else None)
    return finetune(task_name, dataset_dir, str(intermediate_model), out_dir, config, condition=condition)


def scalar_metrics(result: dict) -> dict[str, float]:
    """The numeric, single-valued entries of a training result (what a KFP Metrics artifact shows); booleans as 0/1."""
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
