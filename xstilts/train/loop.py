"""Fine-tuning: one readable loop (nanoGPT-style), used for intermediate and target tasks alike.

bf16 autocast on CUDA (fp32 on CPU), dynamic padding over length-grouped batches, AdamW (fused on CUDA) with
linear warm-up and decay, gradient accumulation, early stopping on the English dev split, fixed seeds, a
progress bar, and a checkpoint every N optimizer steps written atomically. A re-run of the same step (same
task, data, initial model and settings) resumes from its latest checkpoint: the data order is a function of
(seed, epoch), so the position in the data follows from the step count.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm
from xstilts import env
from xstilts.train import distributed
from xstilts.kinds import base as kinds
from xstilts.errors import ConfigError
from xstilts.io import read_json
from xstilts.config import Settings
from xstilts.models.encoder import (MeanPooledEncoder, MultiTaskModel)
from xstilts.tasks.registry import RETRIEVAL, Task
from xstilts.models.causal import CausalLMModel
from xstilts.config import TrainConfig
from xstilts.train.batching import epoch_batches
from xstilts.train.checkpoint import _checkpoints, save_checkpoint


def device() -> torch.device:
    return distributed.device()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def train(model: MultiTaskModel, tokenizer, tasks: list[tuple[Task, tuple[str, ...], pd.DataFrame, pd.DataFrame | None]],
          config: TrainConfig, ckpt_dir: Path, desc: str = "train") -> dict:
    """Train in place on one task or several (one head each, batches drawn from the tasks by `config.sampling`);
    on return the model holds the best dev weights (dev score: the mean over tasks). Returns training metrics.

    Under torchrun (see distributed.py) every rank runs this same loop on its shard of each micro-batch;
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
                    mininterval=1.0, disable=not env.progress_enabled() or not main)
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
