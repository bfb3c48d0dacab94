"""Multiple choice (HellaSwag, COPA/XCOPA, CommonsenseQA): a context, an optional question and k choices; each
(context, [question] choice) pair is one sequence scored by a 1-logit sentence head, so examples are groups of k
sequences ([batch, k, seq]) and the logits are [batch, k]."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xstilts.kinds.base import (CHECK_PREFIX, MULTIPLE_CHOICE, OK, KindSpec, Runner, TaskInfo, label_accuracy,
                                label_name, run_batched, str_list, text_value)

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


def choice_pairs(df: pd.DataFrame) -> tuple[list[str], list[str], int]:
    """Multiple choice: (context, [question] choice) pairs, flattened example-major; returns firsts, seconds, k."""
    firsts, seconds = [], []
    k = len(df["choices"].iloc[0])
    for context, question, choices in zip(df["text_a"], df["text_b"], df["choices"]):
        for choice in choices:
            firsts.append(context)
            seconds.append(f"{question} {choice}" if isinstance(question, str) and question else choice)
    return firsts, seconds, k


class MultipleChoiceSpec(KindSpec):
    name = MULTIPLE_CHOICE
    fields = ("text_a", "text_b", "choices", "label")  # context, question (optional), endings, answer index
    optional_fields = ("text_b",)
    columns = ("text_a", "text_b", "choices", "label")  # text_b: the question or None; label: "0".."k-1"
    text_columns = ("text_a",)
    labelled = True
    grouped = True
    model_grouped = True
    text_to_text = True

    def canonical_row(self, row: dict, task: TaskInfo, where: str) -> dict:
        col = task.columns
        choices = str_list(row[col["choices"]], where, col["choices"])
        label = label_name(row[col["label"]], task.labels, where, col["label"])
        check = OK if len(choices) == len(task.labels) else f"{len(choices)} choices, expected {len(task.labels)}"
        return {"text_a": text_value(row[col["text_a"]], where, col["text_a"]),
                "text_b": text_value(row.get(col.get("text_b", ""), None), where, col.get("text_b", "text_b")),
                "choices": choices, "label": label, CHECK_PREFIX + "choices": check}

    def new_head(self, hidden_size: int, num_labels: int, dropout: float):
        from xstilts.kinds.heads import ClassificationHead

        return ClassificationHead(hidden_size, 1, dropout)  # one score per (context, choice) sequence

    def head_forward(self, encoder, head, input_ids, attention_mask):
        # [batch, choices, seq] → one score per (example, choice)
        batch, choices = input_ids.shape[:2]
        hidden = encoder(input_ids=input_ids.flatten(0, 1), attention_mask=attention_mask.flatten(0, 1)).last_hidden_state
        return head(hidden).view(batch, choices)

    def _groups(self, df: pd.DataFrame, tokenizer, settings: Settings) -> list[list[list[int]]]:
        firsts, seconds, k = choice_pairs(df)
        flat = tokenizer(firsts, seconds, truncation=True, max_length=settings.max_length)["input_ids"]
        return [flat[i * k:(i + 1) * k] for i in range(len(df))]

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        label_ids = {label: i for i, label in enumerate(labels)}
        return self._groups(df, tokenizer, settings), [label_ids[label] for label in df["label"]]

    def predict(self, run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
                settings: Settings, batch_size: int) -> list:
        logits = run_batched(run, self.name, self._groups(df, tokenizer, settings), tokenizer.pad_token_id,
                             batch_size)["logits"]
        return [labels[i] for i in logits.argmax(-1)]

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        return label_accuracy(df, predictions)

    def text_to_text_pairs(self, task: TaskInfo, df: pd.DataFrame) -> tuple[list[str], list[str]]:
        prompts, completions = [], []
        for context, question, choices, label in zip(df["text_a"], df["text_b"], df["choices"], df["label"]):
            options = "\n".join(f"{i}. {c}" for i, c in enumerate(choices))
            asked = f"\nQuestion: {question}" if isinstance(question, str) and question else ""
            prompts.append(f"Task: {task.name}\nContext: {context}{asked}\nOptions:\n{options}\nAnswer:")
            completions.append(f" {choices[int(label)]}")
        return prompts, completions


SPEC = MultipleChoiceSpec()
