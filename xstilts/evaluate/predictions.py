"""Per-example predictions: what every eval step persists next to results.json, and `xstilts score`, which recomputes
every metric from them with the metric code the eval step uses.

Layout (XTREME's style, one file per task and language), inside the eval step's results folder::

    predictions/<task>/<language>.jsonl   one JSON object per example (test-set order)
    predictions/<task>/metric.json        {"task", "kind", "metric", "languages"} (+ "k" for code generation)

Every row has "id", "prediction", "gold" and "score" (the example's own score); some kinds add what their corpus
metric needs to be recomputed and paired-tested (`ROW_FIELDS`):

- classification (pair, single, multiple choice): label names; score 1.0 / 0.0.
- extractive QA: the answer text, the gold answer texts; "exact_match", "f1" (the task's SQuAD/MLQA normalisation)
  and score = (EM + F1) / 2.
- tagging: predicted and gold tag lists; "counts" [tp, predicted, gold] entities as seqeval extracts them, so micro
  F1 over any subset of sentences is seqeval's F1 over those sentences; score = the sentence's F1 (1.0 when it has
  neither gold nor predicted entities).
- BUCC (retrieval, F1): one row per source sentence; "prediction" its partner at the threshold chosen on the *full*
  set (null below it), "gold" its gold partner or null, "counts" [tp, predicted, gold] pairs (micro F1 of the sums
  = bucc F1 at that threshold), "threshold"; "candidate", "margin", "candidate_rank": the source's mined pair
  (before the threshold) and its rank among all mined pairs, from which the threshold search reruns.
- Tatoeba (retrieval, accuracy): one row per source with a gold translation; the nearest target's id; score 1/0.
- code generation: one row per problem; "prediction" the per-sample pass/fail list, "gold" null, "n" samples,
  "correct" passing samples, score = correct / n (pass@1's estimate); pass@k recomputes from n and correct.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence
import numpy as np
from xstilts.errors import DataError, XstiltsError
from xstilts.io import atomic_write_text, read_json, read_jsonl, write_json
from xstilts.kinds import metrics
from xstilts.kinds.base import GENERATION, MULTIPLE_CHOICE, PAIR, QA, RETRIEVAL, SINGLE, TAGGING

BASE_FIELDS = ("id", "prediction", "gold", "score")
ROW_FIELDS = {
    PAIR: BASE_FIELDS,
    SINGLE: BASE_FIELDS,
    MULTIPLE_CHOICE: BASE_FIELDS,
    QA: BASE_FIELDS + ("exact_match", "f1"),
    TAGGING: BASE_FIELDS + ("counts",),
    "bucc": BASE_FIELDS + ("counts", "threshold", "candidate", "margin", "candidate_rank"),
    "tatoeba": BASE_FIELDS,
    GENERATION: BASE_FIELDS + ("n", "correct"),
}
FOLDER = "predictions"


def _layout(kind: str, metric: str) -> str:
    if kind == RETRIEVAL:
        return "bucc" if metric == "f1" else "tatoeba"
    return kind


def _f1(tp: int, predicted: int, gold: int) -> float:
    return 1.0 if predicted + gold == 0 else 2 * tp / (predicted + gold)


# ---- rows, derived alongside the eval step's metric ----------------------------------------------------------

def label_rows(task, df, predictions: Sequence, language: str) -> list[dict]:
    """Rows of the kinds scored by `kinds.score` (classification, QA, tagging)."""
    ids = [str(i) for i in df["id"]]
    if task.kind == QA:
        rows = []
        for i, prediction, answers in zip(ids, predictions, df["answer_texts"]):
            one = metrics.qa_scores({i: prediction}, {i: list(answers)}, language, task.qa_normalization)
            rows.append({"id": i, "prediction": prediction, "gold": list(answers), "score": one["score"],
                         "exact_match": one["exact_match"], "f1": one["f1"]})
        return rows
    if task.kind == TAGGING:
        rows = []
        for i, prediction, gold in zip(ids, predictions, df["tags"]):
            counts = entity_counts(list(gold), list(prediction))
            rows.append({"id": i, "prediction": list(prediction), "gold": list(gold), "score": _f1(*counts),
                         "counts": counts})
        return rows
    return [{"id": i, "prediction": p, "gold": g, "score": float(p == g)}
            for i, p, g in zip(ids, predictions, df["label"])]


def entity_counts(gold: list[str], predicted: list[str]) -> list[int]:
    """[tp, predicted, gold] entities of one sentence as seqeval's default mode counts them (per type, as sets)."""
    from seqeval.metrics.sequence_labeling import get_entities

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*seems not to be NE tag", category=UserWarning)
        true, pred = set(get_entities(list(gold))), set(get_entities(list(predicted)))
    return [len(true & pred), len(pred), len(true)]


def retrieval_rows(task, df, embeddings: np.ndarray, result: dict) -> list[dict]:
    """Rows of a retrieval language, from the embeddings the eval step scored (`result`: its retrieval_score)."""
    source = (df["side"] == "source").to_numpy()
    src_ids, trg_ids = [str(i) for i in df["id"][source]], [str(i) for i in df["id"][~source]]
    labels = [t if isinstance(t, str) else None for t in df["label"][source]]
    src_emb, trg_emb = embeddings[source], embeddings[~source]
    if task.metric == "f1":
        candidates = metrics.mine_pairs(src_emb, trg_emb, src_ids, trg_ids)
        threshold = float(result["threshold"])
        mined = {s: (t, score, rank) for rank, (s, t, score) in enumerate(candidates)}
        rows = []
        for s, gold in zip(src_ids, labels):
            t, margin, rank = mined.get(s, (None, None, None))
            prediction = t if margin is not None and margin >= threshold else None
            counts = [int(prediction is not None and prediction == gold), int(prediction is not None),
                      int(gold is not None)]
            rows.append({"id": s, "prediction": prediction, "gold": gold, "score": _f1(*counts), "counts": counts,
                         "threshold": threshold, "candidate": t, "margin": margin, "candidate_rank": rank})
        return rows
    position = {t: i for i, t in enumerate(trg_ids)}
    paired = [(i, position[t]) for i, t in enumerate(labels) if t is not None]
    rows_i, cols = (list(x) for x in zip(*paired))
    x, y = metrics._unit_rows("source", src_emb[rows_i]), metrics._unit_rows("target", trg_emb[cols])
    _, nearest = metrics._knn(x, y, 1)  # as tatoeba_accuracy: row j of y is source j's gold translation
    return [{"id": src_ids[r], "prediction": trg_ids[cols[int(n)]], "gold": trg_ids[c], "score": float(int(n) == j)}
            for j, (r, c, n) in enumerate(zip(rows_i, cols, nearest[:, 0]))]


def generation_rows(problems: Iterable[dict], samples: Iterable[dict]) -> list[dict]:
    """One row per problem from the harness's problem and sample rows."""
    passed: dict[str, list[tuple[int, bool]]] = {}
    for s in samples:
        passed.setdefault(s["task_id"], []).append((int(s["completion_index"]), bool(s["passed"])))
    return [{"id": p["task_id"], "prediction": [ok for _, ok in sorted(passed.get(p["task_id"], []))], "gold": None,
             "score": p["correct"] / p["n"], "n": p["n"], "correct": p["correct"]} for p in problems]


def write_predictions(root: Path, task, rows: dict[str, list[dict]], k: Sequence[int] | None = None,
                      metric: str | None = None) -> None:
    """`root/predictions/<task>/<language>.jsonl` per language of `rows` (in the eval's language order) and
    metric.json (root: the eval step's temporary results folder)."""
    folder = root / FOLDER / task.name
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "metric.json", {"task": task.name, "kind": task.kind, "metric": metric or task.metric,
                                        "languages": list(rows), **({"k": list(k)} if k is not None else {})})
    for language, language_rows in rows.items():
        atomic_write_text(folder / f"{language}.jsonl", "".join(json.dumps(r, ensure_ascii=False, allow_nan=False)
                                                                + "\n" for r in language_rows))


# ---- reading and rescoring -----------------------------------------------------------------------------------

def _check_row(path: Path, number: int, row: dict, fields: tuple[str, ...], seen: set) -> None:
    where = f"{path}: line {number}"
    missing = [f for f in fields if f not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)} (expected {', '.join(fields)})")
    extra = sorted(set(row) - set(fields))
    if extra:
        raise DataError(f"{where}: unexpected field(s) {', '.join(extra)} (expected {', '.join(fields)})")
    if not isinstance(row["id"], str):
        raise DataError(f"{where}: field 'id' must be a string, got {row['id']!r}")
    if row["id"] in seen:
        raise DataError(f"{where}: id {row['id']!r} is duplicated")
    seen.add(row["id"])
    score = row["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        raise DataError(f"{where}: field 'score' must be a number in [0, 1], got {score!r}")
    if "counts" in fields:
        counts = row["counts"]
        if (not isinstance(counts, list) or len(counts) != 3
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
            raise DataError(f"{where}: field 'counts' must be [tp, predicted, gold] non-negative integers, got {counts!r}")


def read_predictions(path: Path, kind: str, metric: str) -> list[dict]:
    fields = ROW_FIELDS[_layout(kind, metric)]
    seen: set[str] = set()
    rows = []
    for number, row in read_jsonl(path, numbered=True):
        _check_row(path, number, row, fields, seen)
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _where(path: Path, fn, *args):
    try:
        return fn(*args)
    except XstiltsError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise DataError(f"{path}: {e}") from None


def score_rows(task, language: str, rows: list[dict], k: Sequence[int] | None = None) -> dict:
    """{"score", ...parts} of one language, with the metric functions the eval step uses."""
    import pandas as pd
    from xstilts.kinds import base as kinds

    if task.kind == GENERATION:
        from xstilts.codeexec.harness import pass_at_k

        ks = list(k or [1])
        details = {f"pass@{kk}": float(np.mean([pass_at_k(r["n"], r["correct"], kk) for r in rows])) for kk in ks}
        details["passed_samples"] = sum(r["correct"] for r in rows)
        return {"score": details[f"pass@{ks[0]}"], **details}
    if task.kind == RETRIEVAL:
        if task.metric == "f1":
            ranked = sorted((r for r in rows if r["candidate"] is not None), key=lambda r: r["candidate_rank"])
            result = metrics.best_threshold_f1([(r["id"], r["candidate"], r["margin"]) for r in ranked],
                                               [(r["id"], r["gold"]) for r in rows if r["gold"] is not None])
            return {"score": result["f1"], "precision": result["precision"], "recall": result["recall"],
                    "threshold": result["threshold"]}
        return {"score": float(np.mean(np.asarray([r["prediction"] == r["gold"] for r in rows])))}
    df = pd.DataFrame({"id": [r["id"] for r in rows], "language": language})
    column = {QA: "answer_texts", TAGGING: "tags"}.get(task.kind, "label")
    df[column] = [r["gold"] for r in rows]
    return kinds.score(task, df, [r["prediction"] for r in rows], language)


def _task_folders(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of predictions")
    if (root / FOLDER).is_dir():
        root = root / FOLDER
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise DataError(f"{root}: no predictions/<task>/<language>.jsonl files")
    return folders


def score_predictions(root: str | Path) -> dict:
    """{task: {"kind", "metric", "scores": {language: score}, "details": {language: parts}, "average",
    "examples": {language: rows}}} recomputed from a predictions folder (or a results folder holding one)."""
    from xstilts.tasks.registry import get_task

    out: dict[str, Any] = {}
    for folder in _task_folders(Path(root)):
        files = sorted(folder.glob("*.jsonl"))
        where = files[0] if files else folder
        try:
            task = get_task(folder.name)
        except XstiltsError as e:
            raise DataError(f"{where}: {e}") from None
        meta = read_json(folder / "metric.json") if (folder / "metric.json").is_file() else {}
        if not files:
            raise DataError(f"{folder}: no <language>.jsonl files")
        order = {lang: i for i, lang in enumerate(meta.get("languages", []))}
        files.sort(key=lambda p: (order.get(p.stem, len(order)), p.stem))  # the eval's order: same float average
        missing = sorted(set(order) - {p.stem for p in files})
        if missing:
            raise DataError(f"{folder / 'metric.json'}: no predictions for language(s) {', '.join(missing)}")
        scores, details, counts = {}, {}, {}
        for path in files:
            language = path.stem
            rows = read_predictions(path, task.kind, task.metric)
            result = _where(path, score_rows, task, language, rows, meta.get("k"))
            scores[language] = float(result.pop("score"))
            details[language] = result
            counts[language] = len(rows)
        out[task.name] = {"kind": task.kind, "metric": meta.get("metric", task.metric), "scores": scores,
                          "details": details, "average": float(np.mean(list(scores.values()))), "examples": counts}
    return out


def statistic_records(kind: str, metric: str, rows: list[dict], k: Sequence[int] | None = None) -> tuple[Any, dict]:
    """(the statistics metric, {example id: record}) of one language's rows: what evaluate.statistics resamples so
    that the metric of any subset of examples is the task's metric on that subset. Tagging and BUCC: [tp, predicted,
    gold] counts summed into micro F1; code generation: each problem's unbiased pass@k (k = the first of `k`); every
    other kind: the example's own score (its mean over examples is the task's score)."""
    from xstilts.evaluate.statistics import MEAN, micro_f1

    layout = _layout(kind, metric)
    if layout in (TAGGING, "bucc"):
        return micro_f1, {r["id"]: list(r["counts"]) for r in rows}
    if layout == GENERATION:
        from xstilts.codeexec.harness import pass_at_k

        first = list(k or [1])[0]
        return MEAN, {r["id"]: pass_at_k(r["n"], r["correct"], first) for r in rows}
    return MEAN, {r["id"]: float(r["score"]) for r in rows}


def micro_f1_of(rows: Iterable[dict]) -> float:
    """Micro F1 of summed "counts" (statistics.micro_f1), for tagging and BUCC rows."""
    from xstilts.evaluate.statistics import micro_f1

    totals = np.sum([r["counts"] for r in rows], axis=0)
    value = float(micro_f1.finish(np.asarray(totals, dtype=np.float64)))
    return 0.0 if math.isnan(value) else value
