"""Data-parallel training across the GPUs of one pod (or CPU processes): torchrun + DistributedDataParallel.

The training loop (xstilts/train/loop.py) is the same in one process and in N: under torchrun (WORLD_SIZE > 1) it
joins a process group, wraps the model in DDP and gives each rank a disjoint shard of every micro-batch. The
micro-batch size `batch_size` stays the *global* one, so 1 process with batch B computes the same optimizer
steps as N processes with about B/N rows each (the loss is weighted by each shard's share of the rows).

Two ways in:
- `torchrun --nproc_per_node N --no-python xstilts step intermediate ...` (any `xstilts step` that trains);
- `run_data_parallel(fn, nproc, **kwargs)` from Python: re-runs `fn(**kwargs)` under torch.distributed.run and
  returns rank 0's result (what a pipeline component with N GPUs calls).
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Callable
import numpy as np
import torch
import torch.distributed as dist
from xstilts.errors import ConfigError, XstiltsError
from xstilts.tasks.registry import RETRIEVAL


class DistributedLaunchError(XstiltsError):
    """A torchrun worker group failed."""


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or a plain single process): the one that writes checkpoints, outputs and progress bars."""
    return rank() == 0


def enabled() -> bool:
    return world_size() > 1


def device() -> torch.device:
    """This process's device: its own GPU (by LOCAL_RANK) under torchrun, else cuda:0 or the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank())


def init() -> None:
    """Join the torchrun process group (nccl on CUDA, gloo on CPU) once per process; a no-op in one process."""
    if not enabled() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=timedelta(minutes=30))


def shard(index: np.ndarray) -> tuple[np.ndarray, float]:
    """This rank's contiguous share of a global micro-batch, and its weight (its rows / all rows) for the loss.

    A rank whose share is empty (a last batch smaller than the world) gets the batch's first row with weight 0:
    every rank must run forward and backward for DDP's all-reduce.
    """
    if not enabled():
        return index, 1.0
    part = np.array_split(index, world_size())[rank()]
    if len(part) == 0:
        return index[:1], 0.0
    return part, len(part) / len(index)


def sum_across_ranks(value: torch.Tensor) -> torch.Tensor:
    if enabled():
        dist.all_reduce(value)
    return value


def refuse_contrastive(train_sets: list) -> None:
    """Contrastive (retrieval) training needs the whole batch in one process: raise ConfigError under torchrun."""
    if enabled() and any(d.kind == RETRIEVAL for d in train_sets):
        # In-batch negatives: a shard of the batch has fewer negatives, so the loss would change with the world.
        raise ConfigError("contrastive (retrieval) training uses in-batch negatives and cannot be split across "
                          "torchrun processes; run it in one process (nproc_per_node 1)")


def wrap(model: torch.nn.Module, dev: torch.device, multi_task: bool) -> torch.nn.Module:
    """The module to run forward/backward through: `model` in DDP under torchrun, else `model` itself."""
    if not enabled():
        return model
    # Multi-task: a micro-batch uses one head (the same on every rank), so the others get no gradient.
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                                     find_unused_parameters=multi_task)


def no_sync(net: torch.nn.Module, model: torch.nn.Module, last: bool):
    """DDP all-reduces gradients on the last micro-batch of an optimizer step only: skip it on the others."""
    return net.no_sync() if net is not model and not last else nullcontext()


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_data_parallel(fn: Callable, nproc_per_node: int = 0, **kwargs):
    """Call `fn(**kwargs)` in `nproc_per_node` torchrun workers (0: one per visible GPU) and return rank 0's result.

    With one process (or one GPU, or none) `fn` simply runs here. `fn` must be importable (a module-level
    function) and its arguments picklable; only rank 0 writes outputs, so the other ranks' results are dropped.
    """
    nproc = nproc_per_node or max(1, gpu_count())
    if nproc <= 1 or enabled():
        return fn(**kwargs)
    with tempfile.TemporaryDirectory(prefix="xstilts-ddp-") as tmp:
        spec, result = Path(tmp) / "call.pkl", Path(tmp) / "result.pkl"
        spec.write_bytes(pickle.dumps({"module": fn.__module__, "name": fn.__qualname__, "kwargs": kwargs,
                                       "result": str(result)}))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                   "-m", "xstilts.train.distributed", str(spec)]
        finished = subprocess.run(command, check=False)
        if finished.returncode != 0 or not result.exists():
            raise DistributedLaunchError(f"{fn.__module__}.{fn.__qualname__} failed under torchrun with "
                                         f"{nproc} processes (exit code {finished.returncode}); see the log above")
        return pickle.loads(result.read_bytes())


def _worker(spec_path: str) -> None:
    """One torchrun worker of `run_data_parallel`: run the call; rank 0 writes the result beside the spec."""
    spec = pickle.loads(Path(spec_path).read_bytes())
    fn = getattr(importlib.import_module(spec["module"]), spec["name"])
    try:
        result = fn(**spec["kwargs"])
        if is_main():
            Path(spec["result"]).write_bytes(pickle.dumps(result))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1])
