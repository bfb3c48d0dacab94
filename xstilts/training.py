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
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import distributed, kinds
from .data import read_split
from .errors import ConfigError
from .fsutil import atomic_dir, dir_fingerprint, fingerprint, read_json, write_json
from .kinds import Settings
from .lineage import Provenance
from .modeling import (MeanPooledEncoder, MultiTaskModel, build_model, load_encoder, resolve_pretrained,
                       save_model_dir)
from .tasks import BASELINE, GENERATION, RETRIEVAL, Task, condition_tasks, get_task
from .causal import (TINY_CAUSAL, CausalLMModel, ensure_tiny_causal_model, is_causal, lm_dir, load_causal_lm,
                     save_causal_model_dir)

KEEP_CHECKPOINTS = 2
SAMPLING = ("proportional", "temperature")
PADDING = ("dynamic", "buckets", "max_length")
COMPILE = ("off", "on", "cuda-graphs")
ATTENTION = ("sdpa", "eager")


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
    max_train_examples: int = 0  # > 0 subsamples each training split (fast trials)
    max_eval_examples: int = 0  # > 0 subsamples each dev split (dev evaluation of QA is slow on big splits)
    doc_stride: int = 128  # QA: overlap in tokens between the windows of a long context
    max_query_length: int = 64  # QA: questions are cut to this many tokens
    sampling: str = "proportional"  # multi-task: "proportional" to size, or "temperature" (p ∝ n^(1/T))
    temperature: float = 2.0
    retrieval_layer: int = 0  # contrastive (code search) training: the pooled layer, as at evaluation (0 = middle)
    # Speed and memory levers (`xstilts bench train` measures each). None changes the math beyond float rounding,
    # except token_budget, which changes how many rows a step sees.
    padding: str = "dynamic"  # "dynamic": to the batch's longest; "buckets": that, rounded up to bucket_multiple
    #                           (few distinct shapes, for compile); "max_length": always max_length (HF's default)
    bucket_multiple: int = 16
    token_budget: int = 0  # > 0: micro-batches of up to this many padded tokens instead of batch_size rows (opt-in)
    compile: str = "off"  # "on": torch.compile, one static graph per shape; "cuda-graphs": + CUDA graph replay
    attention: str = "sdpa"  # "sdpa" (fused attention kernels) or "eager" (the reference implementation)
    bf16: bool = True  # bf16 autocast on CUDA (always fp32 on CPU)
    fused_optimizer: bool = True  # the fused AdamW kernel on CUDA
    pin_memory: bool = True  # CUDA: batches built in pinned memory and copied without blocking the host
    log_every: int = 50  # optimizer steps between reading losses back to the host (each read waits for the GPU)
    grad_checkpointing: bool = False  # recompute activations in backward: less memory for long inputs, slower

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
        if config.sampling not in SAMPLING:
            raise ConfigError(f"training parameter 'sampling' must be one of {', '.join(SAMPLING)}, got {config.sampling!r}")
        if config.temperature <= 0:
            raise ConfigError(f"training parameter 'temperature' must be > 0, got {config.temperature}")
        for name, allowed in (("padding", PADDING), ("compile", COMPILE), ("attention", ATTENTION)):
            if getattr(config, name) not in allowed:
                raise ConfigError(f"training parameter {name!r} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(config, name)!r}")
        if config.bucket_multiple < 1 or config.log_every < 1 or config.token_budget < 0:
            raise ConfigError("training parameters 'bucket_multiple' and 'log_every' must be >= 1 and 'token_budget' "
                              f">= 0, got {config.bucket_multiple}, {config.log_every}, {config.token_budget}")
        if config.compile != "off" and config.padding == "dynamic":
            raise ConfigError("training parameter 'compile' needs padding 'buckets' or 'max_length': with dynamic "
                              "padding every new batch length compiles a new graph")
        if config.token_budget and config.token_budget < config.max_length:
            raise ConfigError(f"training parameter 'token_budget' ({config.token_budget}) must hold at least one "
                              f"sequence of max_length {config.max_length}")
        return config

    def padded_width(self, longest: int) -> int:
        """The padded length of a micro-batch whose longest sequence has `longest` tokens."""
        if self.padding == "max_length":
            return max(longest, self.max_length)
        if self.padding == "buckets":
            return max(longest, min(self.max_length, -(-longest // self.bucket_multiple) * self.bucket_multiple))
        return longest

    def settings(self) -> Settings:
        return Settings(max_length=self.max_length, doc_stride=self.doc_stride, max_query_length=self.max_query_length,
                        retrieval_layer=self.retrieval_layer)


def device() -> torch.device:
    return distributed.device()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def token_budget_batches(lengths: list[int], budget: int, width_of, seed: int, epoch: int) -> list[np.ndarray]:
    """Micro-batches of at most `budget` padded tokens (rows × padded width): examples sorted by length, ties in a
    random order per epoch, packed greedily from the longest; the batches are then shuffled. The sequence of widths
    and therefore the batch count is the same every epoch."""
    rng = np.random.default_rng([seed, epoch])
    lengths_arr = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    order = order[np.argsort(-lengths_arr[order], kind="stable")]
    batches, start = [], 0
    while start < len(order):
        rows = max(1, budget // width_of(int(lengths_arr[order[start]])))
        batches.append(order[start:start + rows])
        start += rows
    return [batches[i] for i in rng.permutation(len(batches))]


def epoch_batches(lengths: list[int], config: "TrainConfig", epoch: int) -> list[np.ndarray]:
    if config.token_budget:
        return token_budget_batches(lengths, config.token_budget, config.padded_width, config.seed, epoch)
    return length_grouped_batches(lengths, config.batch_size, config.seed, epoch)


def backbone(model) -> torch.nn.Module:
    """The pretrained transformer inside a training model: an encoder (heads model) or a causal LM."""
    return model.lm if isinstance(model, CausalLMModel) else model.encoder


def task_probabilities(sizes: list[int], sampling: str, temperature: float) -> np.ndarray:
    """Multi-task sampling: proportional to each task's number of batches, or flattened by a temperature."""
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    weights = sizes_arr if sampling == "proportional" else sizes_arr ** (1.0 / temperature)
    return weights / weights.sum()


def dev_score(model, data: list[tuple[Task, tuple[str, ...], pd.DataFrame]], tokenizer, settings: Settings,
              batch_size: int, dev: torch.device) -> dict[str, float]:
    """Each task's metric on its English dev split (the same decoding as the zero-shot evaluation)."""
    model.eval()
    scores = {}
    for task, labels, df in data:
        if task.kind == RETRIEVAL:  # contrastive intermediate: rank the dev split's partners (MRR)
            run = kinds.torch_runner(MeanPooledEncoder(model.encoder, settings.retrieval_layer), None, RETRIEVAL, dev)
            scores[task.name] = kinds.retrieval_dev_score(run, df, tokenizer, settings, batch_size)["score"]
            continue
        predictions = kinds.predict(kinds.torch_runner(model, task.name, task.kind, dev), task, labels, df, tokenizer,
                                    settings, batch_size)
        scores[task.name] = kinds.score(task, df, predictions, "en")["score"]
    model.train()
    return scores


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    found = [p for p in ckpt_dir.glob("step-*") if re.fullmatch(r"step-\d{8}", p.name)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def save_checkpoint(ckpt_dir: Path, step: int, model, optimizer, scheduler, state: dict, best_state: dict | None) -> None:
    """Everything needed to continue exactly: weights, optimizer, schedule, RNG, early-stopping state."""
    with atomic_dir(ckpt_dir / f"step-{step:08d}") as tmp:
        # A copy per tensor: tied weights (a causal LM's embeddings and output layer) share storage, which
        # safetensors refuses to write.
        save_file({k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()},
                  tmp / "model.safetensors")
        if best_state is not None:
            save_file(best_state, tmp / "best.safetensors")
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}, tmp / "trainer.pt")
        write_json(tmp / "state.json", state)
    for old in _checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def train(model: MultiTaskModel, tokenizer, tasks: list[tuple[Task, tuple[str, ...], pd.DataFrame, pd.DataFrame | None]],
          config: TrainConfig, ckpt_dir: Path, desc: str = "train") -> dict:
    """Train in place on one task or several (one head each, batches drawn from the tasks by `config.sampling`);
    on return the model holds the best dev weights (dev score: the mean over tasks). Returns training metrics.

    Under torchrun (see xstilts/distributed.py) every rank runs this same loop on its shard of each micro-batch;
    `config.batch_size` stays the global micro-batch, so the optimizer steps match one process's. Rank 0 alone
    writes checkpoints and shows progress; every rank evaluates on dev identically (same weights, same data)."""
    distributed.init()
    dev = device()
    main = distributed.is_main()
    seed_everything(config.seed)
    settings = config.settings()
    train_sets, dev_sets = [], []
    for task, labels, train_df, dev_df in tasks:
        if config.max_train_examples and len(train_df) > config.max_train_examples:
            train_df = train_df.sample(n=config.max_train_examples, random_state=config.seed).reset_index(drop=True)
        if dev_df is not None and config.max_eval_examples and len(dev_df) > config.max_eval_examples:
            dev_df = dev_df.sample(n=config.max_eval_examples, random_state=config.seed).reset_index(drop=True)
        train_sets.append(kinds.encode_train(task, labels, train_df, tokenizer, settings))
        if dev_df is not None:
            dev_sets.append((task, labels, dev_df))
    pad_id = tokenizer.pad_token_id
    micro_per_epoch = [len(epoch_batches(d.lengths, config, 0)) if config.token_budget
                       else math.ceil(len(d.inputs) / config.batch_size) for d in train_sets]
    # An epoch is one pass over every task's data in expectation (exactly, for a single task).
    steps_per_epoch = max(1, sum(micro_per_epoch) // config.grad_accum)
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * steps_per_epoch)
    eval_every = config.eval_every or steps_per_epoch
    probabilities = task_probabilities(micro_per_epoch, config.sampling, config.temperature)
    if distributed.enabled() and any(d.kind == RETRIEVAL for d in train_sets):
        # In-batch negatives: a shard of the batch has fewer negatives, so the loss would change with the world.
        raise ConfigError("contrastive (retrieval) training uses in-batch negatives and cannot be split across "
                          "torchrun processes; run it in one process (nproc_per_node 1)")

    cuda = dev.type == "cuda"
    body = backbone(model)
    body.set_attn_implementation(config.attention)
    if config.grad_checkpointing:
        body.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(dev).train()
    # Contrastive tasks have no head: both sides are embedded by the shared encoder, pooled as at evaluation.
    poolers = {d.task: MeanPooledEncoder(model.encoder, config.retrieval_layer) for d in train_sets
               if d.kind == RETRIEVAL}
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")  # the last: decoders' RMSNorms
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=cuda and config.fused_optimizer)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)

    state = {"step": 0, "best_score": -1.0, "best_step": 0, "bad_evals": 0, "losses": [], "dev_scores": [],
             "stopped_early": False, "micro_done": [0] * len(train_sets)}
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
        if main:
            tqdm.write(f"[{desc}] resumed from checkpoint {latest} (step {state['step']}/{total_steps})")
    net = model
    if distributed.enabled():
        # Multi-task: a micro-batch uses one head (the same on every rank), so the others get no gradient.
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if cuda else None,
                                                        find_unused_parameters=len(train_sets) > 1)

    def forward_loss(task: str, kind: str, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda and config.bf16):
            outputs = kinds.pair_embeddings(poolers[task], x, mask) if task in poolers else net(task, x, mask)
        return kinds.loss(kind, outputs, y, mask)

    if config.compile != "off":
        import torch._dynamo as dynamo

        # One static graph per (task, padded shape): buckets keep that number small; allow every bucket a graph.
        dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
        forward_loss = torch.compile(forward_loss, dynamic=False,
                                     mode="reduce-overhead" if config.compile == "cuda-graphs" and cuda else None)
    graph_replay = config.compile == "cuda-graphs" and cuda

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize(dev)

    started = time.perf_counter()
    start_step = state["step"]
    seen_tokens = seen_samples = padded_tokens = 0
    # Steps that run a shape for the first time (compilation, CUDA graph capture, autotuning) are timed apart, with
    # a device sync around each; they are few (one per bucket), so the other steps never wait for the GPU.
    shapes_seen: set = set()
    warmup_seconds, warmup_samples, warmup_tokens = 0.0, 0, 0
    pending_losses: list[torch.Tensor] = []  # on the device until the next read-back

    def read_losses() -> None:
        if pending_losses:
            state["losses"] += [round(v, 6) for v in torch.stack(pending_losses).tolist()]
            pending_losses.clear()
            progress.set_postfix(loss=f"{state['losses'][-1]:.4f}", refresh=False)

    progress = tqdm(total=total_steps, initial=state["step"], desc=desc, unit="step", dynamic_ncols=True,
                    mininterval=1.0, disable=os.environ.get("XSTILTS_NO_PROGRESS") == "1" or not main)
    batches: dict[int, tuple[int, list[np.ndarray]]] = {}  # task index → (epoch, its batches)
    while state["step"] < total_steps and not state["stopped_early"]:
        loss_sum = torch.zeros((), device=dev)
        step_started, step_samples, step_tokens, new_shape = time.perf_counter(), 0, 0, False
        for accum_index in range(config.grad_accum):
            micro = state["step"] * config.grad_accum + accum_index
            # The task of each micro-batch is a function of (seed, micro), so a resumed run draws the same sequence.
            t = 0 if len(train_sets) == 1 else int(np.random.default_rng([config.seed, micro]).choice(len(train_sets), p=probabilities))
            data = train_sets[t]
            epoch, position = divmod(state["micro_done"][t], micro_per_epoch[t])
            if batches.get(t, (None,))[0] != epoch:
                batches[t] = (epoch, epoch_batches(data.lengths, config, epoch))
            global_index = batches[t][1][position]
            state["micro_done"][t] += 1
            index, share = distributed.shard(global_index)
            width = config.padded_width(max(data.lengths[i] for i in global_index))
            x, mask, y = kinds.collate(data, index, pad_id, dev, width, pin=config.pin_memory)
            # Counted on the host from the lengths: no device sync.
            step_tokens += sum(data.lengths[i] for i in global_index)
            padded_tokens += width * len(global_index) * (x.shape[1] if data.kind in kinds.GROUPED else 1)
            step_samples += len(global_index)
            shape = (data.task, tuple(x.shape))
            if shape not in shapes_seen:
                shapes_seen.add(shape)
                new_shape = True
                synchronize()
            # DDP all-reduces gradients on the last micro-batch of the step only.
            last = accum_index == config.grad_accum - 1
            with net.no_sync() if net is not model and not last else nullcontext():
                if graph_replay:
                    torch.compiler.cudagraph_mark_step_begin()
                # This shard's share of the global micro-batch mean; DDP averages over ranks, hence × world.
                loss = forward_loss(data.task, data.kind, x, mask, y) * share / config.grad_accum
                (loss * distributed.world_size()).backward()
            loss_sum += loss.detach()
        distributed.sum_across_ranks(loss_sum)  # the global micro-batch loss, for the log
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        seen_samples += step_samples
        seen_tokens += step_tokens
        pending_losses.append(loss_sum)
        if new_shape or state["step"] == start_step + 1:  # the first step pays one-off start-up costs too
            synchronize()
            warmup_seconds += time.perf_counter() - step_started
            warmup_samples += step_samples
            warmup_tokens += step_tokens
        progress.update(1)

        evaluate = dev_sets and (state["step"] % eval_every == 0 or state["step"] == total_steps)
        checkpoint = (main and state["step"] % config.checkpoint_every == 0 and state["step"] < total_steps)
        if evaluate or checkpoint or state["step"] % config.log_every == 0:
            read_losses()
        if evaluate:
            per_task = dev_score(model, dev_sets, tokenizer, settings, config.batch_size * 2, dev)
            score = float(np.mean(list(per_task.values())))
            state["dev_scores"].append([state["step"], score, per_task])
            if score > state["best_score"]:
                state.update(best_score=score, best_step=state["step"], bad_evals=0)
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                state["bad_evals"] += 1
                if config.patience and state["bad_evals"] >= config.patience:
                    state["stopped_early"] = True
                    if main:
                        tqdm.write(f"[{desc}] early stop at step {state['step']}: the dev score has not improved on "
                                   f"{state['best_score']:.4f} (step {state['best_step']}) for {config.patience} "
                                   "evaluations")
        if checkpoint and not state["stopped_early"]:
            save_checkpoint(ckpt_dir, state["step"], model, optimizer, scheduler, state, best_state)
    read_losses()
    synchronize()
    progress.close()
    seconds = time.perf_counter() - started
    if config.grad_checkpointing:
        body.gradient_checkpointing_disable()
    if best_state is not None:
        model.load_state_dict(best_state)
    steady_seconds = seconds - warmup_seconds
    return {
        "steps": state["step"], "total_steps": total_steps, "resumed_from_step": start_step,
        "train_examples": {d.task: len(d.inputs) for d in train_sets},
        "sampling": {d.task: round(float(p), 6) for d, p in zip(train_sets, probabilities)},
        "final_loss": state["losses"][-1] if state["losses"] else None,
        "best_dev_score": state["best_score"] if dev_sets else None, "best_step": state["best_step"],
        "stopped_early": state["stopped_early"], "dev_scores": state["dev_scores"], "losses": state["losses"],
        "train_seconds": round(seconds, 3),
        "samples_per_second": round(seen_samples / seconds, 2) if seconds else None,
        "tokens_per_second": round(seen_tokens / seconds, 1) if seconds else None, "device": dev.type,
        "world_size": distributed.world_size(),
        # Throughput without the warm-up steps (the first, and each new shape's first: compilation, graph capture).
        "warmup_seconds": round(warmup_seconds, 3), "distinct_shapes": len(shapes_seen),
        "steady_samples_per_second": (round((seen_samples - warmup_samples) / steady_seconds, 2)
                                      if steady_seconds > 0 and seen_samples > warmup_samples else None),
        "samples": seen_samples, "real_tokens": seen_tokens, "padded_tokens": padded_tokens,
        "steady_tokens_per_second": (round((seen_tokens - warmup_tokens) / steady_seconds, 1)
                                     if steady_seconds > 0 and seen_samples > warmup_samples else None),
    }


def checkpoint_root() -> Path:
    """Where step checkpoints live: XSTILTS_CHECKPOINTS (the model-cache PVC on the cluster), else a local dir."""
    return Path(os.environ.get("XSTILTS_CHECKPOINTS", Path.home() / ".cache" / "xstilts" / "checkpoints"))


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
    metrics = train(model, tokenizer, data, config, ckpt_dir,
                    desc=name if condition in (None, name) else f"{name} (after {condition})")
    if not distributed.is_main():  # torchrun: rank 0 writes the model
        return metrics
    info = {"condition": condition, "init": init if not init_path else "intermediate model",
            "heads": {n: s for n, s in specs.items() if s["kind"] != RETRIEVAL},
            "settings": dataclasses.asdict(config.settings())}
    contrastive = {n: s for n, s in specs.items() if s["kind"] == RETRIEVAL}
    if contrastive:  # trained into the encoder, no head to save
        info["contrastive"] = contrastive
    with atomic_dir(out_dir) as tmp:
        if causal:
            save_causal_model_dir(tmp, model.lm.cpu(), tokenizer, info)
        else:
            save_model_dir(tmp, model.encoder.cpu(), tokenizer, model.cpu(), info)
        write_json(tmp / "training.json", {"tasks": [t.name for t in tasks], "condition": condition,
                                           "config": dataclasses.asdict(config), **metrics})
        provenance.record(tmp)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the output is the model now
    return metrics


def pass_through(init: str, out_dir: str | Path, condition: str, init_revision: str | None = None,
                 task: str | None = None, provenance: Provenance | None = None) -> None:
    """The `none` baseline (the pretrained encoder unchanged), or a retrieval target (the intermediate encoder,
    evaluated without training)."""
    provenance = provenance or Provenance("pass-through", _model_inputs(init),
                                          {"init": str(init), "init_revision": init_revision, "condition": condition,
                                           "task": task})
    if not distributed.is_main():  # torchrun: rank 0 writes the model
        return
    init_path = _backbone_dir(init)
    info = {"condition": condition, "heads": {}, "task": task}
    causal = is_causal(init, init_revision)  # a causal LM (`none` before a generation target) passes through as is
    if causal:
        lm, tokenizer = load_causal_lm(init, init_revision)
    else:
        encoder, tokenizer = load_encoder(str(init_path) if init_path else init, init_revision)
    with atomic_dir(out_dir) as tmp:
        if causal:
            save_causal_model_dir(tmp, lm, tokenizer, info)
        else:
            save_model_dir(tmp, encoder, tokenizer, info=info)
        write_json(tmp / "training.json", {"tasks": [task] if task else [], "condition": condition, "init": init,
                                           "steps": 0})
        provenance.record(tmp)


def _backbone_dir(init: str | Path) -> Path | None:
    """A model directory's encoder/ (or a causal model's lm/); None when `init` is a pretrained name."""
    return Path(init) / "encoder" if (Path(init) / "encoder").is_dir() else lm_dir(init)


def _model_inputs(init: str | Path, **others) -> dict:
    """A step's parent artifacts: `others`, plus `init` when it is a model directory (not a pretrained name)."""
    return {**others, **({"intermediate_model": init} if _backbone_dir(init) is not None else {})}


def intermediate_finetune(condition: str, dataset_dir: str | Path, model_name: str, out_dir: str | Path,
                          config: TrainConfig, model_revision: str | None = None) -> dict:
    """Step 2: fine-tune the pretrained encoder on an English intermediate task, or several at once (`mnli+squad`:
    multi-task, shared encoder, one head each); `none` passes the pretrained encoder through."""
    tasks = condition_tasks(condition)
    provenance = Provenance("intermediate", {"dataset": dataset_dir},
                            {"condition": condition, "model_name": model_name, "model_revision": model_revision,
                             "train": dataclasses.asdict(config) if tasks else None})
    if not tasks:
        pass_through(model_name, out_dir, BASELINE, model_revision, provenance=provenance)
        return {"condition": BASELINE, "steps": 0, "skipped": True}
    return finetune([t.name for t in tasks], dataset_dir, model_name, out_dir, config, model_revision, condition=condition,
                    provenance=provenance)


def target_finetune(task_name: str, dataset_dir: str | Path, intermediate_model: str | Path, out_dir: str | Path,
                    config: TrainConfig, condition: str | None = None) -> dict:
    """Step 3: the intermediate model's encoder (its heads dropped) fine-tuned on the target task. Retrieval targets
    are not trained: the intermediate encoder passes through to evaluation."""
    if not (Path(intermediate_model) / "encoder" / "config.json").exists() and lm_dir(intermediate_model) is None:
        raise ConfigError(f"{intermediate_model} is not a model directory (no encoder/config.json or lm/config.json)")
    if condition is None:
        condition = (read_json(Path(intermediate_model) / "training.json").get("condition")
                     if (Path(intermediate_model) / "training.json").exists() else None)
    task = get_task(task_name)
    provenance = Provenance("target", {"dataset": dataset_dir, "intermediate_model": intermediate_model},
                            {"task": task.name, "condition": condition, "trained": task.trains,
                             "train": dataclasses.asdict(config) if task.trains else None})
    if not task.trains:
        pass_through(str(intermediate_model), out_dir, condition, task=task.name, provenance=provenance)
        return {"task": task.name, "condition": condition, "steps": 0, "skipped": True}
    return {"task": task.name, "condition": condition,
            **finetune([task_name], dataset_dir, str(intermediate_model), out_dir, config, condition=condition,
                       provenance=provenance)}


def scalar_metrics(result: dict) -> dict[str, float]:
    """The numeric, single-valued entries of a training result (what a KFP Metrics artifact shows); booleans as 0/1."""
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
