"""Token tagging (PAN-X NER, UD-POS, CCG supertags): the kind's spec (`TaggingSpec`) and its features, word-level
tags aligned to the first sub-token of each word.

Words are tokenized with `is_split_into_words=True` and aligned through `word_ids()`. A word can end up with no
sub-token (an empty string, a character the normalizer drops, or truncation past `max_length`): it gets no
position, and decoding fills it with `fill_label`, so each prediction has exactly one label per input word (seqeval
needs equal lengths).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
import numpy as np
from xstilts.errors import DataError
from xstilts.kinds import metrics
from xstilts.kinds.base import (CHECK_PREFIX, IGNORE_INDEX, OK, TAGGING, KindSpec, Runner, TaskInfo, label_name,
                                run_batched, str_list)
from xstilts.kinds.qa import require_fast_tokenizer

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


@dataclass
class TagFeatures:
    input_ids: list[list[int]]
    label_ids: list[list[int]] | None  # label index on the first sub-token of each word, IGNORE_INDEX elsewhere
    word_starts: list[list[int]]  # per sentence, per word: token position of its first sub-token, -1 if it has none
    n_words: list[int]


def _label_index(labels: Sequence[str]) -> dict[str, int]:
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise ValueError(f"labels contain duplicates: {list(labels)}")
    return index


def tag_features(tokenizer, tokens: list[list[str]], tags: list[list[str]] | None, labels: Sequence[str],
                 max_length: int) -> TagFeatures:
    """Tokenize pre-split sentences (truncated to max_length tokens) and, when tags are given, put each word's
    label index on its first sub-token."""
    require_fast_tokenizer(tokenizer)
    label_index = _label_index(labels)
    if max_length <= tokenizer.num_special_tokens_to_add(pair=False):
        raise ValueError(f"max_length ({max_length}) leaves no room for words next to the special tokens")
    if tags is not None:
        if len(tags) != len(tokens):
            raise ValueError(f"{len(tokens)} token sequences but {len(tags)} tag sequences")
        for i, (words, sentence_tags) in enumerate(zip(tokens, tags)):
            if len(words) != len(sentence_tags):
                raise ValueError(f"sentence {i}: {len(words)} tokens but {len(sentence_tags)} tags")
            unknown = sorted({t for t in sentence_tags if t not in label_index})
            if unknown:
                raise ValueError(f"sentence {i}: tags {unknown} are not among the labels {list(labels)}")

    words = [[str(w) for w in sentence] for sentence in tokens]
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    features = TagFeatures(input_ids=[list(ids) for ids in enc["input_ids"]],
                           label_ids=None if tags is None else [], word_starts=[], n_words=[len(w) for w in words])
    for i, ids in enumerate(features.input_ids):
        starts = [-1] * len(words[i])
        for position, word in enumerate(enc.word_ids(i)):
            if word is not None and starts[word] < 0:
                starts[word] = position
        features.word_starts.append(starts)
        if tags is not None:
            label_ids = [IGNORE_INDEX] * len(ids)
            for word, position in enumerate(starts):
                if position >= 0:
                    label_ids[position] = label_index[tags[i][word]]
            features.label_ids.append(label_ids)
    return features


def tag_decode(features: TagFeatures, logits: np.ndarray, labels: Sequence[str],
               fill_label: str = "O") -> list[list[str]]:
    """Per sentence, one label per word: the argmax at the word's first sub-token, `fill_label` for words without
    one. logits are [n_sentences, width, n_labels], padded past each sentence's length."""
    logits = np.asarray(logits)
    longest = max((len(ids) for ids in features.input_ids), default=0)
    if logits.ndim != 3 or logits.shape[0] != len(features.input_ids) or logits.shape[2] != len(labels):
        raise ValueError(f"logits must be [n_sentences={len(features.input_ids)}, width, n_labels={len(labels)}], "
                         f"got {logits.shape}")
    if logits.shape[1] < longest:
        raise ValueError(f"logits width {logits.shape[1]} is shorter than the longest sentence ({longest} tokens)")
    predictions = []
    for i, starts in enumerate(features.word_starts):
        best = logits[i].argmax(axis=-1)
        predictions.append([labels[int(best[p])] if p >= 0 else fill_label for p in starts])
    return predictions


# ---- the kind ---------------------------------------------------------------------------------------------------

def _check_tags(tokens: list[str], tags: list[str], labels: tuple[str, ...]) -> str:
    if len(tokens) != len(tags):
        return f"{len(tags)} tags for {len(tokens)} tokens"
    if not tokens:
        return "no tokens"
    unknown = sorted({t for t in tags if labels and t not in labels})
    return f"unknown tag(s) {', '.join(unknown)}" if unknown else OK


class TaggingSpec(KindSpec):
    name = TAGGING
    fields = ("tokens", "tags")
    columns = ("tokens", "tags")  # tag names
    open_labels = True
    padded_targets = True
    per_token = True

    def canonical_row(self, row: dict, task: TaskInfo, where: str) -> dict:
        col = task.columns
        tokens = str_list(row[col["tokens"]], where, col["tokens"])
        raw = row[col["tags"]]
        if not isinstance(raw, (list, tuple)):
            raise DataError(f"{where}: field {col['tags']!r} must be a list of tag names or indices, got {raw!r}")
        tags = [label_name(t, task.labels, where, col["tags"]) for t in raw]
        return {"tokens": tokens, "tags": tags, CHECK_PREFIX + "tags": _check_tags(tokens, tags, task.labels)}

    def train_labels(self, train: pd.DataFrame) -> tuple[str, ...]:
        return tuple(sorted({tag for tags in train["tags"] for tag in tags}))

    def new_head(self, hidden_size: int, num_labels: int, dropout: float):
        from xstilts.kinds.heads import TokenHead

        return TokenHead(hidden_size, num_labels, dropout)

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        feats = tag_features(tokenizer, [list(t) for t in df["tokens"]], [list(t) for t in df["tags"]], labels,
                             settings.max_length)
        return feats.input_ids, feats.label_ids

    def loss(self, outputs, y, mask=None):
        import torch.nn.functional as F

        return F.cross_entropy(outputs.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX)

    def predict(self, run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
                settings: Settings, batch_size: int) -> list:
        feats = tag_features(tokenizer, [list(t) for t in df["tokens"]], None, labels, settings.max_length)
        logits = run_batched(run, self.name, feats.input_ids, tokenizer.pad_token_id, batch_size)["logits"]
        return tag_decode(feats, logits, labels, fill_label="O" if "O" in labels else labels[0])

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        return {"score": metrics.tagging_f1([list(t) for t in df["tags"]], predictions)}


SPEC = TaggingSpec()
