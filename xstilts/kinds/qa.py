"""Extractive QA (SQuAD, XQuAD, MLQA, TyDiQA): the kind's spec (`QASpec`), its features (sliding windows over long
contexts) and span decoding back to context text.

Encoding follows HF's run_qa: the question (left-stripped, cut to `max_query_length` tokens) is paired with the
context, which is windowed with `truncation="only_second"`, `stride=doc_stride` and overflowing tokens. Each window
keeps per-token character offsets into the *context* (None for question, special and padding tokens), so decoding
works on plain numpy logits from either a torch model or an onnxruntime session.

Offsets are handled defensively, because SentencePiece/Metaspace tokenizers and normalizers bend them:
  * a "▁word" piece covers the preceding space (" a"), and a lone "▁" piece may cover a space or, for the first
    word, the word's first character: decoded text is stripped of surrounding whitespace;
  * NFKC may expand a character into several pieces that all point at it ("㎏" → "k", "g"), or give a piece a span
    that starts before the previous piece's ("ﬁne" → "▁f" (0, 1), "ine" (0, 3)): a span's characters are the
    min start to the max end of its tokens;
  * NFKC composes "e" + U+0301 into "é" whose offsets cover only the "e", so the combining mark belongs to no
    token: decoded spans are extended over such uncovered combining marks.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
import numpy as np
from xstilts.errors import DataError
from xstilts.kinds import metrics
from xstilts.kinds.base import CHECK_PREFIX, OK, QA, KindSpec, Runner, TaskInfo, run_batched, str_list, text_value

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


Offset = tuple[int, int]


@dataclass
class QAFeatures:
    input_ids: list[list[int]]  # one window per entry (a long context gives several windows)
    example_index: list[int]  # window → index of its example in the input lists
    offsets: list[list[Offset | None]]  # per token: char offsets into the context; None for non-context tokens
    start_positions: np.ndarray | None  # training targets (token index in the window); 0 (<s>) = no answer here
    end_positions: np.ndarray | None


def require_fast_tokenizer(tokenizer) -> None:
    """Offsets, overflowing windows and word_ids() only exist on (Rust) fast tokenizers."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"a fast tokenizer is needed (offset mappings and word ids), got {type(tokenizer).__name__}; "
                         "load it with AutoTokenizer.from_pretrained(..., use_fast=True)")


def _first_answer(answers) -> tuple[str, int] | None:
    """(text, answer_start) of the first answer, from a list of {"text", "answer_start"} dicts or from HF datasets'
    columnar {"text": [...], "answer_start": [...]}; None when there is none (unanswerable)."""
    if answers is None:
        return None
    if isinstance(answers, Mapping):
        texts, starts = answers.get("text", []), answers.get("answer_start", [])
        return (str(texts[0]), int(starts[0])) if len(texts) else None
    if len(answers) == 0:
        return None
    return str(answers[0]["text"]), int(answers[0]["answer_start"])


def _answer_span(context: str, answer, i: int) -> tuple[int, int] | None:
    """The answer's [start, end) char span in the context without surrounding whitespace; None if unanswerable."""
    first = _first_answer(answer)
    if first is None:
        return None
    text, start = first
    end = start + len(text)
    if start < 0 or end > len(context) or context[start:end] != text:
        raise ValueError(f"example {i}: answer {text!r} is not at answer_start={start} of its context "
                         f"(found {context[max(start, 0):max(end, 0)]!r})")
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    if start == end:
        raise ValueError(f"example {i}: the answer text is empty or only whitespace; use [] for unanswerable")
    return start, end


def _truncate_questions(tokenizer, questions: list[str], max_query_length: int) -> tuple[list[str], list[int]]:
    """Cut each question (as text, at a token boundary) to at most max_query_length tokens; also return the lengths.
    The cut text is re-tokenized because a BPE prefix of a word is not always the prefix of the word's pieces."""
    encode = lambda texts: tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)  # noqa: E731
    enc = encode(questions)
    out, lengths = [], []
    for q, ids, offsets in zip(questions, enc["input_ids"], enc["offset_mapping"]):
        keep = max_query_length
        while len(ids) > max_query_length:
            q = q[:max((end for _, end in offsets[:keep]), default=0)]
            ids = encode([q])["input_ids"][0]
            keep -= 1
        out.append(q)
        lengths.append(len(ids))
    return out, lengths


def qa_features(tokenizer, questions: list[str], contexts: list[str], answers: list[list[dict]] | None,
                max_length: int, doc_stride: int, max_query_length: int = 64) -> QAFeatures:
    """Tokenize (question, context) pairs into overlapping windows of at most `max_length` tokens, with training
    targets when `answers` is given (first answer; [] = unanswerable; a window not holding the whole answer
    points at <s>)."""
    require_fast_tokenizer(tokenizer)
    n = len(questions)
    if len(contexts) != n or (answers is not None and len(answers) != n):
        raise ValueError(f"questions ({n}), contexts ({len(contexts)}) and answers "
                         f"({'None' if answers is None else len(answers)}) must have the same length")
    n_special = tokenizer.num_special_tokens_to_add(pair=True)
    if max_query_length < 1:
        raise ValueError(f"max_query_length must be >= 1, got {max_query_length}")
    if doc_stride < 0:
        raise ValueError(f"doc_stride must be >= 0, got {doc_stride}")
    if max_length <= n_special + 1:
        raise ValueError(f"max_length ({max_length}) leaves no room for question and context "
                         f"({n_special} special tokens)")
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max is not None and max_length > model_max:
        raise ValueError(f"max_length ({max_length}) exceeds the model's maximum ({model_max})")

    questions, q_lengths = _truncate_questions(tokenizer, [q.lstrip() for q in questions], max_query_length)
    for i, q_len in enumerate(q_lengths):
        room = max_length - q_len - n_special
        if doc_stride >= room:  # the tokenizer would panic (a Rust panic, not a Python exception)
            raise ValueError(f"example {i}: doc_stride ({doc_stride}) must be smaller than the room left for the "
                             f"context ({room} = max_length {max_length} - {q_len} question tokens - {n_special} "
                             "special tokens); lower doc_stride or max_query_length, or raise max_length")
    spans = None if answers is None else [_answer_span(c, a, i) for i, (c, a) in enumerate(zip(contexts, answers))]

    enc = tokenizer(questions, list(contexts), truncation="only_second", max_length=max_length, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    example_index = [int(i) for i in enc["overflow_to_sample_mapping"]]
    n_windows = len(enc["input_ids"])
    features = QAFeatures(input_ids=[list(ids) for ids in enc["input_ids"]], example_index=example_index,
                          offsets=[], start_positions=None, end_positions=None)
    for w in range(n_windows):
        features.offsets.append([(int(o[0]), int(o[1])) if s == 1 else None
                                 for o, s in zip(enc["offset_mapping"][w], enc.sequence_ids(w))])
    if spans is not None:
        starts, ends = np.zeros(n_windows, dtype=np.int64), np.zeros(n_windows, dtype=np.int64)
        for w, i in enumerate(example_index):
            first = w == 0 or example_index[w - 1] != i
            last = w == n_windows - 1 or example_index[w + 1] != i
            target = _window_target(features.offsets[w], spans[i], first, last, len(contexts[i]))
            if target is not None:
                starts[w], ends[w] = target
        features.start_positions, features.end_positions = starts, ends
    return features


def _window_target(offsets: list[Offset | None], span: tuple[int, int] | None, first: bool, last: bool,
                   context_len: int) -> tuple[int, int] | None:
    """Token positions (start, end) of the answer span when the window holds all of it, else None."""
    context_positions = [p for p, o in enumerate(offsets) if o is not None]
    if span is None or not context_positions:
        return None
    s, e = span
    # The first window starts at the context start and the last ends at its end (whatever the edge offsets say).
    window_start = 0 if first else min(offsets[p][0] for p in context_positions)
    window_end = context_len if last else max(offsets[p][1] for p in context_positions)
    if not (window_start <= s and e <= window_end):
        return None
    start = next((p for p in context_positions if offsets[p][1] > s), None)
    end = next((p for p in reversed(context_positions) if offsets[p][0] < e), None)
    if start is None or end is None or end < start:
        return None  # the answer is made of characters no token covers
    return start, end


def _covered(context: str, windows: list[list[Offset | None]]) -> np.ndarray:
    """Which context characters some token of the example covers."""
    covered = np.zeros(len(context), dtype=bool)
    for offsets in windows:
        for o in offsets:
            if o is not None:
                covered[o[0]:o[1]] = True
    return covered


def span_text(context: str, offsets: list[Offset | None], start: int, end: int,
              covered: np.ndarray | None = None) -> str:
    """The context text of tokens start..end (inclusive), without surrounding whitespace. Combining marks right
    after the span that no token covers (NFKC composed them into the previous character) are kept."""
    spans = [o for o in offsets[start:end + 1] if o is not None]
    if not spans:
        return ""
    a, b = min(o[0] for o in spans), max(o[1] for o in spans)
    if covered is not None:
        while b < len(context) and not covered[b] and unicodedata.category(context[b]).startswith("M"):
            b += 1
    return context[a:b].strip()


def qa_predict(features: QAFeatures, start_logits: np.ndarray, end_logits: np.ndarray, contexts: list[str],
               n_best: int = 20, max_answer_length: int = 30) -> list[str]:
    """Best answer text per example: over all its windows, the n_best start and n_best end context tokens, spans
    with end >= start and at most max_answer_length tokens, highest start+end logit; "" when there is none.
    Logits are [n_windows, width] (padded; positions past a window's length are ignored)."""
    start_logits, end_logits = np.asarray(start_logits, dtype=np.float64), np.asarray(end_logits, dtype=np.float64)
    n_windows = len(features.input_ids)
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape or start_logits.shape[0] != n_windows:
        raise ValueError(f"start/end logits must both be [n_windows={n_windows}, width], got "
                         f"{start_logits.shape} and {end_logits.shape}")
    longest = max((len(ids) for ids in features.input_ids), default=0)
    if start_logits.shape[1] < longest:
        raise ValueError(f"logits width {start_logits.shape[1]} is shorter than the longest window ({longest})")
    if n_best < 1 or max_answer_length < 1:
        raise ValueError(f"n_best ({n_best}) and max_answer_length ({max_answer_length}) must be >= 1")
    if features.example_index and max(features.example_index) >= len(contexts):
        raise ValueError(f"features refer to example {max(features.example_index)} but {len(contexts)} contexts given")

    candidates: list[list[tuple[float, int, int, int]]] = [[] for _ in contexts]  # (score, window, start, end)
    for w, offsets in enumerate(features.offsets):
        positions = np.array([p for p, o in enumerate(offsets) if o is not None], dtype=np.int64)
        if positions.size == 0:
            continue
        # Only context tokens compete for the n_best places (HF ranks all tokens, then drops non-context ones).
        starts = positions[np.argsort(-start_logits[w, positions], kind="stable")[:n_best]]
        ends = positions[np.argsort(-end_logits[w, positions], kind="stable")[:n_best]]
        length = ends[None, :] - starts[:, None] + 1
        scores = start_logits[w, starts][:, None] + end_logits[w, ends][None, :]
        valid_si, valid_ei = np.nonzero((length >= 1) & (length <= max_answer_length))
        best = np.argsort(-scores[valid_si, valid_ei], kind="stable")[:n_best]  # enough fallbacks for "▁"-only spans
        for si, ei in zip(valid_si[best], valid_ei[best]):
            candidates[features.example_index[w]].append((float(scores[si, ei]), w, int(starts[si]), int(ends[ei])))

    windows_of: list[list[int]] = [[] for _ in contexts]
    for w, i in enumerate(features.example_index):
        windows_of[i].append(w)
    predictions = []
    for i, context in enumerate(contexts):
        covered = None
        text = ""
        for _, w, s, e in sorted(candidates[i], key=lambda c: -c[0]):  # stable: ties keep window/rank order
            if covered is None:
                covered = _covered(context, [features.offsets[v] for v in windows_of[i]])
            text = span_text(context, features.offsets[w], s, e, covered)
            if text:  # a span of only "▁" pieces is whitespace: take the next best
                break
        predictions.append(text)
    return predictions


# ---- the kind ---------------------------------------------------------------------------------------------------

def _check_answers(texts: list[str], starts: list[int], context: str | None) -> str:
    if len(texts) != len(starts):
        return f"{len(texts)} answer texts but {len(starts)} answer_start values"
    for text, start in zip(texts, starts):
        if context is None:
            return "no context"
        if start < 0 or start + len(text) > len(context):
            return f"answer {text!r} at {start} is outside the {len(context)}-character context"
        if context[start:start + len(text)] != text:
            return f"answer {text!r} at {start} does not match the context there ({context[start:start + len(text)]!r})"
    return OK


def _answers(df: pd.DataFrame) -> list[list[dict]]:
    return [[{"text": t, "answer_start": int(s)} for t, s in zip(texts, starts)]
            for texts, starts in zip(df["answer_texts"], df["answer_starts"])]


class QASpec(KindSpec):
    name = QA
    fields = ("text_a", "text_b", "answers")  # question, context, {"text": [...], "answer_start": [...]}
    columns = ("text_a", "text_b", "answer_texts", "answer_starts")  # question, context, answers
    text_columns = ("text_a", "text_b")
    outputs = ("start_logits", "end_logits")
    per_token = True
    text_to_text = True

    def canonical_row(self, row: dict, task: TaskInfo, where: str) -> dict:
        col = task.columns
        answers = row[col["answers"]]
        if not isinstance(answers, dict) or not {"text", "answer_start"} <= set(answers):
            raise DataError(f"{where}: field {col['answers']!r} must be {{'text': [...], 'answer_start': [...]}}, "
                            f"got {answers!r}")
        texts = str_list(answers["text"], where, f"{col['answers']}.text")
        starts = answers["answer_start"]
        if not isinstance(starts, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool) for s in starts):
            raise DataError(f"{where}: field '{col['answers']}.answer_start' must be a list of integers, got {starts!r}")
        context = text_value(row[col["text_b"]], where, col["text_b"])
        return {"text_a": text_value(row[col["text_a"]], where, col["text_a"]), "text_b": context,
                "answer_texts": texts, "answer_starts": list(starts),
                CHECK_PREFIX + "answers": _check_answers(texts, list(starts), context)}

    def new_head(self, hidden_size: int, num_labels: int, dropout: float):
        from xstilts.kinds.heads import SpanHead

        return SpanHead(hidden_size, num_labels, dropout)

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        feats = qa_features(tokenizer, df["text_a"].tolist(), df["text_b"].tolist(), _answers(df), settings.max_length,
                            settings.doc_stride, settings.max_query_length)
        return feats.input_ids, list(zip(feats.start_positions.tolist(), feats.end_positions.tolist()))

    def loss(self, outputs, y, mask=None):
        import torch
        import torch.nn.functional as F

        start, end = (o.float() for o in outputs)
        if mask is not None:
            padding = mask == 0
            start = start.masked_fill(padding, torch.finfo(start.dtype).min)
            end = end.masked_fill(padding, torch.finfo(end.dtype).min)
        return (F.cross_entropy(start, y[:, 0]) + F.cross_entropy(end, y[:, 1])) / 2

    def predict(self, run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
                settings: Settings, batch_size: int) -> list:
        contexts = df["text_b"].tolist()
        feats = qa_features(tokenizer, df["text_a"].tolist(), contexts, None, settings.max_length, settings.doc_stride,
                            settings.max_query_length)
        out = run_batched(run, self.name, feats.input_ids, tokenizer.pad_token_id, batch_size)
        return qa_predict(feats, out["start_logits"], out["end_logits"], contexts,
                          max_answer_length=settings.max_answer_length)

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        ids = df["id"].tolist()
        refs = {i: list(texts) for i, texts in zip(ids, df["answer_texts"])}
        result = metrics.qa_scores(dict(zip(ids, predictions)), refs, language, task.qa_normalization)
        return {"score": result["score"], "exact_match": result["exact_match"], "f1": result["f1"]}

    def text_to_text_pairs(self, task: TaskInfo, df: pd.DataFrame) -> tuple[list[str], list[str]]:
        # question, context → the first gold answer
        prompts = [f"Task: {task.name}\nContext: {c}\nQuestion: {q}\nAnswer:" for q, c in zip(df["text_a"], df["text_b"])]
        return prompts, [f" {texts[0]}" for texts in df["answer_texts"]]


SPEC = QASpec()
