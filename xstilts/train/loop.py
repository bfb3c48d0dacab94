"""Fine-tuning: one readable loop (nanoGPT-style), used for intermediate and target tasks alike.

bf16 autocast on CUDA (fp32 on CPU), dynamic padding over length-grouped batches, AdamW (fused on CUDA) with
linear warm-up and decay, gradient accumulation, early stopping on the English dev split, fixed seeds, a
progress bar, and a checkpoint every N optimizer steps written atomically. A re-run of the same step (same
task, data, initial model and settings) resumes from its latest checkpoint: the data order is a function of
(seed, epoch), so the position in the data follows from the step count.

`train` is the loop; its helpers sit beside it here (data encoding, optimizer, the forward/loss function, dev
scoring) and in the train/ package: batching (which batch and task comes next), checkpoint (save, resume),
distributed (DDP), speed (compilation, warm-up and throughput accounting), result (the returned metrics).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm
from xstilts import env
from xstilts.progress import Progress
from xstilts.train import distributed
from xstilts.kinds import base as kinds
from xstilts.config import Settings, TrainConfig
from xstilts.models.encoder import MeanPooledEncoder, MultiTaskModel
from xstilts.tasks.registry import RETRIEVAL, Task
from xstilts.models.causal import CausalLMModel
from xstilts.train.batching import TaskSampler
from xstilts.train.checkpoint import resume_latest, save_checkpoint
from xstilts.train.result import training_result
from xstilts.train.speed import Throughput, compile_forward, replays_cuda_graphs


def device() -> torch.device:
    return distributed.device()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def backbone(model) -> torch.nn.Module:
    """The pretrained transformer inside a training model: an encoder (heads model) or a causal LM."""
    return model.lm if isinstance(model, CausalLMModel) else model.encoder


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


def encode_tasks(tasks: list, tokenizer, config: TrainConfig, settings: Settings) -> tuple[list, list]:
    """Each task's encoded train set (at most `max_train_examples`, sampled by the seed) and its dev rows (at most
    `max_eval_examples`), the latter only for tasks that have a dev split."""
    train_sets, dev_sets = [], []
    for task, labels, train_df, dev_df in tasks:
        if config.max_train_examples and len(train_df) > config.max_train_examples:
            train_df = train_df.sample(n=config.max_train_examples, random_state=config.seed).reset_index(drop=True)
        if dev_df is not None and config.max_eval_examples and len(dev_df) > config.max_eval_examples:
            dev_df = dev_df.sample(n=config.max_eval_examples, random_state=config.seed).reset_index(drop=True)
        train_sets.append(kinds.encode_train(task, labels, train_df, tokenizer, settings))
        if dev_df is not None:
            dev_sets.append((task, labels, dev_df))
    return train_sets, dev_sets


def build_optimizer(model: torch.nn.Module, config: TrainConfig, total_steps: int, cuda: bool):
    """AdamW (no weight decay on biases and norms; fused on CUDA if asked) with linear warm-up and decay."""
    from transformers import get_linear_schedule_with_warmup

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")  # the last: decoders' RMSNorms
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, fused=cuda and config.fused_optimizer)
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)


def make_forward_loss(net: torch.nn.Module, poolers: dict, dev: torch.device, config: TrainConfig):
    """One micro-batch's loss: the task's head (or, for a contrastive task, its pooled pair embeddings) under bf16
    autocast on CUDA. A plain function of tensors, so torch.compile can take it whole."""
    def forward_loss(task: str, kind: str, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda" and config.bf16):
            outputs = kinds.pair_embeddings(poolers[task], x, mask) if task in poolers else net(task, x, mask)
        return kinds.loss(kind, outputs, y, mask)

    return forward_loss


def record_dev_score(state: dict, per_task: dict[str, float], config: TrainConfig, desc: str, main: bool) -> bool:
    """Log an evaluation in `state` (the mean over tasks), count evaluations without improvement towards early
    stopping; True when the score is a new best."""
    score = float(np.mean(list(per_task.values())))
    state["dev_scores"].append([state["step"], score, per_task])
    if score > state["best_score"]:
        state.update(best_score=score, best_step=state["step"], bad_evals=0)
        return True
    state["bad_evals"] += 1
    if config.patience and state["bad_evals"] >= config.patience:
        state["stopped_early"] = True
        if main:
            tqdm.write(f"[{desc}] early stop at step {state['step']}: the dev score has not improved on "
                       f"{state['best_score']:.4f} (step {state['best_step']}) for {config.patience} evaluations")
    return False


def read_losses(pending: list[torch.Tensor], state: dict, progress) -> None:
    """Move the step losses still on the device into `state` (one read-back, one sync, for many steps)."""
    if pending:
        state["losses"] += [round(v, 6) for v in torch.stack(pending).tolist()]
        pending.clear()
        progress.set_postfix(loss=f"{state['losses'][-1]:.4f}", refresh=False)


def train(model: MultiTaskModel, tokenizer, tasks: list[tuple[Task, tuple[str, ...], pd.DataFrame, pd.DataFrame | None]],
          config: TrainConfig, ckpt_dir: Path, desc: str = "train") -> dict:
    """Train in place on one task or several (one head each, batches drawn from the tasks by `config.sampling`);
    on return the model holds the best dev weights (dev score: the mean over tasks). Returns training metrics.

    Under torchrun (see xstilts/train/distributed.py) every rank runs this same loop on its shard of each
    micro-batch; `config.batch_size` stays the global micro-batch, so the optimizer steps match one process's. Rank 0
    alone writes checkpoints and shows progress; every rank evaluates on dev identically (same weights, same data)."""
    distributed.init()
    dev, main = device(), distributed.is_main()
    cuda = dev.type == "cuda"
    seed_everything(config.seed)
    settings = config.settings()
    train_sets, dev_sets = encode_tasks(tasks, tokenizer, config, settings)
    sampler = TaskSampler(train_sets, config)
    # An epoch is one pass over every task's data in expectation (exactly, for a single task).
    steps_per_epoch = max(1, sum(sampler.per_epoch) // config.grad_accum)
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(config.epochs * steps_per_epoch)
    eval_every = config.eval_every or steps_per_epoch
    distributed.refuse_contrastive(train_sets)

    body = backbone(model)
    body.set_attn_implementation(config.attention)
    if config.grad_checkpointing:
        body.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(dev).train()
    # Contrastive tasks have no head: both sides are embedded by the shared encoder, pooled as at evaluation.
    poolers = {d.task: MeanPooledEncoder(model.encoder, config.retrieval_layer) for d in train_sets
               if d.kind == RETRIEVAL}
    optimizer, scheduler = build_optimizer(model, config, total_steps, cuda)
    state = {"step": 0, "best_score": -1.0, "best_step": 0, "bad_evals": 0, "losses": [], "dev_scores": [],
             "stopped_early": False, "micro_done": [0] * len(train_sets)}
    best_state: dict | None = None
    resumed = resume_latest(ckpt_dir, model, optimizer, scheduler)
    if resumed:
        latest, state, best_state = resumed
        if main:
            tqdm.write(f"[{desc}] resumed from checkpoint {latest} (step {state['step']}/{total_steps})")
    net = distributed.wrap(model, dev, multi_task=len(train_sets) > 1)
    forward_loss = compile_forward(make_forward_loss(net, poolers, dev, config), config, cuda)
    graph_replay = replays_cuda_graphs(config, cuda)

    start_step = state["step"]
    clock = Throughput(dev, start_step)
    pending_losses: list[torch.Tensor] = []  # on the device until the next read-back
    progress = tqdm(total=total_steps, initial=state["step"], desc=desc, unit="step", dynamic_ncols=True,
                    mininterval=1.0, disable=not env.progress_enabled() or not main)
    position = Progress("train", total_steps, n=state["step"], enabled=None if main else False)
    while state["step"] < total_steps and not state["stopped_early"]:
        loss_sum = torch.zeros((), device=dev)
        clock.begin_step()
        for accum_index in range(config.grad_accum):
            data, global_index = sampler.draw(state["step"] * config.grad_accum + accum_index, state["micro_done"])
            index, share = distributed.shard(global_index)
            width = config.padded_width(max(data.lengths[i] for i in global_index))
            x, mask, y = kinds.collate(data, index, tokenizer.pad_token_id, dev, width, pin=config.pin_memory)
            clock.micro_batch(data, global_index, width, x)
            with distributed.no_sync(net, model, last=accum_index == config.grad_accum - 1):
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
        pending_losses.append(loss_sum)
        clock.end_step(state["step"])
        progress.update(1)
        position.update(state["step"])

        evaluate = dev_sets and (state["step"] % eval_every == 0 or state["step"] == total_steps)
        checkpoint = main and state["step"] % config.checkpoint_every == 0 and state["step"] < total_steps
        if evaluate or checkpoint or state["step"] % config.log_every == 0:
            read_losses(pending_losses, state, progress)
        if evaluate:
            per_task = dev_score(model, dev_sets, tokenizer, settings, config.batch_size * 2, dev)
            if record_dev_score(state, per_task, config, desc, main):
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if checkpoint and not state["stopped_early"]:
            save_checkpoint(ckpt_dir, state["step"], model, optimizer, scheduler, state, best_state)
    read_losses(pending_losses, state, progress)
    clock.synchronize()
    progress.close()
    position.close()
    clock.stop()
    if config.grad_checkpointing:
        body.gradient_checkpointing_disable()
    if best_state is not None:
        model.load_state_dict(best_state)
    return training_result(state, total_steps, start_step, train_sets, sampler.probabilities, bool(dev_sets), clock, dev)
