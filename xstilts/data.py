"""Load a task's splits from local JSONL/Parquet, a DVC-tracked folder, or the Hugging Face hub,
into one canonical table per split: id, language, text_a, text_b, label (label names, not indices).

Every error names the file, row and field and what was expected.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .errors import DataError
from .tasks import Task

CANONICAL_COLUMNS = ["id", "language", "text_a", "text_b", "label"]
SOURCE_ROW = "source_row"  # 1-based row in the source file, kept until validation so errors point at the file
HUB_PREFIX = "hf://"  # `--data hf://` loads every split from the hub (ids and revisions in the task registry)


def split_file(root: Path, task: Task, split: str) -> Path:
    """The local file of a split: <root>/<task>/<split>.jsonl or .parquet."""
    for suffix in (".jsonl", ".parquet"):
        candidate = root / task.name / f"{split}{suffix}"
        if candidate.exists():
            return candidate
    base = root / task.name / split
    hint = ""
    if not root.exists() and Path(f"{root}.dvc").exists():
        hint = f" ({root} is tracked by DVC: run `dvc pull {root}.dvc` first)"
    raise DataError(f"missing file: {base}.jsonl (or {base}.parquet) for task {task.name!r} split {split!r}{hint}")


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: malformed JSON line ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def read_local(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path).to_dict("records")
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    return read_jsonl(path)


def read_hub(task: Task, split: str, language: str, revision: str | None = None) -> list[dict]:
    """Rows of one split and language from the hub, by id, config and pinned revision."""
    import datasets  # heavy import, only on this path

    hub = task.hub
    if split not in hub.splits:
        raise DataError(f"task {task.name!r} has no hub split for {split!r} (has {', '.join(hub.splits)})")
    config = hub.config.format(language=language)
    try:
        ds = datasets.load_dataset(hub.path, config, split=hub.splits[split], revision=revision or hub.revision)
    except Exception as e:
        raise DataError(f"could not load {hub.path} config {config!r} split {hub.splits[split]!r} "
                        f"revision {revision or hub.revision!r} from the hub: {e}") from None
    return [dict(row, language=language) for row in ds]


def canonicalize(rows: list[dict], task: Task, split: str, source: str, default_language: str | None = None) -> pd.DataFrame:
    """Map native rows to the canonical schema, checking types; label indices become label names.

    Values that have the right type but a wrong value (unknown label, unknown language, empty text) are kept:
    the great-expectations suite reports those, all at once, with example rows.
    """
    if not rows:
        raise DataError(f"{source}: split {split!r} of task {task.name!r} is empty")
    text_a = task.text_columns[0]
    text_b = task.text_columns[1] if task.is_pair else None
    out = []
    for i, row in enumerate(rows, start=1):
        where = f"{source}: row {i}"
        for col in (*task.text_columns, task.label_column):
            if col not in row:
                raise DataError(f"{where}: missing field {col!r} (expected fields: "
                                f"{', '.join((*task.text_columns, task.label_column))})")
        texts = {}
        for col in task.text_columns:
            value = row[col]
            if isinstance(value, float) and math.isnan(value):  # a null text read from Parquet
                value = None
            if value is not None and not isinstance(value, str):
                raise DataError(f"{where}: field {col!r} must be a string, got {type(value).__name__} {value!r}")
            texts[col] = value  # None stays: the validation suite reports null texts with the other failures
        label = row[task.label_column]
        if hasattr(label, "item"):  # numpy scalars from Parquet
            label = label.item()
        if isinstance(label, bool) or not isinstance(label, (int, str)):
            raise DataError(f"{where}: field {task.label_column!r} must be a label name or index, "
                            f"got {type(label).__name__} {label!r}")
        if isinstance(label, int):
            label = task.labels[label] if 0 <= label < len(task.labels) else str(label)
        language = row.get("language", default_language)
        if not isinstance(language, str):
            raise DataError(f"{where}: field 'language' must be a language code string, got {language!r}")
        row_id = row.get("id", row.get("idx"))
        row_id = f"{task.name}-{split}-{language}-{i}" if row_id is None else str(row_id)
        out.append({"id": row_id, "language": language, "text_a": texts[text_a],
                    "text_b": texts[text_b] if text_b else None, "label": label, SOURCE_ROW: i})
    df = pd.DataFrame(out, columns=CANONICAL_COLUMNS + [SOURCE_ROW]).astype({"text_b": "object"})
    df.attrs["source"] = source
    return df


def load_split(task: Task, split: str, data: str, languages: tuple[str, ...], revision: str | None = None) -> pd.DataFrame:
    """One canonical table for a split, restricted to `languages`; an empty language is an error."""
    if data.startswith(HUB_PREFIX):
        frames = [canonicalize(read_hub(task, split, lang, revision), task, split,
                               f"{task.hub.path}/{task.hub.config.format(language=lang)}[{split}]", lang)
                  for lang in languages]
        df = pd.concat(frames, ignore_index=True)
        df.attrs["source"] = f"{task.hub.path} [{split}]"
        return df
    path = split_file(Path(data), task, split)
    df = canonicalize(read_local(path), task, split, str(path), default_language=task.train_language)
    # Keep only the requested languages, but leave unknown codes in place for the validation suite to report.
    known = set(task.languages)
    df = df[df["language"].isin(languages) | ~df["language"].isin(known)].reset_index(drop=True)
    df.attrs["source"] = str(path)
    for lang in languages:
        if not (df["language"] == lang).any():
            raise DataError(f"{path}: split {split!r} has no rows for language {lang!r} (task {task.name!r})")
    return df


def read_split(dataset_dir: str | Path, task: str, split: str) -> pd.DataFrame:
    """A validated split written by the validate step."""
    path = Path(dataset_dir) / task / f"{split}.parquet"
    if not path.exists():
        raise DataError(f"missing validated split {path}: was task {task!r} part of the validate step?")
    return pd.read_parquet(path)
