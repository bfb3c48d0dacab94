"""XTREME's task metrics, reproducing the official scripts' numbers; every score is a fraction in [0, 1].

- Extractive QA: SQuAD v1.1 `evaluate-v1.1.py` (XQuAD, TyDiQA-GoldP) and MLQA `mlqa_evaluation_v1.py` (MLQA).
- Tagging (PAN-X, UDPOS): seqeval's entity F1 in its default mode, as XTREME's `run_tag.py`.
- Retrieval: Tatoeba top-1 accuracy, and BUCC bitext mining (LASER's margin scoring, as XTREME's
  `third_party/utils_retrieve.py`) with the oracle threshold of `bucc_optimize`.

tests/test_metrics_fidelity.py checks each against an independent transcription of the official script.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence
import numpy as np


_ASCII_PUNCT = frozenset(string.punctuation)


def _squad_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT


def _mlqa_punct(ch: str) -> bool:
    # MLQA's PUNCT set is string.punctuation plus every code point whose category starts with "P"; asking
    # unicodedata per character gives the same answer without building a 1.1M-entry set at import.
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


_CJK = re.compile(r"[\u4e00-\u9fa5]")  # MLQA's range: the original CJK Unified Ideographs block, not its later extensions


def _whitespace_tokens(text: str) -> list[str]:
    return text.split()


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's Chinese tokens: each CJK ideograph and each punctuation mark alone, other runs split on whitespace."""
    tokens: list[str] = []
    run: list[str] = []
    for ch in text:
        if _CJK.match(ch) or _mlqa_punct(ch):
            tokens.extend("".join(run).split())
            run = []
            tokens.append(ch)
        else:
            run.append(ch)
    tokens.extend("".join(run).split())
    return tokens


# MLQA's article patterns per answer language (None: the language has no articles to remove).
_MLQA_ARTICLES: dict[str, str | None] = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    # The official pattern is "\sال^|ال". Its first branch can never match (a "^" after consumed text), so the
    # script replaces every "ال" with a space, inside words too; so do we.
    "ar": r"ال",
    "hi": None,
    "zh": None,
}
_MLQA_MIXED_SEGMENTATION = frozenset({"zh"})
MLQA_ANSWER_LANGUAGES = tuple(_MLQA_ARTICLES)


@dataclass(frozen=True)
class _AnswerNormalizer:
    """lower -> drop punctuation -> articles to spaces -> tokens joined by single spaces (the scripts' order)."""

    is_punct: Callable[[str], bool]
    articles: re.Pattern | None
    tokenize: Callable[[str], list[str]]

    def __call__(self, text: str) -> str:
        text = "".join(ch for ch in text.lower() if not self.is_punct(ch))
        if self.articles is not None:
            text = self.articles.sub(" ", text)
        return " ".join(self.tokenize(text))


_SQUAD_NORMALIZER = _AnswerNormalizer(_squad_punct, re.compile(r"\b(a|an|the)\b"), _whitespace_tokens)
_MLQA_NORMALIZERS = {
    lang: _AnswerNormalizer(_mlqa_punct, re.compile(pattern) if pattern else None,
                            _mixed_segmentation if lang in _MLQA_MIXED_SEGMENTATION else _whitespace_tokens)
    for lang, pattern in _MLQA_ARTICLES.items()
}


def _token_f1(prediction: list[str], truth: list[str]) -> float:
    common = sum((Counter(prediction) & Counter(truth)).values())
    if common == 0:  # also when both are empty: the scripts give F1 0 there (yet exact match 1)
        return 0.0
    precision = common / len(prediction)
    recall = common / len(truth)
    return 2 * precision * recall / (precision + recall)


def _qa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
               normalize: _AnswerNormalizer) -> dict:
    if not isinstance(references, Mapping) or not isinstance(predictions, Mapping):
        raise ValueError("expected predictions {question id: answer text} and references "
                         "{question id: [gold answer texts]} as mappings")
    if not references:
        raise ValueError("references is empty: expected at least one question id with its gold answers")
    exact_total = f1_total = 0.0
    for qid, answers in references.items():
        if isinstance(answers, str) or not answers or not all(isinstance(a, str) for a in answers):
            raise ValueError(f"references[{qid!r}]: expected a non-empty list of gold answer texts, got {answers!r}")
        if qid not in predictions:
            continue  # the official scripts score an unanswered question 0 (they also print a notice)
        prediction = predictions[qid]
        if not isinstance(prediction, str):
            raise ValueError(f"predictions[{qid!r}]: expected the answer text (str), got {type(prediction).__name__}")
        predicted = normalize(prediction)
        truths = [normalize(a) for a in answers]
        exact_total += max(float(predicted == t) for t in truths)
        f1_total += max(_token_f1(predicted.split(), t.split()) for t in truths)
    n = len(references)
    exact, f1 = exact_total / n, f1_total / n
    return {"exact_match": exact, "f1": f1, "score": (exact + f1) / 2, "count": n}


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict:
    """SQuAD v1.1 exact match and token F1 over the questions in `references`; unanswered questions score 0."""
    return _qa_scores(predictions, references, _SQUAD_NORMALIZER)


def mlqa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], language: str) -> dict:
    """MLQA v1 exact match and token F1, normalising answers the way MLQA does for the answer `language`."""
    if language not in _MLQA_NORMALIZERS:
        raise ValueError(f"MLQA normalisation knows answer languages {', '.join(MLQA_ANSWER_LANGUAGES)}; "
                         f"got {language!r}")
    return _qa_scores(predictions, references, _MLQA_NORMALIZERS[language])


def qa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], language: str,
              normalization: str) -> dict:
    """`normalization` "squad" (language ignored) or "mlqa" (per-language rules)."""
    if normalization == "squad":
        return squad_scores(predictions, references)
    if normalization == "mlqa":
        return mlqa_scores(predictions, references, language)
    raise ValueError(f"normalization must be 'squad' or 'mlqa', got {normalization!r}")


# --------------------------------------------------------------------------------------------------------- tagging

def tagging_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """seqeval's micro entity F1 in its default (conlleval-like) mode, as XTREME reports for PAN-X and UDPOS."""
    if len(gold) != len(predicted):
        raise ValueError(f"expected one predicted tag sequence per gold sentence: {len(gold)} gold, "
                         f"{len(predicted)} predicted")
    if not gold:
        raise ValueError("gold is empty: expected at least one tagged sentence")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if isinstance(g, str) or isinstance(p, str):
            raise ValueError(f"sentence {i}: expected a sequence of tags, got a string")
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: expected {len(g)} predicted tags (one per gold token), got {len(p)}")
    from seqeval.metrics import f1_score

    with warnings.catch_warnings():
        # POS tags have no B-/I- prefix; seqeval warns for each such tag but scores them all the same (XTREME does).
        warnings.filterwarnings("ignore", message=".*seems not to be NE tag", category=UserWarning)
        return float(f1_score([list(s) for s in gold], [list(s) for s in predicted]))


# ------------------------------------------------------------------------------------------------------- retrieval

def _unit_rows(name: str, array: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy with L2-normalised rows (faiss normalises in place, so never the caller's array)."""
    import faiss

    a = np.asarray(array)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (one embedding per row), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one row and one column, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name}: expected numeric embeddings, got dtype {a.dtype}")
    a = np.array(a, dtype=np.float32, order="C", copy=True)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: expected finite float32 values, found NaN or infinity")
    zero = np.flatnonzero(~a.any(axis=1))
    if zero.size:
        raise ValueError(f"{name}: row {zero[0]} is all zeros; cosine similarity needs non-zero embeddings")
    faiss.normalize_L2(a)
    return a


def _same_dim(source: np.ndarray, target: np.ndarray) -> None:
    if source.shape[1] != target.shape[1]:
        raise ValueError(f"expected source and target embeddings of one dimension, got {source.shape[1]} and "
                         f"{target.shape[1]}")


def _knn(query: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product kNN; on unit rows the similarities are cosines (XTREME's knnCPU)."""
    import faiss

    index = faiss.IndexFlatIP(database.shape[1])
    index.add(database)
    return index.search(query, k)


def tatoeba_accuracy(source: np.ndarray, target: np.ndarray) -> float:
    """Fraction of source rows whose cosine nearest target row is the same row index (their gold translation)."""
    x, y = _unit_rows("source", source), _unit_rows("target", target)
    _same_dim(x, y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"expected as many target rows as source rows (row i translates row i), got "
                         f"{y.shape[0]} target and {x.shape[0]} source")
    _, nearest = _knn(x, y, 1)
    return float(np.mean(nearest[:, 0] == np.arange(x.shape[0])))


def _check_ids(name: str, ids: Sequence[str], rows: int) -> list[str]:
    ids = list(ids)
    if len(ids) != rows:
        raise ValueError(f"{name}: expected one id per embedding row ({rows}), got {len(ids)}")
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{name}: expected unique ids, {i!r} repeats")
        seen.add(i)
    return ids


_SCORINGS = ("margin", "cosine")


def mine_pairs(source: np.ndarray, target: np.ndarray, source_ids: Sequence[str], target_ids: Sequence[str],
               k: int = 4, scoring: str = "margin") -> list[tuple[str, str, float]]:
    """LASER/XTREME bitext mining ("max" retrieval): (source id, target id, score), best score first.

    Each source row's best target among its k nearest (by `scoring`) and each target row's best source are pooled,
    then taken greedily by descending score, skipping a pair whose source or target is already taken, so the result
    is one-to-one; pairs scoring <= 0 are dropped (the script's threshold 0).
    """
    if scoring not in _SCORINGS:
        raise ValueError(f"scoring must be one of {', '.join(_SCORINGS)}, got {scoring!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive number of neighbours, got {k!r}")
    x, y = _unit_rows("source", source), _unit_rows("target", target)
    _same_dim(x, y)
    source_ids = _check_ids("source_ids", source_ids, x.shape[0])
    target_ids = _check_ids("target_ids", target_ids, y.shape[0])

    x2y_sim, x2y_ind = _knn(x, y, min(int(k), y.shape[0]))  # k clipped to the rows there are, as the script does
    y2x_sim, y2x_ind = _knn(y, x, min(int(k), x.shape[0]))
    x2y_sim, y2x_sim = x2y_sim.astype(np.float64), y2x_sim.astype(np.float64)
    if scoring == "margin":
        # ratio margin: cos(x, y) over the mean of x's and y's average similarity to their k nearest neighbours
        x_mean, y_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
        fwd = x2y_sim / ((x_mean[:, None] + y_mean[x2y_ind]) / 2)
        bwd = y2x_sim / ((y_mean[:, None] + x_mean[y2x_ind]) / 2)
    else:
        fwd, bwd = x2y_sim, y2x_sim
    fwd_pick, bwd_pick = fwd.argmax(axis=1), bwd.argmax(axis=1)
    src = np.concatenate([np.arange(x.shape[0]), y2x_ind[np.arange(y.shape[0]), bwd_pick]])
    trg = np.concatenate([x2y_ind[np.arange(x.shape[0]), fwd_pick], np.arange(y.shape[0])])
    scores = np.concatenate([fwd.max(axis=1), bwd.max(axis=1)])

    pairs: list[tuple[str, str, float]] = []
    taken_src: set[int] = set()
    taken_trg: set[int] = set()
    for i in np.argsort(-scores, kind="stable"):  # stable: on equal scores forward candidates come first
        s, t = int(src[i]), int(trg[i])
        if s in taken_src or t in taken_trg:
            continue
        taken_src.add(s)
        taken_trg.add(t)
        if scores[i] > 0:
            pairs.append((source_ids[s], target_ids[t], float(scores[i])))
    return pairs


def _prf(ncorrect: int, nextracted: int, ngold: int) -> tuple[float, float, float]:
    if ncorrect == 0:
        return 0.0, 0.0, 0.0
    precision, recall = ncorrect / nextracted, ncorrect / ngold
    return precision, recall, 2 * precision * recall / (precision + recall)


def best_threshold_f1(candidates: Sequence[tuple[str, str, float]], gold: Iterable[tuple[str, str]]) -> dict:
    """XTREME's bucc_optimize then bucc_eval: the score threshold with the best F1 against `gold`, and its scores.

    Candidates are walked best score first; at the best prefix the threshold is the midpoint to the next score (its
    own score when it is the last). Scores are those of the candidates scoring >= threshold (as bucc_extract), so
    they equal the best prefix's unless scores tie there. No correct candidate: all 0 and threshold 0, as XTREME.
    A pair listed twice keeps its highest score.
    """
    gold_set: set[tuple[str, str]] = set()
    for pair in gold:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"gold: expected (source id, target id) pairs, got {pair!r}")
        gold_set.add((pair[0], pair[1]))
    if not gold_set:
        raise ValueError("gold is empty: expected at least one (source id, target id) pair")
    best: dict[tuple[str, str], float] = {}
    for row in candidates:
        if isinstance(row, str) or len(row) != 3:
            raise ValueError(f"candidates: expected (source id, target id, score) triples, got {row!r}")
        s, t, score = row
        score = float(score)
        if math.isnan(score):
            raise ValueError(f"candidates: pair ({s!r}, {t!r}) has a NaN score")
        best[(s, t)] = max(score, best.get((s, t), score))

    ranked = sorted(best.items(), key=lambda item: -item[1])  # stable: ties keep the candidates' order
    threshold, best_f1, ncorrect = 0.0, 0.0, 0
    for i, (pair, score) in enumerate(ranked):
        ncorrect += pair in gold_set
        f1 = _prf(ncorrect, i + 1, len(gold_set))[2]
        if f1 > best_f1:
            best_f1 = f1
            # XTREME reads items[i + 1] here and fails on the last candidate; we take its own score then
            threshold = (score + ranked[i + 1][1]) / 2 if i + 1 < len(ranked) else score
    extracted = [pair for pair, score in best.items() if score >= threshold]
    precision, recall, f1 = _prf(len(gold_set.intersection(extracted)), len(extracted), len(gold_set))
    return {"f1": f1, "precision": precision, "recall": recall, "threshold": float(threshold)}


def bucc_f1(source: np.ndarray, target: np.ndarray, source_ids: Sequence[str], target_ids: Sequence[str],
            gold_pairs: Iterable[tuple[str, str]], k: int = 4, scoring: str = "margin") -> dict:
    """BUCC: mine_pairs, then best_threshold_f1 against `gold_pairs` (ids must be among source_ids/target_ids)."""
    gold_pairs = list(gold_pairs)
    known_src, known_trg = set(source_ids), set(target_ids)
    for pair in gold_pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"gold_pairs: expected (source id, target id) pairs, got {pair!r}")
        if pair[0] not in known_src:
            raise ValueError(f"gold pair {tuple(pair)!r}: source id {pair[0]!r} is not among source_ids")
        if pair[1] not in known_trg:
            raise ValueError(f"gold pair {tuple(pair)!r}: target id {pair[1]!r} is not among target_ids")
    candidates = mine_pairs(source, target, source_ids, target_ids, k=k, scoring=scoring)
    return best_threshold_f1(candidates, gold_pairs)


# ------------------------------------------------------------------------------------------------------- benchmark

def xtreme_average(scores: Mapping[str, Mapping[str, float]]) -> float:
    """XTREME's headline number: the mean over tasks of each task's mean over its languages (fractions)."""
    if not scores:
        raise ValueError("scores is empty: expected {task: {language: score}}")
    task_means = []
    for task, per_language in scores.items():
        if not isinstance(per_language, Mapping) or not per_language:
            raise ValueError(f"scores[{task!r}]: expected a non-empty {{language: score}} mapping")
        for language, value in per_language.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value <= 1:
                raise ValueError(f"scores[{task!r}][{language!r}]: expected a fraction in [0, 1], got {value!r}")
        task_means.append(sum(float(v) for v in per_language.values()) / len(per_language))
    return sum(task_means) / len(task_means)
