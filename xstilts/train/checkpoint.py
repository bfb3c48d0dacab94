"""TODO docstring (training)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
import torch
from safetensors.torch import save_file
from xstilts import env
from xstilts.io import atomic_dir, write_json
from xstilts.config import KEEP_CHECKPOINTS


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


def checkpoint_root() -> Path:
    """Where step checkpoints live: XSTILTS_CHECKPOINTS (the model-cache PVC on the cluster), else a local dir."""
    return env.checkpoints_dir()
