"""Code generation with a causal LM (MBPP, HumanEval, MBXP, HumanEval-XL): prompt → completion, trained with
next-token cross-entropy on the completion only. Dev scores are teacher-forced completion token accuracy; pass@k
needs the code to run (xstilts.evaluate.generate). Eval rows carry an execution test in a programming language.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
import numpy as np
from xstilts.errors import DataError
from xstilts.kinds.base import (CHECK_PREFIX, GENERATION, IGNORE_INDEX, OK, KindSpec, Runner, TaskInfo, TrainData,
                                pad_rows, text_value)

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


# Programming languages a generation row may name: MBXP's and HumanEval-XL's (the sandbox runs a subset of them).
PROGRAM_LANGUAGES = ("python", "javascript", "typescript", "java", "cpp", "go", "csharp", "kotlin", "perl", "php",
                     "ruby", "scala", "swift")
# The fields a split needs besides the prompt — a reference completion to train on, a test to execute.
GENERATION_REQUIRED = {"train": ("completion",), "validation": ("completion", "test"), "test": ("test",)}


def completion_features(tokenizer, prompts: list[str], completions: list[str], max_length: int,
                        where: str = "") -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of prompt + completion + eos, and labels that are IGNORE_INDEX on the prompt, so the loss and the
    dev score count completion tokens only. Prompt and completion are tokenised separately, as at generation time
    (the prompt alone is the model's input there). Too long: the prompt loses tokens on the left (the end of a
    prompt is what the completion continues), the completion on the right, keeping at least half for the prompt
    when it is that long."""
    for row, completion in enumerate(completions):
        if not isinstance(completion, str) or not completion:
            raise DataError(f"{where or 'generation data'}: row {row}: field 'completion' is empty; training and "
                            f"dev rows of a generation task need a prompt and its completion")
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    completion_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    inputs, labels = [], []
    for p, c in zip(prompt_ids, completion_ids):
        c = (c + [eos])[:max_length - min(len(p), max_length // 2)]
        p = p[max(0, len(p) - (max_length - len(c))):]
        inputs.append(p + c)
        labels.append([IGNORE_INDEX] * len(p) + c)
    return inputs, labels


def completion_token_hits(run: Runner, df: pd.DataFrame, tokenizer, settings: Settings,
                          batch_size: int) -> list[tuple[int, int]]:
    """Generation's cheap dev prediction: per row, (completion tokens the model predicts right given the gold prefix,
    completion tokens), teacher-forced in one forward pass. Rows without a completion count (0, 0)."""
    rows = [i for i, c in enumerate(df["completion"]) if isinstance(c, str) and c]
    if not rows:
        return [(0, 0)] * len(df)
    ids, targets = completion_features(tokenizer, df["prompt"].iloc[rows].tolist(), df["completion"].iloc[rows].tolist(),
                                       settings.max_length)
    hits = [(0, 0)] * len(df)
    order = np.argsort([len(x) for x in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(len(ids[i]) for i in index)
        batch = pad_rows([ids[i] for i in index], width, tokenizer.pad_token_id)
        mask = (np.arange(width) < np.asarray([len(ids[i]) for i in index])[:, None]).astype(np.int64)
        predicted = run({"input_ids": batch, "attention_mask": mask})["predicted_ids"]
        gold = pad_rows([targets[i] for i in index], width, IGNORE_INDEX)[:, 1:]  # position t predicts token t + 1
        scored = gold != IGNORE_INDEX
        right = (predicted[:, :-1] == gold) & scored
        for row, i in enumerate(index):
            hits[rows[i]] = (int(right[row].sum()), int(scored[row].sum()))
    return hits


def _check_program_language(value: str | None) -> str:
    if value in PROGRAM_LANGUAGES:
        return OK
    return f"unknown programming language {value!r} (known: {', '.join(PROGRAM_LANGUAGES)})"


class GenerationSpec(KindSpec):
    name = GENERATION
    # problem id, prompt, completion (train target / canonical solution), execution test, function name,
    # programming language of the program (the natural language is the task's language dimension)
    fields = ("id", "prompt", "completion", "test", "entry_point", "program_language")
    optional_fields = ("completion", "test", "entry_point")
    # completion: reference code or None; test: None outside evaluation; prompt + completion + "\n" + test is the
    # whole program
    columns = ("prompt", "completion", "test", "entry_point", "program_language")
    text_columns = ("prompt",)
    padded_targets = True

    def canonical_row(self, row: dict, task: TaskInfo, where: str) -> dict:
        col = task.columns
        values = {name: text_value(row.get(col.get(name, ""), None), where, col.get(name, name)) for name in self.columns}
        return {**values, CHECK_PREFIX + "program_language": _check_program_language(values["program_language"])}

    def validation_text_columns(self, split: str) -> tuple[str, ...]:
        return (*self.text_columns, *GENERATION_REQUIRED.get(split, ()))

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        # targets: the completion's token ids, IGNORE_INDEX on the prompt
        return completion_features(tokenizer, df["prompt"].tolist(), df["completion"].tolist(), settings.max_length,
                                   where=f"{task.name} training data")

    def collate_arrays(self, data: TrainData, index: np.ndarray, pad_id: int,
                       width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids, _, y = super().collate_arrays(data, index, pad_id, width)
        # the mask follows the lengths: a causal LM's pad id may be its eos id
        mask = (np.arange(width) < np.asarray([data.lengths[i] for i in index])[:, None]).astype(np.int64)
        return ids, mask, y

    def loss(self, outputs, y, mask=None):
        import torch.nn.functional as F

        # position t predicts token t + 1; prompt and padding positions are IGNORE_INDEX
        return F.cross_entropy(outputs[:, :-1].float().flatten(0, 1), y[:, 1:].flatten(), ignore_index=IGNORE_INDEX)

    def runner_outputs(self, out) -> dict[str, np.ndarray]:
        # per-token logits over a whole vocabulary are large: argmax on the device
        return {"predicted_ids": out.argmax(-1).cpu().numpy()}

    def predict(self, run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
                settings: Settings, batch_size: int) -> list:
        return completion_token_hits(run, df, tokenizer, settings, batch_size)

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        # dev score: completion token accuracy (pass@k needs execution: code_eval)
        total = sum(n for _, n in predictions)
        return {"score": sum(k for k, _ in predictions) / total if total else 0.0}


SPEC = GenerationSpec()
