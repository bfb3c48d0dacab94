"""Lineage records: each step writes <artifact>/lineage.json (the artifact's md5 and files, its inputs' md5s, the
params, the code commit and image, the data version, the timing) through `Provenance` and `record`; `metadata` turns
a record into KFP artifact metadata and `artifact_md5` hashes an artifact without its lineage.json. Auditing the
records of a run is xstilts.ops.lineage. A base module: it imports only xstilts.errors and xstilts.io."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from xstilts import env
from xstilts.errors import XstiltsError
from xstilts.io import OUTPUT_MARKER, jsonable, read_json, write_json


LINEAGE_FILE = "lineage.json"
# Pipeline order; the chain reads data → validate → intermediate → target → export → evaluate → gather → report.
STEPS = ("validate", "intermediate", "target", "export", "evaluate", "gather", "promote", "report")


class LineageError(XstiltsError):
    """A run's provenance does not check out."""


def _hash(path: Path) -> tuple[str, dict[str, str]]:
    """(md5 of the artifact, md5 per file). A directory hashes its sorted relative paths and bytes, skipping
    lineage.json and the output marker at its top; a file hashes its bytes."""
    path = Path(path)
    if path.is_file():
        h = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest(), {path.name: h.hexdigest()}
    if not path.is_dir():
        raise LineageError(f"cannot hash {path}: no such file or directory")
    total, files = hashlib.md5(), {}
    for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix()):
        rel = file.relative_to(path).as_posix()
        if rel in (LINEAGE_FILE, OUTPUT_MARKER):
            continue
        one = hashlib.md5()
        total.update(rel.encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                total.update(chunk)
                one.update(chunk)
        files[rel] = one.hexdigest()
    return total.hexdigest(), files


def artifact_md5(path: str | os.PathLike) -> str:
    """md5 (hex) of a file, or of a directory: its sorted relative paths and their bytes, without lineage.json."""
    return _hash(Path(path))[0]


@functools.lru_cache(maxsize=None)
def _git_head(repo: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def code_version() -> dict[str, str | None]:
    """{"code_commit": $XSTILTS_COMMIT (set by the image build), else the package repo's `git rev-parse HEAD`,
    else xstilts.__version__; "image": $XSTILTS_IMAGE or None}."""
    from xstilts import __version__

    commit = env.code_commit() or _git_head(str(Path(__file__).resolve().parent)) or __version__
    return {"code_commit": commit, "image": env.image()}


def _input_path(path: str | os.PathLike) -> Path:
    """A file inside an artifact that has lineage (results.json in a results folder) stands for its artifact."""
    path = Path(path)
    if path.is_file() and (path.parent / LINEAGE_FILE).exists():
        return path.parent
    return path


def record(out: str | os.PathLike, step: str, inputs: dict[str, str | os.PathLike | None] | None = None,
           params: dict | None = None, data: dict | None = None, started: float | None = None) -> dict:
    """Write `<out>/lineage.json` for the artifact in `out` (call it last, inside the step's atomic_dir) and return it.

    `inputs`: name → parent artifact path (None entries are skipped); `started`: the step's `time.time()` at start."""
    out = Path(out)
    md5, files = _hash(out)
    now = time.time()
    started = now if started is None else started
    entry = {
        "step": step,
        "artifact_md5": md5,
        "files": files,
        "inputs": {name: {"path": str(_input_path(p).resolve()), "md5": artifact_md5(_input_path(p))}
                   for name, p in (inputs or {}).items() if p is not None},
        "params": jsonable(params or {}),
        **code_version(),
        "data": jsonable(data) if data is not None else None,
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(now - started, 3),
    }
    entry["data_version"] = _data_version(entry)
    write_json(out / LINEAGE_FILE, entry)
    return entry


def _data_version(entry: dict) -> dict | None:
    """Which data the artifact descends from — {source, repo, rev, commit, md5, hf_revision} — recorded by the
    validate step and inherited from the parents' records, so every artifact names its data version."""
    data = entry.get("data")
    if data:
        dvc = data.get("data_version") or {}
        files = data.get("files") or {}
        # The pipeline's resolve step md5 when there is one (the caching key), else DVC's, else the files read.
        md5 = (entry["params"].get("data_md5") or dvc.get("dvc_md5")
               or (hashlib.md5(json.dumps(files, sort_keys=True).encode()).hexdigest() if files else ""))
        return {"source": data.get("source"), "repo": dvc.get("repo", ""), "rev": dvc.get("rev", ""),
                "commit": dvc.get("commit", ""), "md5": md5, "hf_revision": data.get("hf_revision") or ""}
    for parent in entry["inputs"].values():
        record_file = Path(parent["path"]) / LINEAGE_FILE
        if record_file.is_file():
            inherited = read_json(record_file).get("data_version")
            if inherited:
                return inherited
    return None


class Provenance:
    """What a step function knows at its start (step, inputs, params, clock); `.record(tmp)` writes lineage.json."""

    def __init__(self, step: str, inputs: dict | None = None, params: dict | None = None, data: dict | None = None):
        self.step, self.inputs, self.params, self.data = step, dict(inputs or {}), dict(params or {}), data
        self.started = time.time()

    def record(self, out: str | os.PathLike) -> dict:
        return record(out, self.step, self.inputs, self.params, self.data, self.started)


def metadata(entry_or_dir: dict | str | os.PathLike) -> dict:
    """The KFP artifact metadata fields of a lineage record (or of the artifact directory holding one):
    md5, parent_md5s ({input: md5}), code_commit, image ("" when unset), and the data version it descends from:
    data_repo, data_rev, data_commit (DVC data) and data_md5; the step's params, started_at and seconds."""
    entry = entry_or_dir if isinstance(entry_or_dir, dict) else read_json(Path(entry_or_dir) / LINEAGE_FILE)
    version = entry.get("data_version") or {}
    return {"md5": entry["artifact_md5"], "parent_md5s": {k: v["md5"] for k, v in entry["inputs"].items()},
            "code_commit": entry["code_commit"], "image": entry["image"] or "",
            "data_repo": version.get("repo", ""), "data_rev": version.get("rev", ""),
            "data_commit": version.get("commit", ""), "data_md5": version.get("md5", ""),
            "params": entry["params"], "started_at": entry["started_at"], "seconds": entry["seconds"]}


def source_files(paths) -> dict[str, str]:
    """md5 of each local source data file (hub sources are named by id and revision instead)."""
    return {str(Path(p).resolve()): artifact_md5(p) for p in sorted({str(p) for p in paths}) if Path(p).is_file()}


def scalar_metrics(result: dict) -> dict[str, float]:
    """The numeric, single-valued entries of a training result (what a KFP Metrics artifact shows); booleans as 0/1."""
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
