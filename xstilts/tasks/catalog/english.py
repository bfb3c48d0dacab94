"""The English intermediate tasks (Phang et al. 2020): NLI, paraphrase, sentiment, QA, multiple choice and
CCG supertagging, with the row adapters their hub formats need."""

from __future__ import annotations

from xstilts.kinds.base import MULTIPLE_CHOICE, PAIR, QA, SINGLE, TAGGING
from xstilts.tasks.catalog.xtreme import (COPA_COLUMNS, GLUE_MNLI, NLI_COLUMNS, NLI_LABELS, SNLI, SQUAD_COLUMNS,
                                          _copa)
from xstilts.tasks.registry import HubSource, Task, register


def _cosmosqa(row: dict) -> dict:
    return {**row, "choices": [row["answer0"], row["answer1"], row["answer2"], row["answer3"]]}


def _commonsenseqa(row: dict) -> dict:
    """Choices come as {"label": ["A".."E"], "text": [...]}, the answer as its letter."""
    choices = row["choices"]
    letters, texts = list(choices["label"]), list(choices["text"])
    key = row["answerKey"]
    return {**row, "choice_texts": texts, "answer_index": letters.index(key) if key in letters else key}



for _task in [
    # -- English intermediate tasks (Phang et al. 2020) -----------------------------------------------------------
    Task("anli", PAIR, "ANLI R1–R3 + MNLI + SNLI (the paper's ANLI+)", NLI_COLUMNS,
         HubSource("facebook/anli", "plain_text",
                   {"train": "train_r1+train_r2+train_r3", "validation": "dev_r1+dev_r2+dev_r3"}),
         labels=NLI_LABELS, extra_train=(GLUE_MNLI, SNLI), drop_labels=(-1,)),
    Task("mnli", PAIR, "MultiNLI (GLUE)", NLI_COLUMNS, GLUE_MNLI, labels=NLI_LABELS),
    Task("snli", PAIR, "Stanford NLI", NLI_COLUMNS, SNLI, labels=NLI_LABELS, drop_labels=(-1,)),
    Task("qqp", PAIR, "Quora Question Pairs (GLUE)", {"text_a": "question1", "text_b": "question2", "label": "label"},
         HubSource("nyu-mll/glue", "qqp", {"train": "train", "validation": "validation"}),
         labels=("not_duplicate", "duplicate")),
    Task("sst2", SINGLE, "Stanford Sentiment Treebank (GLUE)", {"text_a": "sentence", "label": "label"},
         HubSource("nyu-mll/glue", "sst2", {"train": "train", "validation": "validation"}),
         labels=("negative", "positive")),
    Task("squad", QA, "SQuAD v1.1", SQUAD_COLUMNS,
         HubSource("rajpurkar/squad", "plain_text", {"train": "train", "validation": "validation"}),
         metric="(EM+F1)/2"),
    Task("squad_v2", QA, "SQuAD v2.0 (unanswerable questions point at <s>)", SQUAD_COLUMNS,
         HubSource("rajpurkar/squad_v2", "squad_v2", {"train": "train", "validation": "validation"}),
         metric="(EM+F1)/2"),
    Task("hellaswag", MULTIPLE_CHOICE, "HellaSwag commonsense sentence completion",
         {"text_a": "ctx", "choices": "endings", "label": "label"},
         HubSource("Rowan/hellaswag", None, {"train": "train", "validation": "validation"}),
         labels=("0", "1", "2", "3")),
    Task("cosmosqa", MULTIPLE_CHOICE, "Cosmos QA reading comprehension",
         {"text_a": "context", "text_b": "question", "choices": "choices", "label": "label"},
         # allenai/cosmos_qa's main branch holds only its loading script (a parquet-conversion PR is open): the hub's
         # automatic parquet export (refs/convert/parquet, <config>/<split>/0000.parquet) is read instead.
         HubSource("allenai/cosmos_qa", None, {"train": "train", "validation": "validation"},
                   revision="refs/convert/parquet", data_dir="default"),
         labels=("0", "1", "2", "3"), prepare=_cosmosqa),
    Task("commonsenseqa", MULTIPLE_CHOICE, "CommonsenseQA",
         {"text_a": "question", "choices": "choice_texts", "label": "answer_index"},
         HubSource("tau/commonsense_qa", None, {"train": "train", "validation": "validation"}),
         labels=("0", "1", "2", "3", "4"), prepare=_commonsenseqa),
    Task("copa", MULTIPLE_CHOICE, "COPA (SuperGLUE), the English training data of XCOPA", COPA_COLUMNS,
         HubSource("aps/super_glue", "copa", {"train": "train", "validation": "validation"}), labels=("0", "1"),
         prepare=_copa, drop_labels=(-1,)),
    Task("ccg", TAGGING, "CCGbank supertagging (label set taken from the train split)",
         {"tokens": "tokens", "tags": "tags"}, None, metric="f1",
         source_note="CCGbank is LDC-licensed and not on the hub: supply <data>/ccg/{train,validation}.jsonl "
         "with tokens and tags"),
]:
    register(_task)
