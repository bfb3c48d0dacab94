"""Official release files → the task's native hub rows, for data roots that hold the files as their authors publish
them (air-gapped clusters, DVC-tracked copies) rather than `<root>/<task>/<split>.jsonl|parquet` in the hub's row
format. Files are recognised by name, then checked by content; rows come out as the hub loader yields them, so
`load.canonicalize` applies unchanged (BUCC, whose hub copy keeps only the gold pairs, becomes the mining table).

  SQuAD-style JSON   squad train-v1.1.json/dev-v1.1.json, squad_v2 train-v2.0.json/dev-v2.0.json, xquad xquad.<l>.json,
                     mlqa test-context-<l>-question-<l>.json (dev-… for validation), tydiqa tydiqa-goldp-v1.1-train.json,
                     tydiqa-goldp-v1.1-dev.json, tydiqa-goldp-dev-<name>.json, XTREME's tydiqa.goldp.<l>.{train,dev}.json
  NLI TSV/JSONL      xnli XNLI-1.0/xnli.{dev,test}.tsv, XNLI-MT multinli.train.<l>.tsv; mnli multinli_1.0_{train,
                     dev_matched}.{txt,jsonl} or GLUE MNLI/{train,dev_matched}.tsv; snli snli_1.0_{train,dev}.{txt,jsonl}
  PAWS-X TSV         pawsx x-final/<l>/{train,dev_2k,test_2k}.tsv
  CoNLL-U            udpos <l>_<treebank>-ud-{train,dev,test}.conllu (all treebanks of a language, as the hub)
  token-tag          panx <l>-{train,dev,test} or <l>/{train,dev,test} (`<l>:token<TAB>tag`)
  XTREME's output    xnli/pawsx/panx/udpos <task>/{train,dev,test}-<l>.tsv as scripts/download_data.sh writes them
  Tatoeba            tatoeba tatoeba.<iso3>-eng.<iso3> + tatoeba.<iso3>-eng.eng (line-aligned)
  BUCC 2018          bucc18 <l>-en.training.{<l>,en,gold} (XTREME's test split; also <l>-en.test.* with its .gold)
  code JSONL(.gz)    humaneval HumanEval.jsonl(.gz); mbxp mb<x>p_release_v<version>.jsonl(.gz); mbpp mbpp.jsonl

XTREME's download script strips the test gold (QA answers, NLI/PAWS-X labels, tags, BUCC's test .gold, Tatoeba's
order): such files are refused with a DataError rather than scored against placeholders.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from xstilts.errors import DataError
from xstilts.tasks.catalog.xtreme import TATOEBA_LANGUAGES, TYDIQA_LANGUAGES
from xstilts.tasks.registry import Task
from xstilts.io import file_md5, read_jsonl

SPLIT_NAMES = {"train": "train", "validation": "dev", "test": "test"}  # our split → the release files' word
MAX_FILES = 50000  # files looked at under a data root: enough for UD's 200 treebanks, bounded on a wrong root
STRIPPED = "the test gold was stripped"


@dataclass(frozen=True)
class Expect:
    """One official file name for a (task, split, language): `pattern` is matched against `<parent>/<name>` of every
    file under the search folder; `within` (folder names) restricts generic names (`test-de.tsv`) to the folder
    XTREME writes them to; `read(paths, task, split, language)` → native rows; `concat`: several matches are one
    split (UD treebanks), else more than one match is ambiguous."""

    shown: str
    pattern: str
    read: Callable[[list[Path], Task, str, str], list[dict]]
    within: tuple[str, ...] = ()
    concat: bool = False


# ---- reading --------------------------------------------------------------------------------------------------

def _text(path: Path) -> str:
    """A text file's content; `.gz` (or gzip bytes under another name) is decompressed."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable gzip file ({e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _tsv(path: Path, quoting=csv.QUOTE_NONE) -> list[list[str]]:
    return list(csv.reader(_text(path).splitlines(), delimiter="\t", quoting=quoting))


def _stripped(path: Path, what: str) -> DataError:
    return DataError(f"{path}: {STRIPPED} ({what}; XTREME's download script removes it to prevent accidental test "
                     f"evaluation): use the original release file, which has the gold")


# SQuAD v1.1/v2.0 JSON (rajpurkar.github.io/SQuAD-explorer): {"version", "data": [{"title", "paragraphs":
# [{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}
def _squad_rows(path: Path, id_prefix: str | None = None) -> list[dict]:
    try:
        doc = json.loads(_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f'{path}: not a SQuAD-format file (expected {{"version", "data": [{{"title", "paragraphs": '
                        f'[{{"context", "qas": [...]}}]}}]}})')
    qas: dict[str, dict] = {}
    for a, article in enumerate(doc["data"]):
        where = f"{path}: data[{a}]"
        try:
            for p, paragraph in enumerate(article["paragraphs"]):
                for q, qa in enumerate(paragraph["qas"]):
                    where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                    answers = qa["answers"]
                    row_id = str(qa["id"])
                    if row_id in qas:  # the hub merges a repeated id's answers
                        qas[row_id]["answers"]["text"] += [x["text"] for x in answers]
                        qas[row_id]["answers"]["answer_start"] += [x["answer_start"] for x in answers]
                        continue
                    qas[row_id] = {"id": row_id, "title": article.get("title", ""), "context": paragraph["context"],
                                   "question": qa["question"],
                                   "answers": {"text": [x["text"] for x in answers],
                                               "answer_start": [x["answer_start"] for x in answers]}}
        except (KeyError, TypeError) as e:
            raise DataError(f"{where}: not in the SQuAD format ({type(e).__name__}: {e})") from None
    rows = [r for r in qas.values() if id_prefix is None or r["id"].startswith(id_prefix)]
    answer_texts = [t for r in rows for t in r["answers"]["text"]]
    if answer_texts and not any(answer_texts) and all(r["answers"]["text"] for r in rows):
        raise _stripped(path, "every answer is an empty placeholder")
    return rows


def _squad(paths, task, split, language):
    return [row for path in paths for row in _squad_rows(path)]


def _tydiqa_all(paths, task, split, language):
    """The TyDiQA-GoldP files with every language: a language's rows by id prefix, as the hub."""
    return [row for path in paths for row in _squad_rows(path, task.hub.id_prefix[language])]


NLI_LABEL_NAMES = {"contradictory": "contradiction"}  # XNLI-MT's spelling
NO_GOLD = ("-", "")  # MultiNLI/SNLI pairs without annotator consensus: no gold label (the hub's -1, dropped)


def _nli(paths, task, split, language):
    """Header-based NLI files: XNLI-1.0 (language, gold_label, …, sentence1, sentence2, …), MultiNLI/SNLI/GLUE
    (gold_label, sentence1, sentence2), XNLI-MT (premise, hypo, label); TSV or JSONL."""
    rows = []
    for path in paths:
        if ".jsonl" in path.name:
            records = read_jsonl(path)
        else:
            table = _tsv(path)
            if not table:
                raise DataError(f"{path}: empty file")
            header = table[0]
            records = [dict(zip(header, r)) for r in table[1:] if r]
        names = set(records[0]) if records else set()
        if {"gold_label", "sentence1", "sentence2"} <= names:
            fields = ("sentence1", "sentence2", "gold_label")
        elif {"premise", "hypo", "label"} <= names:
            fields = ("premise", "hypo", "label")
        else:
            raise DataError(f"{path}: not an NLI file (expected a header with gold_label, sentence1, sentence2 — or "
                            f"premise, hypo, label — got {', '.join(sorted(names)) or 'nothing'})")
        mine = [r for r in records if r.get("language", language) == language]
        if split == "test" and mine and all(not (r.get(fields[2]) or "").strip() for r in mine):
            raise _stripped(path, "every label is empty")
        for r in mine:
            label = (r.get(fields[2]) or "").strip()
            if label in NO_GOLD:
                continue
            rows.append({"premise": r[fields[0]], "hypothesis": r[fields[1]],
                         "label": NLI_LABEL_NAMES.get(label, label)})
    return rows


def _pawsx(paths, task, split, language):
    """PAWS-X x-final/<lang>/*.tsv: id, sentence1, sentence2, label (rows with another label are skipped, as the hub)."""
    rows = []
    for path in paths:
        records = list(csv.DictReader(_text(path).splitlines(), delimiter="\t"))
        if not records or not {"sentence1", "sentence2"} <= set(records[0]):
            raise DataError(f"{path}: not a PAWS-X file (expected the header id, sentence1, sentence2, label)")
        if split == "test" and all(not (r.get("label") or "").strip() for r in records):
            raise _stripped(path, "every label is empty")
        for r in records:
            if r.get("label") in ("0", "1"):
                rid = r.get("id") or ""
                rows.append({"id": int(rid) if rid.isdigit() else rid, "sentence1": r["sentence1"],
                             "sentence2": r["sentence2"], "label": int(r["label"])})
    return rows


def _xtreme_pairs(paths, task, split, language):
    """XTREME's preprocessed xnli/pawsx `<split>-<lang>.tsv`: sentence1, sentence2, label (no header); its test files
    have two columns, the label removed."""
    rows = []
    for path in paths:
        table = [r for r in _tsv(path, csv.QUOTE_MINIMAL) if r]
        if table and all(len(r) == 2 for r in table):
            raise _stripped(path, "two columns, the label column removed")
        for line_no, r in enumerate(table, start=1):
            if len(r) != 3:
                raise DataError(f"{path}:{line_no}: expected sentence1<TAB>sentence2<TAB>label, got {len(r)} columns")
            label = NLI_LABEL_NAMES.get(r[2], r[2])
            rows.append({task.columns["text_a"]: r[0], task.columns["text_b"]: r[1],
                         task.columns["label"]: int(label) if label.isdigit() else label})
    return rows


def _token_tags(paths, task, split, language):
    """One token per line (`<lang>:token<TAB>tag` as PAN-X ships, or `token<TAB>tag`, or space-separated), a blank
    line between sentences; lines without a tag (XTREME's test files) mean the gold was stripped."""
    tokens_field, tags_field = task.columns["tokens"], task.columns["tags"]
    rows = []
    for path in paths:
        sentence, tags, untagged, lines = [], [], 0, 0

        def flush():
            if sentence:
                row = {tokens_field: list(sentence), tags_field: list(tags)}
                if tags_field == "ner_tags":
                    row["langs"] = [language] * len(sentence)  # the hub's PAN-X field
                rows.append(row)
            sentence.clear()
            tags.clear()

        for line_no, line in enumerate(_text(path).splitlines(), start=1):
            line = line.rstrip()
            if not line or line.startswith("-DOCSTART-"):
                flush()
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            lines += 1
            token = fields[0]
            if token.startswith(f"{language}:"):
                token = token[len(language) + 1:]
            if len(fields) < 2:
                untagged += 1
                continue
            if len(fields) > 2:
                raise DataError(f"{path}:{line_no}: expected token<TAB>tag, got {len(fields)} fields: {line!r}")
            sentence.append(token)
            tags.append(fields[1])
        flush()
        if untagged and untagged == lines:
            raise _stripped(path, "no line has a tag")
        if untagged:
            raise DataError(f"{path}: {untagged} of {lines} token lines have no tag (expected token<TAB>tag)")
    return rows


def _conllu(paths, task, split, language):
    """CoNLL-U (universaldependencies.org/format.html): `#` comments, 10 tab-separated fields per word, a blank line
    after each sentence; multiword-token ranges (1-2) and empty nodes (1.1) are skipped; FORM and UPOS are kept (the
    hub also drops words whose FORM or UPOS is `_`)."""
    tokens_field, tags_field = task.columns["tokens"], task.columns["tags"]
    rows = []
    for path in paths:
        tokens, tags = [], []
        for line_no, line in enumerate(_text(path).splitlines() + [""], start=1):
            if line.startswith("#"):
                continue
            if not line.strip():
                if tokens:
                    rows.append({tokens_field: tokens, tags_field: tags})
                tokens, tags = [], []
                continue
            fields = line.split("\t")
            if len(fields) != 10:
                raise DataError(f"{path}:{line_no}: a CoNLL-U word line has 10 tab-separated fields, got {len(fields)}")
            if "-" in fields[0] or "." in fields[0] or fields[1] == "_" or fields[3] == "_":
                continue
            tokens.append(fields[1])
            tags.append(fields[3])
    return rows


def _tatoeba(paths, task, split, language):
    """LASER's Tatoeba test sets: line i of tatoeba.<iso3>-eng.<iso3> translates line i of tatoeba.<iso3>-eng.eng."""
    source = paths[0]
    target = source.with_name(source.name.rsplit(".", 1)[0] + ".eng")
    if not target.is_file():
        raise DataError(f"missing file: {target} (the English side of {source.name}, line-aligned)")
    src, trg = _text(source).splitlines(), _text(target).splitlines()
    if len(src) != len(trg):
        raise DataError(f"{source} has {len(src)} lines but {target.name} has {len(trg)}: they must be line-aligned")
    iso3 = TATOEBA_LANGUAGES[language]
    return [{"source_sentence": s, "target_sentence": t, "source_lang": iso3, "target_lang": "eng"}
            for s, t in zip(src, trg)]


def _xtreme_tatoeba(paths, task, split, language):
    raise _stripped(paths[0], "XTREME sorts the English side of <l>-en.en, so line i no longer translates line i; "
                              "use LASER's tatoeba.<iso3>-eng.{<iso3>,eng}")


def _code(paths, task, split, language):
    rows = [row for path in paths for row in read_jsonl(path)]
    if task.columns.get("program_language") == "language":  # MBXP: one file per programming language
        rows = [r for r in rows if r.get("language", language) == language]
    if split == "test" and rows and all(not r.get("test") for r in rows):
        raise _stripped(paths[0], "no problem has a test")
    return rows


MBPP_TASK_IDS = {"train": range(601, 975), "validation": range(511, 601), "test": range(11, 511)}  # MBPP's README


def _mbpp(paths, task, split, language):
    return [r for r in _code(paths, task, split, language) if r.get("task_id") in MBPP_TASK_IDS[split]]


def _bucc(paths, task, split, language) -> list[dict]:
    """BUCC 2018 (comparable.limsi.fr/bucc2018): `<l>-en.<part>.<l>` and `.en` hold `id<TAB>sentence`, `.gold`
    `source_id<TAB>target_id`. Returns mining rows (id, side, sentence) plus the gold as `partner` on sources."""
    source = paths[0]
    stem = source.name.rsplit(".", 1)[0]
    target, gold = source.with_name(stem + ".en"), source.with_name(stem + ".gold")
    if not target.is_file():
        raise DataError(f"missing file: {target} (the English sentences beside {source.name})")
    if not gold.is_file():
        raise _stripped(source, f"no {gold.name} beside it: BUCC's test gold is not public and XTREME deletes "
                                f"*test.gold; XTREME's test split is BUCC's training set, {language}-en.training.*")
    rows = []
    for side, path in (("source", source), ("target", target)):
        for line_no, line in enumerate(_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{path}:{line_no}: expected id<TAB>sentence, got {len(parts)} fields")
            rows.append({"id": parts[0], "side": side, "sentence": parts[1], "line": line_no, "file": path})
    ids = {(r["id"], r["side"]) for r in rows}
    partner = {}
    for line_no, line in enumerate(_text(gold).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{gold}:{line_no}: expected source_id<TAB>target_id, got {line!r}")
        for pair_id, side in zip(parts, ("source", "target")):
            if (pair_id, side) not in ids:
                raise DataError(f"{gold}:{line_no}: {side} id {pair_id!r} is not in {(source if side == 'source' else target).name}")
        partner[parts[0]] = parts[1]
    if not partner:
        raise _stripped(source, f"{gold.name} is empty")
    for r in rows:
        r["partner"] = partner.get(r["id"]) if r["side"] == "source" else None
    return rows


# ---- what each task's files are called -------------------------------------------------------------------------

def _e(pattern: str) -> str:
    return re.escape(pattern)


def expectations(task: Task, split: str, language: str) -> list[Expect]:
    """The official files that hold `split` of `task` in `language`, most original first ([] when none is known)."""
    s, lang, name = SPLIT_NAMES.get(split, split), language, task.name
    xtreme = [Expect(f"{name}/{s}-{lang}.tsv", rf"[^/]+/{_e(s)}-{_e(lang)}\.tsv", _xtreme_pairs, within=(name,))]
    if name in ("squad", "squad_v2"):
        version = "v1.1" if name == "squad" else "v2.0"
        file = f"{'train' if split == 'train' else 'dev'}-{version}.json"
        return [Expect(file, rf"[^/]+/{_e(file)}", _squad)] if split in ("train", "validation") else []
    if name == "xquad" and split == "test":
        return [Expect(f"xquad.{lang}.json", rf"[^/]+/xquad\.{_e(lang)}\.json", _squad)]
    if name == "mlqa" and split in ("test", "validation"):
        file = f"{s}-context-{lang}-question-{lang}.json"
        return [Expect(file, rf"[^/]+/{_e(file)}", _squad)]
    if name == "tydiqa":
        full = TYDIQA_LANGUAGES[lang]
        if split == "train":
            return [Expect("tydiqa-goldp-v1.1-train.json", r"[^/]+/tydiqa-goldp-v1\.1-train\.json", _tydiqa_all),
                    Expect(f"tydiqa.goldp.{lang}.train.json", rf"[^/]+/tydiqa(\.goldp)?\.{_e(lang)}\.train\.json",
                           _squad)]
        return [Expect("tydiqa-goldp-v1.1-dev.json", r"[^/]+/tydiqa-goldp-v1\.1-dev\.json", _tydiqa_all),
                Expect(f"tydiqa-goldp-dev-{full}.json", rf"[^/]+/tydiqa-goldp-dev-{_e(full)}\.json", _squad),
                Expect(f"tydiqa.goldp.{lang}.dev.json", rf"[^/]+/tydiqa(\.goldp)?\.{_e(lang)}\.dev\.json", _squad)]
    if name == "xnli":
        if split == "train":
            original = Expect(f"multinli.train.{lang}.tsv", rf"[^/]+/multinli\.train\.{_e(lang)}\.tsv", _nli)
        else:
            original = Expect(f"xnli.{s}.tsv", rf"[^/]+/xnli\.{_e(s)}\.tsv", _nli)
        return [original] + xtreme
    if name == "mnli" and split in ("train", "validation"):
        part = "train" if split == "train" else "dev_matched"
        return [Expect(f"multinli_1.0_{part}.txt", rf"[^/]+/multinli_1\.0_{part}\.(txt|jsonl)", _nli),
                Expect(f"MNLI/{part}.tsv", rf"MNLI/{part}\.tsv", _nli)]
    if name == "snli" and split in ("train", "validation"):
        return [Expect(f"snli_1.0_{s}.txt", rf"[^/]+/snli_1\.0_{_e(s)}\.(txt|jsonl)", _nli)]
    if name == "pawsx":
        file = {"train": "train", "validation": "dev_2k", "test": "test_2k"}[split]
        return [Expect(f"x-final/{lang}/{file}.tsv", rf"{_e(lang)}/{file}\.tsv", _pawsx)] + xtreme
    if name == "panx":
        return [Expect(f"{lang}-{s}", rf"[^/]+/{_e(lang)}-{_e(s)}", _token_tags),
                Expect(f"{lang}/{s}", rf"{_e(lang)}/{_e(s)}", _token_tags, within=("panx", "panx_dataset")),
                Expect(f"panx/{s}-{lang}.tsv", rf"[^/]+/{_e(s)}-{_e(lang)}\.tsv", _token_tags, within=("panx",))]
    if name == "udpos":
        return [Expect(f"{lang}_<treebank>-ud-{s}.conllu", rf"[^/]+/{_e(lang)}_[a-z0-9]+-ud-{_e(s)}\.conllu", _conllu,
                       concat=True),
                Expect(f"udpos/{s}-{lang}.tsv", rf"[^/]+/{_e(s)}-{_e(lang)}\.tsv", _token_tags, within=("udpos",))]
    if name == "tatoeba" and split == "test":
        iso3 = TATOEBA_LANGUAGES[lang]
        return [Expect(f"tatoeba.{iso3}-eng.{iso3}", rf"[^/]+/tatoeba\.{iso3}-eng\.{iso3}", _tatoeba),
                Expect(f"tatoeba/{lang}-en.{lang}", rf"[^/]+/{_e(lang)}-en\.{_e(lang)}", _xtreme_tatoeba,
                       within=("tatoeba",))]
    if name == "bucc18" and split == "test":
        return [Expect(f"{lang}-en.training.{lang}", rf"[^/]+/{_e(lang)}-en\.training\.{_e(lang)}", _bucc),
                Expect(f"{lang}-en.test.{lang}", rf"[^/]+/{_e(lang)}-en\.test\.{_e(lang)}", _bucc)]
    if name == "humaneval" and split == "test":
        return [Expect("HumanEval.jsonl.gz", r"[^/]+/HumanEval\.jsonl(\.gz)?", _code)]
    if name == "mbxp" and split == "test":
        prefix = MBXP_FILE_PREFIXES.get(lang, lang)
        return [Expect(f"{prefix}_release_v<version>.jsonl", rf"[^/]+/{prefix}_release_v[0-9.]+\.jsonl(\.gz)?", _code)]
    if name == "mbpp" and split in MBPP_TASK_IDS:
        return [Expect("mbpp.jsonl", r"[^/]+/mbpp\.jsonl(\.gz)?", _mbpp)]
    return []


# MBXP (github.com/amazon-science/mxeval data/mbxp): one file per programming language
MBXP_FILE_PREFIXES = {"python": "mbpp", "javascript": "mbjsp", "typescript": "mbtsp", "java": "mbjp", "cpp": "mbcpp",
                      "go": "mbgp", "csharp": "mbcsp", "kotlin": "mbkp", "perl": "mbplp", "php": "mbphp",
                      "ruby": "mbrbp", "scala": "mbscp", "swift": "mbswp"}


def has_official_format(task: Task) -> bool:
    return any(expectations(task, split, lang) for split in task.splits for lang in task.languages[:1])


# ---- finding the files -----------------------------------------------------------------------------------------

def _search(root: Path, task: Task) -> tuple[Path, list[Path]]:
    """(base the relative names start at, files to look at): a single file; else <root>/<task>/ when it exists,
    else everything under root."""
    if root.is_file():
        return root.parent, [root]
    folder = root / task.name if (root / task.name).is_dir() else root
    files = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_file():
            files.append(path)
            if len(files) > MAX_FILES:
                raise DataError(f"{folder}: more than {MAX_FILES} files: point `data` at the folder of the release")
    return root if root.is_dir() else root.parent, files


def _matches(expect: Expect, files: list[Path], base: Path) -> list[Path]:
    pattern = re.compile(expect.pattern)
    found = []
    for path in files:
        if not pattern.fullmatch(f"{path.parent.name}/{path.name}"):
            continue
        if expect.within:
            folders = {base.name, *path.relative_to(base).parts[:-1]} if path.is_relative_to(base) else set()
            if not folders & set(expect.within):
                continue
        if expect.read is _conllu and task_language_excluded(path):
            continue
        found.append(path)
    return found


def task_language_excluded(path: Path) -> bool:
    """UD_Arabic-NYUAD ships without its words (only `_`): the hub leaves it out, and so do we."""
    return "nyuad" in path.name.lower()


@dataclass
class OfficialSplit:
    base: Path
    rows: dict[str, list[dict]]  # language → native rows
    files: dict[str, list[Path]]  # language → the files read
    kind: str = "rows"  # "rows" (hub rows) or "mining" (BUCC: sentences with their gold partner)

    def sources(self) -> dict[str, str]:
        """{path relative to the data root: md5} of every original file read (BUCC's .en and .gold included)."""
        paths = {p for ps in self.files.values() for p in ps}
        if self.kind == "mining":
            paths |= {p.with_name(p.name.rsplit(".", 1)[0] + ext) for p in list(paths) for ext in (".en", ".gold")}
        if any(p.name.startswith("tatoeba.") for p in paths):
            paths |= {p.with_name(p.name.rsplit(".", 1)[0] + ".eng") for p in list(paths)}
        return {_relative(p, self.base): file_md5(p) for p in sorted(paths) if p.is_file()}


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def canonical_file_exists(root: Path, task: Task, split: str) -> bool:
    return root.is_dir() and any((root / task.name / f"{split}{suffix}").exists() for suffix in (".jsonl", ".parquet"))


def find_official(root: Path, task: Task, split: str, languages: tuple[str, ...]) -> OfficialSplit:
    """Read the official files of `split` in each of `languages`; a DataError names the folder and the expected
    file names when one is missing or several files could be it."""
    base, files = _search(root, task)
    where = root if root.is_file() else (root / task.name if (root / task.name).is_dir() else root)
    rows, used = {}, {}
    for lang in languages:
        expects = expectations(task, split, lang)
        chosen = None
        for expect in expects:
            found = _matches(expect, files, base)
            if len(found) > 1 and not expect.concat:
                raise DataError(f"ambiguous {task.name} {split} files for language {lang!r} in {where}: "
                                f"{', '.join(_relative(p, base) for p in found)} all match {expect.shown}: keep one")
            if found:
                chosen = (expect, found)
                break
        if chosen is None:
            names = " or ".join(e.shown for e in expects)
            canonical = "" if root.is_file() else f"{root / task.name / split}.jsonl (or .parquet), or "
            raise DataError(f"missing file: {canonical}{task.name}'s official {split} file for language {lang!r} "
                            f"({names}) in {where}")
        expect, found = chosen
        rows[lang] = expect.read(found, task, split, lang)
        used[lang] = found
        if not rows[lang]:
            raise DataError(f"{', '.join(_relative(p, base) for p in found)}: no {task.name} {split} rows for "
                            f"language {lang!r}")
    return OfficialSplit(base, rows, used, "mining" if task.name == "bucc18" else "rows")


def official_sources(root: str | Path, task: Task, split: str, languages: tuple[str, ...] | None = None) -> dict[str, str]:
    """{relative file path: md5} of the official release files a split is read from."""
    return find_official(Path(root), task, split, tuple(languages or task.split_languages(split))).sources()


def load_official(root: Path, task: Task, split: str, languages: tuple[str, ...]) -> pd.DataFrame | None:
    """The canonical table of a split read from official release files, or None when `root` is not such a root
    (it does not exist, holds <task>/<split>.jsonl|parquet, or the task has no known release format)."""
    from xstilts.kinds.base import CHECK_PREFIX, OK
    from xstilts.data.load import SOURCE_ROW, canonicalize  # load.py calls this module

    root = Path(root)
    if not root.exists() or canonical_file_exists(root, task, split):
        return None
    if not has_official_format(task):
        if root.is_file():
            raise DataError(f"{root} is a single file, but task {task.name!r} has no known release format: point "
                            f"`data` at a folder with {task.name}/{split}.jsonl (or .parquet)")
        return None
    found = find_official(root, task, split, languages)
    frames = []
    for lang, rows in found.rows.items():
        shown = ", ".join(_relative(p, found.base) for p in found.files[lang])
        if found.kind == "mining":
            frames.append(pd.DataFrame([{"id": r["id"], "language": lang, "text_a": r["sentence"], "side": r["side"],
                                         "label": r["partner"], SOURCE_ROW: r["line"]} for r in rows]))
            frames[-1][CHECK_PREFIX + "pair"] = OK
        else:
            frames.append(canonicalize([{**r, task.language_field: lang} for r in rows], task, split,
                                       str(found.base / shown) if len(found.files[lang]) == 1 else shown, lang,
                                       id_prefix=f"{task.name}-{lang}"))
    df = pd.concat(frames, ignore_index=True)
    if "text_b" in df:
        df["text_b"] = df["text_b"].astype("object")
    files = sorted({p for ps in found.files.values() for p in ps})
    df.attrs["source"] = str(files[0]) if len(files) == 1 else str(root)
    df.attrs["official_root"] = str(found.base)
    df.attrs["official_files"] = found.sources()
    return df
