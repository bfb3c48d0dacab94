"""The result of a training run: the metrics dict `train` returns and finetune writes into training.json."""

from __future__ import annotations

import torch
from xstilts.train import distributed
from xstilts.train.speed import Throughput


def training_result(state: dict, total_steps: int, start_step: int, train_sets: list, probabilities,
                    has_dev: bool, clock: Throughput, dev: torch.device) -> dict:
    """The metrics of a finished loop (keys in this order: training.json is compared byte for byte)."""
    seconds = clock.seconds
    return {
        "steps": state["step"], "total_steps": total_steps, "resumed_from_step": start_step,
        "train_examples": {d.task: len(d.inputs) for d in train_sets},
        "sampling": {d.task: round(float(p), 6) for d, p in zip(train_sets, probabilities)},
        "final_loss": state["losses"][-1] if state["losses"] else None,
        "best_dev_score": state["best_score"] if has_dev else None, "best_step": state["best_step"],
        "stopped_early": state["stopped_early"], "dev_scores": state["dev_scores"], "losses": state["losses"],
        "train_seconds": round(seconds, 3),
        "samples_per_second": round(clock.samples / seconds, 2) if seconds else None,
        "tokens_per_second": round(clock.tokens / seconds, 1) if seconds else None, "device": dev.type,
        "world_size": distributed.world_size(),
        # Throughput without the warm-up steps (the first, and each new shape's first: compilation, graph capture).
        "warmup_seconds": round(clock.warmup_seconds, 3), "distinct_shapes": len(clock.shapes),
        "steady_samples_per_second": clock.steady_per_second(clock.samples, clock.warmup_samples, 2),
        "samples": clock.samples, "real_tokens": clock.tokens, "padded_tokens": clock.padded_tokens,
        "steady_tokens_per_second": clock.steady_per_second(clock.tokens, clock.warmup_tokens, 1),
    }
