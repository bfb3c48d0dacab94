"""Atomic writes: outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp dir beside `final`; on success it replaces `final`, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        # KFP hands us a fresh (possibly pre-created, empty) path; a re-run replaces the old result.
        shutil.rmtree(final) if final.is_dir() else final.unlink()
    os.replace(tmp, final)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy a file to `dest` atomically, byte for byte (KFP's HTML/Markdown outputs are single files beside a
    folder)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (used to key checkpoints and caches)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def dir_fingerprint(path: str | os.PathLike, pattern: str = "*") -> str:
    """Content hash of every file below `path` (names and bytes), or of those whose name matches `pattern`."""
    h = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob(pattern) if p.is_file()):
        h.update(str(file.relative_to(root)).encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Model and step cache: XSTILTS_CACHE, else HF_HOME/xstilts (a PVC on the cluster), else ~/.cache/xstilts."""
    if os.environ.get("XSTILTS_CACHE"):
        return Path(os.environ["XSTILTS_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "xstilts"
    return Path.home() / ".cache" / "xstilts"
