"""Token tagging (PAN-X NER, UD-POS) features: word-level tags aligned to the first sub-token of each word.

Words are tokenized with `is_split_into_words=True` and aligned through `word_ids()`. A word can end up with no
sub-token (an empty string, a character the normalizer drops, or truncation past `max_length`): it gets no
position, and decoding fills it with `fill_label`, so each prediction has exactly one label per input word (seqeval
needs equal lengths).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import numpy as np
from xstilts.kinds.qa import require_fast_tokenizer


IGNORE_INDEX = -100


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
