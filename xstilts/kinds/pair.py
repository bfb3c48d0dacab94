"""Pair classification (NLI, paraphrase, clone detection): two texts → one of the task's labels, read from the
first token by a sentence head. `single.py` is the one-text case of the same spec."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xstilts.kinds.base import (PAIR, KindSpec, Runner, TaskInfo, label_accuracy, label_name, run_batched,
                                text_value)

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


class PairSpec(KindSpec):
    name = PAIR
    fields = ("text_a", "text_b", "label")
    columns = ("text_a", "text_b", "label")  # label names, not indices
    text_columns = ("text_a", "text_b")
    labelled = True
    text_to_text = True

    def _text_b(self, row: dict, col: dict[str, str], where: str):
        return text_value(row[col["text_b"]], where, col["text_b"])

    def _second_texts(self, df: pd.DataFrame) -> list[str] | None:
        """The tokenizer's second sequence per row (None: single sentences)."""
        return df["text_b"].tolist()

    def canonical_row(self, row: dict, task: TaskInfo, where: str) -> dict:
        col = task.columns
        return {"text_a": text_value(row[col["text_a"]], where, col["text_a"]),
                "text_b": self._text_b(row, col, where),
                "label": label_name(row[col["label"]], task.labels, where, col["label"])}

    def new_head(self, hidden_size: int, num_labels: int, dropout: float):
        from xstilts.kinds.heads import ClassificationHead

        return ClassificationHead(hidden_size, num_labels, dropout)

    def _ids(self, df: pd.DataFrame, tokenizer, settings: Settings) -> list[list[int]]:
        return tokenizer(df["text_a"].tolist(), self._second_texts(df), truncation=True,
                         max_length=settings.max_length)["input_ids"]

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        label_ids = {label: i for i, label in enumerate(labels)}
        return self._ids(df, tokenizer, settings), [label_ids[label] for label in df["label"]]

    def predict(self, run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
                settings: Settings, batch_size: int) -> list:
        logits = run_batched(run, self.name, self._ids(df, tokenizer, settings), tokenizer.pad_token_id,
                             batch_size)["logits"]
        return [labels[i] for i in logits.argmax(-1)]

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        return label_accuracy(df, predictions)

    def text_to_text_pairs(self, task: TaskInfo, df: pd.DataFrame) -> tuple[list[str], list[str]]:
        prompts = [f"Task: {task.name}\nSentence 1: {a}\nSentence 2: {b}\nLabel:" for a, b in zip(df["text_a"], df["text_b"])]
        return prompts, [f" {label}" for label in df["label"]]


SPEC = PairSpec()
