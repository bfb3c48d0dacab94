"""Step checkpoints: where they live, writing one (and pruning old ones), and resuming from the latest.

A checkpoint holds everything needed to continue exactly as if never interrupted: weights, optimizer, schedule,
RNG states, and the loop's state (step, losses, early stopping, each task's position in its data).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from xstilts import env
from xstilts.io import atomic_dir, read_json, write_json
from xstilts.config import KEEP_CHECKPOINTS


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """The complete checkpoints in `ckpt_dir`, oldest first (half-written ones never get a step-NNNNNNNN name)."""
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
    for old in list_checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def resume_latest(ckpt_dir: Path, model, optimizer, scheduler) -> tuple[Path, dict, dict | None] | None:
    """Load the latest checkpoint in `ckpt_dir` (created if missing) into model, optimizer, scheduler and the RNGs;
    return (its path, the loop state, the best weights so far or None), or None when there is no checkpoint."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    existing = list_checkpoints(ckpt_dir)
    if not existing:
        return None
    latest = existing[-1]
    model.load_state_dict(load_file(latest / "model.safetensors"))
    trainer_state = torch.load(latest / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(trainer_state["optimizer"])
    scheduler.load_state_dict(trainer_state["scheduler"])
    torch.set_rng_state(trainer_state["torch_rng"])
    if trainer_state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(trainer_state["cuda_rng"])
    state = read_json(latest / "state.json")
    best_state = load_file(latest / "best.safetensors") if (latest / "best.safetensors").exists() else None
    return latest, state, best_state


def checkpoint_root() -> Path:
    """Where step checkpoints live: XSTILTS_CHECKPOINTS (the model-cache PVC on the cluster), else a local dir."""
    return env.checkpoints_dir()
