"""Provenance of every artifact a step writes, and an audit of a run's chain of artifacts.

Each step writes `<artifact>/lineage.json` inside its atomic_dir, just before the rename:

  {"step", "artifact_md5", "files": {relpath: md5}, "inputs": {name: {"path", "md5"}}, "params", "code_commit",
   "image", "data", "started_at", "seconds"}

`artifact_md5` covers every file of the artifact except lineage.json itself; `inputs` are the parent artifacts the
step read (their md5 at the time). `audit(run_dir)` recomputes every md5, links each artifact to its parents by md5
and fails on the first artifact changed since it was written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable
from xstilts.io import read_json
from xstilts.provenance import LINEAGE_FILE, LineageError, STEPS, _hash, artifact_md5


class TamperedArtifactError(LineageError):
    """An artifact's bytes differ from the md5 recorded when its step wrote it."""


class MissingParentError(LineageError):
    """An artifact names a parent (by md5) that is not in the audited run."""


def _describe_change(recorded: dict[str, str], actual: dict[str, str]) -> str:
    changed = sorted(f for f in recorded.keys() & actual.keys() if recorded[f] != actual[f])
    missing = sorted(recorded.keys() - actual.keys())
    added = sorted(actual.keys() - recorded.keys())
    parts = ([f"changed: {', '.join(changed)}"] if changed else []) + ([f"missing: {', '.join(missing)}"] if missing else []) \
        + ([f"added: {', '.join(added)}"] if added else [])
    return "; ".join(parts) if parts else "file list not recorded"


def _step_index(step: str) -> int:
    return STEPS.index(step) if step in STEPS else len(STEPS)


def find_records(root: str | os.PathLike) -> list[Path]:
    """Every lineage.json below root, skipping atomic_dir's temp folders (`.<name>.tmp-*`)."""
    root = Path(root)
    return sorted(p for p in root.rglob(LINEAGE_FILE) if not any(part.startswith(".") and ".tmp-" in part
                                                                 for part in p.relative_to(root).parts))


def audit(root: str | os.PathLike, allow_missing_parents: bool = False) -> list[dict]:
    """Check every artifact below `root` against its lineage.json and link it to its parents.

    Returns one node per artifact in pipeline order: the lineage record plus "path", "condition", "task" and
    "parents" ({input: {"path", "md5", "step"}}, None for an absent parent when `allow_missing_parents`).
    Raises TamperedArtifactError for an artifact whose bytes changed, MissingParentError for an input that no
    artifact of the run matches, LineageError when there is nothing to audit."""
    root = Path(root)
    if not root.is_dir():
        raise LineageError(f"{root} is not a directory")
    files = find_records(root)
    if not files:
        raise LineageError(f"no {LINEAGE_FILE} below {root}: not a run directory, or a run written before lineage")
    nodes = []
    for file in files:
        try:
            entry = read_json(file)
            entry["step"], entry["artifact_md5"], entry["inputs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LineageError(f"{file}: unreadable lineage record ({e})") from None
        art = file.parent
        actual, per_file = _hash(art)
        if actual != entry["artifact_md5"]:
            raise TamperedArtifactError(
                f"artifact {art} (step {entry['step']}) changed after it was written: recorded md5 "
                f"{entry['artifact_md5']}, actual {actual} ({_describe_change(entry.get('files') or {}, per_file)})")
        nodes.append({**entry, "path": str(art.resolve())})
    return link(nodes, str(root), allow_missing_parents, on_disk_md5=_on_disk_md5)


def _on_disk_md5(path: str) -> str | None:
    return artifact_md5(path) if Path(path).exists() else None


def link(nodes: list[dict], where: str, allow_missing_parents: bool = False,
         on_disk_md5: Callable[[str], str | None] | None = None) -> list[dict]:
    """Link lineage records (each with "path", "step", "artifact_md5", "inputs", "params") to their parents and
    return them in pipeline order. Shared by the local audit and the Kubeflow one (pipelines/ops.py).

    Each input's recorded md5 must be the md5 of an artifact among `nodes` (the one at the recorded path when
    several have it); otherwise MissingParentError names the artifact, its step, the input and both md5s.
    Adds "parents" ({input: {"path", "md5", "step"}}, None for an absent parent when `allow_missing_parents`),
    "condition" and "task" (the step's own params, else inherited from its parents: export, evaluate).
    `on_disk_md5(path)`, for the local audit: the current md5 of a recorded input path that is no run artifact."""
    nodes.sort(key=lambda n: (_step_index(n["step"]), n["path"]))
    by_md5: dict[str, list[dict]] = {}
    by_path = {n["path"]: n for n in nodes}
    for node in nodes:
        by_md5.setdefault(node["artifact_md5"], []).append(node)
    for node in nodes:
        parents = {}
        for name, inp in node["inputs"].items():
            candidates = by_md5.get(inp["md5"], [])
            parent = next((c for c in candidates if c["path"] == inp["path"]), candidates[0] if candidates else None)
            if parent is None and not allow_missing_parents:
                raise MissingParentError(_missing_parent(node, name, inp, where, by_path.get(inp["path"]),
                                                         on_disk_md5))
            parents[name] = None if parent is None else {"path": parent["path"], "md5": parent["artifact_md5"],
                                                         "step": parent["step"]}
        node["parents"] = parents
    index = {n["path"]: n for n in nodes}
    for node in nodes:  # pipeline order: parents come first
        for key in ("condition", "task"):
            value = node["params"].get(key)
            if value is None and node["step"] not in ("validate", "gather", "promote", "report"):
                value = next((index[p["path"]].get(key) for p in node["parents"].values()
                              if p and index[p["path"]].get(key) is not None), None)
            node[key] = value
    nodes.sort(key=lambda n: (_step_index(n["step"]), n["condition"] != "none", str(n["condition"] or ""),
                              str(n["task"] or ""), n["path"]))
    return nodes


def _missing_parent(node: dict, name: str, inp: dict, where: str, at_path: dict | None,
                    on_disk_md5: Callable[[str], str | None] | None) -> str:
    head = (f"artifact {node['path']} (step {node['step']}): its input {name!r} ({inp['path']}) is recorded with "
            f"md5 {inp['md5']}")
    if at_path is not None:
        return (f"{head}, but that artifact (step {at_path['step']}) has md5 {at_path['artifact_md5']}: replaced "
                f"after this step read it, or a record was edited")
    now = on_disk_md5(inp["path"]) if on_disk_md5 else None
    if now is not None and now != inp["md5"]:
        return f"{head}, which is not an artifact of {where}; {inp['path']} now has md5 {now} (replaced after this " \
               f"step read it)"
    if now is not None:
        return f"{head}, which is not an artifact of {where} (the folder is there, without its {LINEAGE_FILE})"
    return f"{head}, which is not an artifact of {where}"


def run_directory(path: str | os.PathLike) -> Path:
    """The run directory holding `path`: a run directory itself (the validate step's record at most 3 levels down),
    or an artifact folder or file inside one (e.g. the report folder `runs/latest` points to), whose nearest ancestor
    with that record is its run. Never a folder merely near a run: an empty folder, an unrelated file or a folder
    holding several runs is an error, and so is an unreadable record on the way."""
    path = Path(path).resolve()
    if not path.exists():
        raise LineageError(f"{path} does not exist")
    start = path if path.is_dir() else path.parent
    if path.is_file() and path.name != LINEAGE_FILE and not _artifact_of(start):
        raise LineageError(f"{path} is a file outside any artifact: give a run directory (runs/kfp/<run>) or a "
                           "folder inside one")
    if _holds_validate_record(start):
        return start
    artifact = _artifact_of(start)
    if artifact is not None:
        for candidate in artifact.parents:
            if _holds_validate_record(candidate):
                return candidate
    elif find_records(start):
        return start  # a partial run: audit reports its missing parents
    raise LineageError(f"no run directory at or above {path}: no {LINEAGE_FILE} of a run there (a run written "
                       "before lineage was recorded, or not a run)")


def _artifact_of(folder: Path) -> Path | None:
    """The artifact folder (one holding a lineage.json) that is `folder` or contains it."""
    return next((d for d in (folder, *folder.parents) if (d / LINEAGE_FILE).is_file()), None)


def _holds_validate_record(folder: Path) -> bool:
    """Whether the validate step's record lies 1-3 levels below `folder` (how runs/kfp/<run> holds it). Several runs'
    records (a folder of runs) or an unreadable record are errors, not a guess."""
    found = []
    for depth in ("*/", "*/*/", "*/*/*/"):
        for file in folder.glob(depth + LINEAGE_FILE):
            try:
                step = read_json(file).get("step")
            except (OSError, ValueError, AttributeError) as e:
                raise LineageError(f"{file}: unreadable lineage record ({e})") from None
            if step == "validate":
                found.append(file)
    if len(found) > 1:
        raise LineageError(f"{folder} holds {len(found)} runs' records; give one run directory, e.g. "
                           f"{found[0].parent.parent.parent}")
    return bool(found)


# ---- the chain, for people and for machines (`xstilts lineage`, local and on Kubeflow) ------------------------------

STEP_TITLES = {"target": "target model", "export": "ONNX", "evaluate": "eval results"}


def key_params(node: dict) -> str:
    """A few parameters worth seeing in the chain, per step."""
    p, step = node["params"], node["step"]
    if step == "validate":
        data = node.get("data") or {}
        keys = {"targets": ",".join(p.get("target_tasks", [])), "conditions": ",".join(p.get("conditions", []))}
        keys["hf_revision"] = data.get("hf_revision") or None
    elif step in ("intermediate", "target", "finetune"):
        train = p.get("train") or {}
        keys = {"model": p.get("model_name"), "trained": p.get("trained"),
                **{k: train.get(k) for k in ("epochs", "max_steps", "learning_rate", "seed") if train.get(k)}}
    elif step == "export":
        keys = {k: p.get(k) for k in ("opset", "tolerance", "retrieval_layer")}
    elif step == "evaluate":
        keys = {"batch_size": p.get("batch_size")}
    elif step == "gather":
        keys = {"targets": ",".join(p.get("targets", []))}
    elif step == "report":
        keys = {"targets": ",".join(p.get("targets", [])), "conditions": ",".join(p.get("conditions", []))}
    else:
        keys = {k: v for k, v in p.items() if not isinstance(v, (dict, list))}
    return " ".join(f"{k}={v}" for k, v in keys.items() if v is not None and v != "")


def _node_label(node: dict, location: Callable[[dict], str], title: str | None = None) -> str:
    from rich.markup import escape

    commit = str(node.get("code_commit") or "?")
    commit = commit[:10] if len(commit) == 40 else commit
    return (f"[bold]{escape(title or STEP_TITLES.get(node['step'], node['step']))}[/] "
            f"[cyan]{node['artifact_md5'][:8]}[/] [dim]commit[/] {escape(commit)} "
            f"[dim]{node.get('seconds') or 0:.1f}s[/] {escape(key_params(node))} [dim]{escape(location(node))}[/]")


def _data_label(node: dict) -> str:
    from rich.markup import escape

    data = node.get("data") or {}
    files, version = data.get("files") or {}, data.get("data_version") or {}
    if version:
        what = (f" · DVC {escape(str(version.get('repo')))}@{escape(str(version.get('rev')))} "
                f"md5 {escape(str(version.get('md5') or version.get('dvc_md5') or '?'))[:8]}")
    elif files:
        what = f" · {len(files)} files, md5 {hashlib.md5(json.dumps(files, sort_keys=True).encode()).hexdigest()[:8]}"
    else:
        what = f" · revision {escape(str(data.get('hf_revision') or 'default'))}"
    return (f"[bold]data[/] {escape(str(data.get('source')))}{what}"
            + (f" · task_data {escape(str(data['task_data']))}" if data.get("task_data") else ""))


def chain_tree(nodes: list[dict], header: str, location: Callable[[dict], str]):
    """A rich Tree of linked nodes (see `link`): data and validation, then per condition its intermediate model,
    per target task the target model → ONNX → eval results, the condition's gather; then the run-wide steps
    (promotion, report). `header` is rich markup; `location(node)` says where each artifact is."""
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(header)
    for node in (n for n in nodes if n["step"] == "validate"):
        tree.add(_data_label(node))
        tree.add(_node_label(node, location))
    run_wide = ("validate", "promote", "report")
    grouped = [n for n in nodes if n["step"] not in run_wide]
    for condition in dict.fromkeys(n["condition"] for n in grouped):
        branch = tree.add(f"[bold magenta]condition {escape(str(condition))}[/]")
        members = [n for n in grouped if n["condition"] == condition]
        for n in (m for m in members if m["step"] in ("intermediate", "finetune", "pass-through") and not m["task"]):
            branch.add(_node_label(n, location))
        for task in dict.fromkeys(m["task"] for m in members if m["task"]):
            sub = branch.add(f"[bold yellow]target {escape(str(task))}[/]")
            for n in (m for m in members if m["task"] == task):
                sub.add(_node_label(n, location))
        for n in (m for m in members if m["step"] == "gather"):
            branch.add(_node_label(n, location))
    for node in (n for n in nodes if n["step"] in run_wide[1:]):
        tree.add(_node_label(node, location))
    return tree


def print_chain(nodes: list[dict], header: str, location: Callable[[dict], str], notes: list[str] = ()) -> None:
    """Print `chain_tree` (wide enough not to wrap when piped), then `notes` (rich markup), one a line."""
    from rich.console import Console

    console = Console(width=max(Console().width, 160))
    console.print(chain_tree(nodes, header, location))
    for note in notes:
        console.print(note, highlight=False)
