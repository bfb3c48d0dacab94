"""Single-sentence classification (sentiment, defect detection): pair classification without the second text;
the canonical table keeps an empty `text_b` column, so both kinds share one table layout."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xstilts.kinds.base import SINGLE, TaskInfo
from xstilts.kinds.pair import PairSpec

if TYPE_CHECKING:
    import pandas as pd


class SingleSpec(PairSpec):
    name = SINGLE
    fields = ("text_a", "label")
    text_columns = ("text_a",)

    def _text_b(self, row: dict, col: dict[str, str], where: str):
        return None

    def _second_texts(self, df: pd.DataFrame) -> None:
        return None

    def text_to_text_pairs(self, task: TaskInfo, df: pd.DataFrame) -> tuple[list[str], list[str]]:
        prompts = [f"Task: {task.name}\nText: {a}\nLabel:" for a in df["text_a"]]
        return prompts, [f" {label}" for label in df["label"]]


SPEC = SingleSpec()
