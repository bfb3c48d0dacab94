"""The speed levers the loop applies (torch.compile, CUDA graphs) and the throughput it reports.

Steps that run a shape for the first time (compilation, CUDA graph capture, autotuning) are timed apart as
warm-up, with a device sync around each; they are few (one per bucket), so the other steps never wait for the
GPU and the steady-state throughput excludes one-off costs.
"""

from __future__ import annotations

import time
from typing import Callable
import numpy as np
import torch
from xstilts.config import TrainConfig
from xstilts.kinds import base as kinds


def replays_cuda_graphs(config: TrainConfig, cuda: bool) -> bool:
    """Whether the compiled step replays CUDA graphs (each step must then be marked for torch.compile)."""
    return config.compile == "cuda-graphs" and cuda


def compile_forward(forward_loss: Callable, config: TrainConfig, cuda: bool) -> Callable:
    """`forward_loss` compiled as `config.compile` asks (`off`: unchanged)."""
    if config.compile == "off":
        return forward_loss
    import torch._dynamo as dynamo

    # One static graph per (task, padded shape): buckets keep that number small; allow every bucket a graph.
    dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
    return torch.compile(forward_loss, dynamic=False,
                         mode="reduce-overhead" if replays_cuda_graphs(config, cuda) else None)


class Throughput:
    """Samples and tokens seen, and the wall time, split into warm-up steps (the run's first step and each new
    shape's first step) and steady steps. Counts come from the host-side lengths: no device sync."""

    def __init__(self, dev: torch.device, start_step: int):
        self.dev, self.start_step = dev, start_step
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.samples = self.tokens = self.padded_tokens = 0
        self.shapes: set = set()
        self.warmup_seconds, self.warmup_samples, self.warmup_tokens = 0.0, 0, 0

    def synchronize(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)

    def begin_step(self) -> None:
        self.step_started, self.step_samples, self.step_tokens, self.new_shape = time.perf_counter(), 0, 0, False

    def micro_batch(self, data, global_index: np.ndarray, width: int, x: torch.Tensor) -> None:
        """Count one global micro-batch (padded to `width`; `x` is this rank's collated input)."""
        self.step_tokens += sum(data.lengths[i] for i in global_index)
        self.padded_tokens += width * len(global_index) * (x.shape[1] if data.kind in kinds.GROUPED else 1)
        self.step_samples += len(global_index)
        shape = (data.task, tuple(x.shape))
        if shape not in self.shapes:
            self.shapes.add(shape)
            self.new_shape = True
            self.synchronize()

    def end_step(self, step: int) -> None:
        """After optimizer step number `step` (1-based): add its counts, and its time too if it was a warm-up."""
        self.samples += self.step_samples
        self.tokens += self.step_tokens
        if self.new_shape or step == self.start_step + 1:  # the first step pays one-off start-up costs too
            self.synchronize()
            self.warmup_seconds += time.perf_counter() - self.step_started
            self.warmup_samples += self.step_samples
            self.warmup_tokens += self.step_tokens

    def stop(self) -> float:
        """The seconds since the loop started (call after the final sync)."""
        self.seconds = time.perf_counter() - self.started
        return self.seconds

    def steady_per_second(self, count: int, warmup_count: int, digits: int) -> float | None:
        """A rate over the steady steps only; None when every step was a warm-up."""
        steady_seconds = self.seconds - self.warmup_seconds
        if steady_seconds > 0 and self.samples > self.warmup_samples:
            return round((count - warmup_count) / steady_seconds, digits)
        return None
