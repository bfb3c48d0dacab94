"""Task kinds: what a kind means, end to end, and the module-level entry points that dispatch to it.

A kind (pair classification, extractive QA, ...) is one `KindSpec`: its canonical fields and table columns, the
validation expectations it adds, its head, how it encodes, collates, computes the loss, predicts and scores, its
ONNX output names and its text-to-text form. Each kind is one module (pair.py, qa.py, ...) defining `SPEC`, named
in `_SPEC_MODULES` below. Specs are imported on first look-up and import torch only inside the methods that need
it, so the task registry (which checks a task's columns against its kind's fields) stays torch-free.

Training, dev evaluation (PyTorch) and zero-shot evaluation (onnxruntime) share this code: predictions take a
`run(inputs) -> outputs` function over numpy arrays, so the same decoding runs on either backend.

Adding a kind: one module with its `SPEC`, plus its name constant and an entry in `_SPEC_MODULES`.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol
import numpy as np
from xstilts.errors import ConfigError, DataError
from xstilts.io import shorten

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


# ---- the kind registry ----------------------------------------------------------------------------------------

PAIR = "pair_classification"
SINGLE = "single_classification"
MULTIPLE_CHOICE = "multiple_choice"
QA = "extractive_qa"
TAGGING = "tagging"
RETRIEVAL = "retrieval"
# Code generation with a causal LM: prompt → completion. Eval rows also carry an execution test (HumanEval/MBXP).
GENERATION = "generation"

# Kind name → the module whose `SPEC` defines it. Modules, not objects: looking a kind up imports only its module.
_SPEC_MODULES = {
    PAIR: "xstilts.kinds.pair",
    SINGLE: "xstilts.kinds.single",
    MULTIPLE_CHOICE: "xstilts.kinds.multiple_choice",
    QA: "xstilts.kinds.qa",
    TAGGING: "xstilts.kinds.tagging",
    RETRIEVAL: "xstilts.kinds.retrieval",
    GENERATION: "xstilts.kinds.generation",
}
KINDS = tuple(_SPEC_MODULES)
_SPECS: dict[str, KindSpec] = {}


def get_spec(kind: str) -> KindSpec:
    """The spec of a task kind (ValueError naming the kinds when there is none)."""
    spec = _SPECS.get(kind)
    if spec is None:
        if kind not in _SPEC_MODULES:
            raise ValueError(f"unknown task kind {kind!r}; kinds: {', '.join(KINDS)}")
        spec = _SPECS[kind] = importlib.import_module(_SPEC_MODULES[kind]).SPEC
    return spec


def all_specs() -> list[KindSpec]:
    return [get_spec(kind) for kind in KINDS]


# ---- shared types and helpers ---------------------------------------------------------------------------------

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

IGNORE_INDEX = -100  # target of positions the loss skips (sub-tokens after a word's first, prompt tokens)
CHECK_PREFIX = "check_"  # per-row cross-field checks: "ok" or what is wrong; dropped after validation
OK = "ok"


class TaskInfo(Protocol):
    """What a kind needs to know about a task (xstilts.tasks.registry.Task; kinds sit below tasks, so a protocol)."""

    name: str
    kind: str
    labels: tuple[str, ...]
    columns: dict[str, str]
    metric: str
    qa_normalization: str
    max_text_chars: int


def text_value(value, where: str, field: str):
    """A text field: a string, or None (the suite reports null texts with the other failures). A whitespace-only
    string is no text: it becomes "", which the suite's length expectation reports as an empty text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise DataError(f"{where}: field {field!r} must be a string, got {type(value).__name__} {shorten(value)}")
    return value if value.strip() else ""


def str_list(value, where: str, field: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {field!r} must be a list of strings, got {shorten(value)}")
    return list(value)


def label_name(value, labels: tuple[str, ...], where: str, field: str) -> str:
    """A label name or index → its name; an index outside the set stays as its string (the suite reports it)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(f"{where}: field {field!r} must be a label name or index, got {type(value).__name__} {value!r}")
    if isinstance(value, int):
        return labels[value] if 0 <= value < len(labels) else str(value)
    return value


def pad_rows(seqs: list[list[int]], width: int, value: int) -> np.ndarray:
    out = np.full((len(seqs), width), value, dtype=np.int64)
    for row, ids in enumerate(seqs):
        out[row, :len(ids)] = ids
    return out


def label_accuracy(df: pd.DataFrame, predictions: list) -> dict:
    return {"score": float(np.mean([p == g for p, g in zip(predictions, df["label"])]))}


@dataclass
class TrainData:
    """Encoded training (or dev) examples of one task: model inputs, targets and lengths for batching."""

    task: str
    kind: str
    labels: tuple[str, ...]
    inputs: list  # per example: token ids, or (grouped kinds) a list of token-id lists
    targets: list  # per example: a label index, (start, end), or per-token label ids
    lengths: list[int]


# ---- the spec -------------------------------------------------------------------------------------------------

class KindSpec:
    """What one task kind means. Subclasses set the attributes and override the hooks their kind needs; the defaults
    are those of sentence classification (one sequence, one label index, cross-entropy over [batch, labels])."""

    name: str = ""
    fields: tuple[str, ...] = ()  # canonical fields a Task's `columns` maps to native field names
    optional_fields: tuple[str, ...] = ()  # of those, the ones a native row may lack
    columns: tuple[str, ...] = ()  # the canonical table's columns after `id` and `language`
    text_columns: tuple[str, ...] = ()  # texts that must be present and at most `Task.max_text_chars` long
    labelled = False  # a declared label set: tasks must give labels; the `label` column must be in the set
    open_labels = False  # tasks may leave labels empty: the label set is the train split's (CCG)
    pair_rows = False  # a native row is a (source, target) pair: two canonical rows (the loader's pair format)
    target_trains = True  # False: target tasks are evaluated straight from the pretrained/intermediate encoder
    grouped = False  # several sequences per training example: [batch, k, seq] inputs
    model_grouped = False  # the model (and its ONNX graph) takes [batch, k, seq] inputs
    padded_targets = False  # per-token targets, padded with IGNORE_INDEX
    outputs: tuple[str, ...] = ("logits",)  # ONNX/runner output names
    per_token = False  # outputs have a sequence axis after the batch axis
    text_to_text = False  # has a prompt → completion form, for a causal LM's intermediate training

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f for f in self.fields if f not in self.optional_fields)

    # -- data ---------------------------------------------------------------------------------------------------

    def canonical_row(self, row: dict, task: TaskInfo, where: str) -> dict:
        """One native row → canonical fields (without id/language), type-checked, with the kind's check column."""
        raise NotImplementedError(f"tasks of kind {self.name!r} have no one-row canonical form")

    def validation_text_columns(self, split: str) -> tuple[str, ...]:
        return self.text_columns

    def expectations(self, gxe, task: TaskInfo, labels: tuple[str, ...], split: str) -> list:
        """The kind's great-expectations checks on a canonical split (`gxe`: great_expectations.expectations)."""
        out = []
        for col in self.validation_text_columns(split):
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
            out.append(gxe.ExpectColumnValueLengthsToBeBetween(column=col, min_value=1, max_value=task.max_text_chars))
        if self.labelled:
            out += [gxe.ExpectColumnValuesToNotBeNull(column="label"),
                    gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(labels))]
        return out

    def train_labels(self, train: pd.DataFrame) -> tuple[str, ...]:
        """An open label set, read from the train split (open_labels kinds)."""
        raise NotImplementedError(f"tasks of kind {self.name!r} declare their labels")

    # -- model --------------------------------------------------------------------------------------------------

    def new_head(self, hidden_size: int, num_labels: int, dropout: float):
        raise ConfigError(f"tasks of kind {self.name!r} have no trainable head")

    def head_forward(self, encoder, head, input_ids, attention_mask):
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return head(hidden)

    # -- training -----------------------------------------------------------------------------------------------

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        """(inputs, targets) per example, as TrainData holds them."""
        raise ValueError(f"tasks of kind {self.name!r} are not trained")

    def collate_arrays(self, data: TrainData, index: np.ndarray, pad_id: int,
                       width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input_ids, attention_mask, targets) of a batch as numpy arrays, padded to `width`."""
        if self.grouped:
            ids = np.stack([pad_rows(data.inputs[i], width, pad_id) for i in index])
        else:
            ids = pad_rows([data.inputs[i] for i in index], width, pad_id)
        mask = (ids != pad_id).astype(np.int64)
        if self.padded_targets:
            y = pad_rows([data.targets[i] for i in index], width, IGNORE_INDEX)
        else:
            y = np.asarray([data.targets[i] for i in index], dtype=np.int64)
        return ids, mask, y

    def loss(self, outputs, y, mask=None):
        import torch.nn.functional as F

        return F.cross_entropy(outputs.float(), y)

    # -- prediction and scores ----------------------------------------------------------------------------------

    def runner_outputs(self, out) -> dict[str, np.ndarray]:
        """A torch model's outputs → the runner's named numpy arrays (as the ONNX graph returns them)."""
        out = out if isinstance(out, tuple) else (out,)
        return {name: o.float().cpu().numpy() for name, o in zip(self.outputs, out)}

    def predict(self, run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
                settings: Settings, batch_size: int) -> list:
        raise ValueError(f"tasks of kind {self.name!r} have no label predictions")

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        raise ValueError(f"tasks of kind {self.name!r} have no per-row score")

    def text_to_text_pairs(self, task: TaskInfo, df: pd.DataFrame) -> tuple[list[str], list[str]]:
        """(prompts, completions) of the canonical rows (text_to_text kinds)."""
        raise NotImplementedError(self.name)


# ---- entry points: thin dispatchers over the specs --------------------------------------------------------------

def encode_train(task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer, settings: Settings) -> TrainData:
    spec = get_spec(task.kind)
    enc, targets = spec.encode(task, labels, df, tokenizer, settings)
    lengths = [max(len(x) for x in ids) if spec.grouped else len(ids) for ids in enc]
    return TrainData(task.name, task.kind, labels, enc, targets, lengths)


def collate(data: TrainData, index: np.ndarray, pad_id: int, dev, width: int | None = None, pin: bool = True):
    """Pad a batch to `width` (default: its own longest sequence, i.e. dynamic padding); returns (input_ids,
    attention_mask, targets) on `dev`. On CUDA with `pin`, the arrays go through pinned memory and are copied without
    blocking, so the host can build the next batch while the GPU works."""
    import torch

    width = width or max(data.lengths[i] for i in index)
    arrays = get_spec(data.kind).collate_arrays(data, index, pad_id, width)
    tensors = [torch.from_numpy(a) for a in arrays]
    pin = pin and dev.type == "cuda"
    if pin:
        tensors = [t.pin_memory() for t in tensors]
    return tuple(t.to(dev, non_blocking=pin) for t in tensors)


def loss(kind: str, outputs, y, mask=None):
    """The task kind's training loss. QA needs the attention `mask`: its softmax runs over real tokens only, so the
    loss does not depend on how far the batch is padded."""
    return get_spec(kind).loss(outputs, y, mask)


def torch_runner(model, task: str | None, kind: str, dev) -> Runner:
    """A Runner over a MultiTaskModel's head for `task` (or a MeanPooledEncoder when task is None)."""
    import torch

    spec = get_spec(kind)

    @torch.no_grad()
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = torch.from_numpy(inputs["input_ids"]).to(dev)
        mask = torch.from_numpy(inputs["attention_mask"]).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = model(ids, mask) if task is None else model(task, ids, mask)
        return spec.runner_outputs(out)

    return run


def run_batched(run: Runner, kind: str, sequences: list, pad_id: int, batch_size: int) -> dict[str, np.ndarray]:
    """Run over length-sorted batches (little padding); outputs in input order, per-token outputs padded to the
    longest sequence."""
    spec = get_spec(kind)
    grouped, per_token = spec.model_grouped, spec.per_token
    lengths = [max(len(s) for s in seq) if grouped else len(seq) for seq in sequences]
    order = np.argsort(lengths, kind="stable")
    width_all = max(lengths) if lengths else 0
    results: dict[str, np.ndarray] = {}
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(lengths[i] for i in index)
        if grouped:
            ids = np.stack([pad_rows(sequences[i], width, pad_id) for i in index])
        else:
            ids = pad_rows([sequences[i] for i in index], width, pad_id)
        out = run({"input_ids": ids, "attention_mask": (ids != pad_id).astype(np.int64)})
        for name, values in out.items():
            if name not in results:
                shape = (len(sequences), width_all, *values.shape[2:]) if per_token else (len(sequences), *values.shape[1:])
                results[name] = np.full(shape, -1e4 if per_token else 0.0, dtype=np.float32)
            if per_token:
                results[name][index, :width] = values
            else:
                results[name][index] = values
    return results


def predict(run: Runner, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer, settings: Settings,
            batch_size: int) -> list:
    """Predictions for each row: a label name, an answer text, or a tag list (retrieval: use `embed`)."""
    return get_spec(task.kind).predict(run, task, labels, df, tokenizer, settings, batch_size)


def score(task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
    """The task's metric on one language's rows: {"score": main value, ...the parts}. Fractions in [0, 1]."""
    return get_spec(task.kind).score(task, df, predictions, language)


def embed(run: Runner, texts: list[str], tokenizer, settings: Settings, batch_size: int) -> np.ndarray:
    from xstilts.kinds import retrieval

    return retrieval.embed(run, texts, tokenizer, settings, batch_size)


def retrieval_score(task: TaskInfo, df: pd.DataFrame, embeddings: np.ndarray) -> dict:
    """BUCC-style mining F1 (metric f1) or Tatoeba-style top-1 accuracy (metric accuracy) for one language."""
    from xstilts.kinds import retrieval

    return retrieval.retrieval_score(task, df, embeddings)


def as_generation(task: TaskInfo, df: pd.DataFrame) -> pd.DataFrame:
    """An encoder task's canonical rows as prompt → completion text (T5/FLAN style), so a causal LM can take it as an
    intermediate task: the prompt names the task and its fields, the completion is the label, choice or answer."""
    import pandas as pd

    spec = get_spec(task.kind)
    if not spec.text_to_text:
        kinds = tuple(k for k in KINDS if get_spec(k).text_to_text)
        raise ValueError(f"task {task.name!r} ({task.kind}) has no text-to-text form; text-to-text kinds: "
                         f"{', '.join(kinds)}")
    prompts, completions = spec.text_to_text_pairs(task, df)
    return pd.DataFrame({"id": [str(i) for i in range(len(df))], "prompt": prompts, "completion": completions,
                         "language": df["language"].tolist()})


# ---- names callers read from this module, derived from the specs or defined by one kind ---------------------------

_DERIVED = {
    "OUTPUTS": lambda: {k: get_spec(k).outputs for k in KINDS},  # ONNX/runner output names per kind
    "PER_TOKEN": lambda: {k: True for k in KINDS if get_spec(k).per_token},
    "GROUPED": lambda: tuple(k for k in KINDS if get_spec(k).grouped),
    # Encoder-task kinds a causal LM can train on as text → text (an English intermediate task before code generation).
    "TEXT_TO_TEXT_KINDS": lambda: tuple(k for k in KINDS if get_spec(k).text_to_text),
}
_DEFINED_BY = {"choice_pairs": MULTIPLE_CHOICE, "retrieval_pairs": RETRIEVAL, "pair_embeddings": RETRIEVAL,
               "contrastive_loss": RETRIEVAL, "retrieval_dev_score": RETRIEVAL, "CONTRASTIVE_TEMPERATURE": RETRIEVAL,
               "completion_token_hits": GENERATION}


def __getattr__(name: str):
    # Resolved on first use (PEP 562): importing the spec modules here would be circular, as they import this one.
    if name in _DERIVED:
        value = _DERIVED[name]()
    elif name in _DEFINED_BY:
        value = getattr(importlib.import_module(_SPEC_MODULES[_DEFINED_BY[name]]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
