"""Load a task's splits from local JSONL/Parquet, a DVC-tracked folder, or the Hugging Face hub, into one canonical
table per split. Every table has `id` and `language`; the rest depends on the task kind (`canonical_columns`, from
the kind's spec in xstilts.kinds):

  pair/single classification  text_a, text_b, label            (label names, not indices)
  multiple choice             text_a (context), text_b (question or None), choices, label ("0".."k-1")
  extractive QA               text_a (question), text_b (context), answer_texts, answer_starts
  tagging                     tokens, tags                      (tag names)
  retrieval                   text_a (sentence), side ("source"/"target"), label (the gold partner's id, sources)
  generation                  prompt, completion (reference code or None), test (None outside evaluation),
                              entry_point, program_language; prompt + completion + "\n" + test is the whole program

Type errors stop loading with the file, row and field; wrong values of the right type (an unknown label, an answer
outside its context, a tag list of the wrong length, a missing pair id) are kept in `check` columns that the
great-expectations suite reports all at once (see validation.py).
"""

from __future__ import annotations

from pathlib import Path
import pandas as pd
from xstilts import io
from xstilts.errors import DataError
from xstilts.io import plain
# CHECK_PREFIX and OK: re-exported for validation, which reads the check columns the kind specs fill.
from xstilts.kinds.base import CHECK_PREFIX, OK, get_spec, text_value
from xstilts.tasks.registry import HubSource, Task


SOURCE_ROW = "source_row"  # 1-based row in the source file, kept until validation so errors point at the file
HUB_PREFIX = "hf://"  # `--data hf://` loads every split from the hub (ids and revisions in the task registry)
PAIRS_SUFFIX = ".pairs.tsv"  # retrieval gold pairs beside the sentences: source_id<TAB>target_id (BUCC .gold)


def canonical_columns(kind: str) -> list[str]:
    return ["id", "language", *get_spec(kind).columns]


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
    elif task.source_note:
        hint = f" ({task.source_note})"
    raise DataError(f"missing file: {base}.jsonl (or {base}.parquet) for task {task.name!r} split {split!r}{hint}")


def read_local(path: Path) -> list[dict]:
    """A split file's rows: Parquet, or JSON Lines (io.read_jsonl). A folder, FIFO or device is refused from its stat
    (opening a FIFO would block), a corrupt Parquet file is one line naming it."""
    if path.suffix == ".parquet":
        io.check_regular_file(path, "data file", DataError)
        try:
            return [_plain_row(r) for r in pd.read_parquet(path).to_dict("records")]
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise DataError(f"{path}: not a readable Parquet file ({io.shorten(str(e), 200)})") from None
    return io.read_jsonl(path)


def _plain_row(row: dict) -> dict:
    return {k: plain(v) for k, v in row.items()}


def _load_hub(source: HubSource, hub_split: str, language: str | None, revision: str | None,
              language_field: str = "language") -> list[dict]:
    import datasets  # heavy import, only on this path

    config = source.config_for(language) if language else source.config
    data_dir = source.data_dir_for(language) if language else source.data_dir
    hub_split = source._fill(hub_split, language) if language else hub_split
    where = f"{source.path} config {config!r}" + (f" folder {data_dir!r}" if data_dir else "")
    try:
        ds = datasets.load_dataset(source.path, config, split=hub_split, revision=revision or source.revision,
                                   **({"data_dir": data_dir} if data_dir else {}))
    except Exception as e:
        raise DataError(f"could not load {where} split {hub_split!r} "
                        f"revision {revision or source.revision!r} from the hub: {e}") from None
    rows = [_plain_row(dict(row)) for row in ds]
    if source.id_prefix and language:  # one config holds every language (TyDiQA): select by id prefix
        prefix = source.id_prefix[language]
        rows = [r for r in rows if str(r.get("id", "")).startswith(prefix)]
    return [{**row, language_field: language or "en"} for row in rows]


def read_hub(task: Task, split: str, language: str, revision: str | None = None) -> list[dict]:
    """Rows of one split and language from the hub, by id, config and pinned revision (plus extra train sources)."""
    if task.hub is None:
        raise DataError(f"task {task.name!r} has no hub source: {task.source_note or 'use local files'}")
    if split not in task.hub.splits:
        raise DataError(f"task {task.name!r} has no hub split for {split!r} (has {', '.join(task.hub.splits)})")
    per_language = task.hub.per_language(split)
    rows = _load_hub(task.hub, task.hub.splits[split], language if per_language else None, revision,
                     task.language_field)
    if split == "train":
        for extra in task.extra_train:  # pinned by their own revisions: hf_revision names this task's dataset
            rows += _load_hub(extra, extra.splits["train"], None, None)
    return [{**r, task.language_field: language} for r in rows]


def _where(source: str, i: int) -> str:
    return f"{source}: row {i}"


def _native(row: dict, task: Task, where: str) -> dict:
    """Apply the task's row adapter and check every mapped native field is present."""
    if task.prepare is not None:
        try:
            row = task.prepare(row)
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{where}: row does not have the {task.name} format ({type(e).__name__}: {e})") from None
    optional = set(get_spec(task.kind).optional_fields)
    for canonical, native in task.columns.items():
        if native not in row and canonical not in optional:
            raise DataError(f"{where}: missing field {native!r} (expected fields: {', '.join(task.columns.values())})")
    return row


def _canonical_row(row: dict, task: Task, where: str) -> dict:
    """One native row → canonical fields (without id/language), type-checked, with the kind's check column."""
    return get_spec(task.kind).canonical_row(_native(row, task, where), task, where)


def canonicalize(rows: list[dict], task: Task, split: str, source: str, default_language: str | None = None,
                 id_prefix: str | None = None) -> pd.DataFrame:
    """Map native rows to the task kind's canonical table, checking types; label indices become label names."""
    if not rows:
        raise DataError(f"{source}: split {split!r} of task {task.name!r} is empty")
    if get_spec(task.kind).pair_rows:
        return _canonical_pairs(rows, task, split, source, default_language)
    out = []
    label_field = task.columns.get("label")
    for i, row in enumerate(rows, start=1):
        where = _where(source, i)
        if task.drop_labels and label_field in row and row[label_field] in task.drop_labels:
            continue  # no gold label (SNLI's -1)
        values = _canonical_row(row, task, where)
        language = _row_language(row, task, where, default_language)
        id_field = task.columns.get("id")
        row_id = row.get(id_field) if id_field else row.get("id", row.get("idx", row.get("uid", row.get("ind"))))
        row_id = f"{id_prefix or task.name}-{split}-{language}-{i}" if row_id is None else str(row_id)
        out.append({"id": row_id, "language": language, **values, SOURCE_ROW: i})
    if not out:
        raise DataError(f"{source}: split {split!r} of task {task.name!r} has no rows with a gold label")
    df = pd.DataFrame(out)
    if "text_b" in df:
        df["text_b"] = df["text_b"].astype("object")
    df.attrs["source"] = source
    return df


def _row_language(row: dict, task: Task, where: str, default_language: str | None) -> str:
    """The row's natural language (or, for MBXP, programming language) code, from the task's language field."""
    language = row.get(task.language_field, default_language)
    if not isinstance(language, str):
        raise DataError(f"{where}: field {task.language_field!r} must be a language code string, got {language!r}")
    return task.language_code(language)


def _canonical_pairs(rows: list[dict], task: Task, split: str, source: str, default_language: str | None) -> pd.DataFrame:
    """Retrieval rows in the hub's pair format (source_sentence, target_sentence): each pair becomes a source and
    a target row, the source's label naming its partner."""
    out = []
    col = task.columns
    for i, row in enumerate(rows, start=1):
        where = _where(source, i)
        language = _row_language(row, task, where, default_language)
        row = _native(row, task, where)
        src_id, trg_id = f"{language}-{i:06d}", f"{language}-{i:06d}-en"
        out.append({"id": src_id, "language": language, "text_a": text_value(row[col["text_a"]], where, col["text_a"]),
                    "side": "source", "label": trg_id, SOURCE_ROW: i})
        out.append({"id": trg_id, "language": language, "text_a": text_value(row[col["text_b"]], where, col["text_b"]),
                    "side": "target", "label": None, SOURCE_ROW: i})
    df = pd.DataFrame(out)
    df[CHECK_PREFIX + "pair"] = OK
    df.attrs["source"] = source
    return df


def _read_mining_split(path: Path, task: Task, split: str) -> pd.DataFrame:
    """BUCC-style mining data: sentence rows (id, language, side, sentence) plus <split>.pairs.tsv gold pairs.

    Every pair line must name a source and a target sentence that exist (the error names the pairs file line)."""
    rows = read_local(path)
    if not rows:
        raise DataError(f"{path}: split {split!r} of task {task.name!r} is empty")
    pairs_path = path.with_name(split + PAIRS_SUFFIX)
    if not pairs_path.exists():
        raise DataError(f"missing file: {pairs_path} (gold pairs, one `source_id<TAB>target_id` per line) for the "
                        f"sentences in {path}")
    out, ids = [], {}
    for i, row in enumerate(rows, start=1):
        where = _where(str(path), i)
        for field in ("id", "language", "side", "sentence"):
            if field not in row:
                raise DataError(f"{where}: missing field {field!r} (expected fields: id, language, side, sentence)")
        for field in ("id", "language", "side"):
            if not isinstance(row[field], str):
                raise DataError(f"{where}: field {field!r} must be a string, got {row[field]!r}")
        ids.setdefault(row["id"], {})[row["language"]] = row["side"]  # BUCC numbers ids per language pair (en-000001)
        out.append({"id": row["id"], "language": row["language"], "text_a": text_value(row["sentence"], where, "sentence"),
                    "side": row["side"], "label": None, SOURCE_ROW: i})
    partner = {}
    for line_no, line in enumerate(pairs_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2:
            raise DataError(f"{pairs_path}:{line_no}: expected `source_id<TAB>target_id`, got {line!r}")
        src, trg = parts
        langs = {}
        for pair_id, side in ((src, "source"), (trg, "target")):
            if pair_id not in ids:
                raise DataError(f"{pairs_path}:{line_no}: {side} id {pair_id!r} is not in {path}")
            langs[side] = {lang for lang, s in ids[pair_id].items() if s == side}
            if not langs[side]:
                raise DataError(f"{pairs_path}:{line_no}: id {pair_id!r} is a {next(iter(ids[pair_id].values()))} "
                                f"sentence, expected a {side} sentence")
        if not langs["source"] & langs["target"]:
            raise DataError(f"{pairs_path}:{line_no}: {src!r} ({', '.join(sorted(langs['source']))}) and {trg!r} "
                            f"({', '.join(sorted(langs['target']))}) belong to different language pairs")
        for lang in langs["source"] & langs["target"]:
            partner[(lang, src)] = trg
    if not partner:
        raise DataError(f"{pairs_path}: no gold pairs")
    for row in out:
        row["label"] = partner.get((row["language"], row["id"]))
    df = pd.DataFrame(out)
    df[CHECK_PREFIX + "pair"] = OK
    df.attrs["source"] = str(path)
    return df


def load_split(task: Task, split: str, data: str, languages: tuple[str, ...], revision: str | None = None) -> pd.DataFrame:
    """One canonical table for a split, restricted to `languages`; an empty language is an error."""
    if data.startswith(HUB_PREFIX):
        frames = []
        for lang in languages:
            config = (task.hub.config_for(lang) or task.hub.data_dir_for(lang)) if task.hub else None
            frames.append(canonicalize(read_hub(task, split, lang, revision), task, split,
                                       f"{task.hub.path if task.hub else task.name}/{config}[{split}]", lang,
                                       id_prefix=f"{task.name}-{lang}"))
        df = pd.concat(frames, ignore_index=True)
        df.attrs["source"] = f"{task.hub.path} [{split}]"
        return df
    from xstilts.data.official import load_official  # official release files (SQuAD JSON, XNLI TSV, CoNLL-U, ...)
    official = load_official(Path(data), task, split, languages)  # None: <data>/<task>/<split>.jsonl|parquet
    path = Path(official.attrs["source"]) if official is not None else split_file(Path(data), task, split)
    if official is not None:
        df = official
    elif get_spec(task.kind).pair_rows and path.with_name(split + PAIRS_SUFFIX).exists():
        df = _read_mining_split(path, task, split)
    else:
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
