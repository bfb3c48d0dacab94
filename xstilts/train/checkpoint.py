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
from xstilts.io import atomic_dir, file_md5, read_json, write_json
from xstilts.config import KEEP_CHECKPOINTS

CHECKSUMS = "checksums.json"  # md5 of every other file, written last


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
        write_json(tmp / CHECKSUMS, {f.name: file_md5(f) for f in sorted(tmp.iterdir()) if f.is_file()})
    for old in list_checkpoints(ckpt_dir)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def resume_latest(ckpt_dir: Path, model, optimizer, scheduler) -> tuple[Path, dict, dict | None] | None:
    """Load the newest intact checkpoint in `ckpt_dir` (created if missing) into model, optimizer, scheduler and the
    RNGs; return (its path, the loop state, the best weights so far or None), or None when there is none. Every
    file is checked against the md5s written with it first: a truncated or altered checkpoint is skipped (the log
    says so and which one is used instead) and removed, so an interrupted write never blocks a resume."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for checkpoint in reversed(list_checkpoints(ckpt_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            try:
                return checkpoint, *_load(checkpoint, model, optimizer, scheduler)
            except (OSError, RuntimeError, ValueError, KeyError, EOFError) as e:  # pre-checksum checkpoints
                problem = f"unreadable ({type(e).__name__}: {str(e)[:200]})"
        print(f"[checkpoint] warning: {checkpoint} is corrupt ({problem}); removed, trying the one before",
              flush=True)
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def checkpoint_problem(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint's files against its recorded md5s, or None when they match (or it predates
    checksums, in which case loading it is the test)."""
    try:
        recorded = read_json(checkpoint / CHECKSUMS)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return f"{CHECKSUMS} unreadable: {e}"
    for name, md5 in recorded.items():
        file = checkpoint / name
        if not file.is_file():
            return f"{name} missing"
        if file_md5(file) != md5:
            return f"{name}: md5 {file_md5(file)}, recorded {md5}"
    return None


def _load(checkpoint: Path, model, optimizer, scheduler) -> tuple[dict, dict | None]:
    model.load_state_dict(load_file(checkpoint / "model.safetensors"))
    trainer_state = torch.load(checkpoint / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(trainer_state["optimizer"])
    scheduler.load_state_dict(trainer_state["scheduler"])
    torch.set_rng_state(trainer_state["torch_rng"])
    if trainer_state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(trainer_state["cuda_rng"])
    state = read_json(checkpoint / "state.json")
    best_state = load_file(checkpoint / "best.safetensors") if (checkpoint / "best.safetensors").exists() else None
    return state, best_state


def checkpoint_root() -> Path:
    """Where step checkpoints live: XSTILTS_CHECKPOINTS (the model-cache PVC on the cluster), else a local dir."""
    return env.checkpoints_dir()
