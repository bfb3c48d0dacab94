"""The environment variables the library reads, read in one place (a base module: it imports nothing of xstilts)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Model and step cache: XSTILTS_CACHE, else HF_HOME/xstilts (a PVC on the cluster), else ~/.cache/xstilts."""
    if os.environ.get("XSTILTS_CACHE"):
        return Path(os.environ["XSTILTS_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "xstilts"
    return Path.home() / ".cache" / "xstilts"
