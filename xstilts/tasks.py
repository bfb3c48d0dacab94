"""The task registry: a task declares its data, head and metric; components never special-case a task.

Adding a task means adding a `Task` here (or calling `register`) — no new component.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UnknownTaskError

PAIR = "pair_classification"
SINGLE = "single_classification"
KINDS = (PAIR, SINGLE)

XNLI_LANGUAGES = ("en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")


@dataclass(frozen=True)
class HubSource:
    """Where the real data lives on the Hugging Face hub.

    `config` may contain `{language}` for datasets with one config per language (XNLI).
    `splits` maps our split names (train/validation/test) to the hub's.
    `revision` pins the dataset version; override it per run with the `hf_revision` parameter.
    """

    path: str
    config: str
    splits: dict[str, str]
    revision: str = "main"


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    description: str
    labels: tuple[str, ...]
    # Native column names for text_a (and text_b for pairs), as on the hub and in local files.
    text_columns: tuple[str, ...]
    label_column: str
    hub: HubSource
    # Languages the task is evaluated in (zero-shot); training and dev data are English.
    languages: tuple[str, ...] = ("en",)
    train_language: str = "en"
    splits: tuple[str, ...] = ("train", "validation")
    metric: str = "accuracy"
    max_text_chars: int = 2000
    extra: dict = field(default_factory=dict)

    def split_languages(self, split: str, eval_languages: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """Languages a split must contain: the test split has the evaluation languages, the rest English."""
        if split == "test":
            return tuple(eval_languages) if eval_languages else self.languages
        return (self.train_language,)

    @property
    def is_pair(self) -> bool:
        return self.kind == PAIR


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.kind not in KINDS:
        raise ValueError(f"task {task.name!r}: kind {task.kind!r} is not one of {KINDS}")
    if len(task.text_columns) != (2 if task.kind == PAIR else 1):
        raise ValueError(f"task {task.name!r}: a {task.kind} task needs {2 if task.kind == PAIR else 1} text columns")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}") from None


def all_tasks() -> list[Task]:
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def check_languages(task: Task, languages: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate a user's language selection against the task; empty means all of the task's languages."""
    if not languages:
        return task.languages
    unknown = [lang for lang in languages if lang not in task.languages]
    if unknown:
        raise UnknownTaskError(
            f"task {task.name!r} has no language(s) {', '.join(unknown)}; its languages: {', '.join(task.languages)}"
        )
    return tuple(languages)


NLI_LABELS = ("entailment", "neutral", "contradiction")  # the hub's label order for XNLI and GLUE MNLI

register(
    Task(
        name="xnli",
        kind=PAIR,
        description="Cross-lingual NLI (Conneau et al. 2018): train on English, evaluate zero-shot in 15 languages",
        labels=NLI_LABELS,
        text_columns=("premise", "hypothesis"),
        label_column="label",
        hub=HubSource("facebook/xnli", "{language}", {"train": "train", "validation": "validation", "test": "test"}),
        languages=XNLI_LANGUAGES,
        splits=("train", "validation", "test"),
    )
)
register(
    Task(
        name="mnli",
        kind=PAIR,
        description="MultiNLI (GLUE), English intermediate task",
        labels=NLI_LABELS,
        text_columns=("premise", "hypothesis"),
        label_column="label",
        hub=HubSource("nyu-mll/glue", "mnli", {"train": "train", "validation": "validation_matched"}),
    )
)
register(
    Task(
        name="sst2",
        kind=SINGLE,
        description="Stanford Sentiment Treebank (GLUE), single-sentence English intermediate task",
        labels=("negative", "positive"),
        text_columns=("sentence",),
        label_column="label",
        hub=HubSource("nyu-mll/glue", "sst2", {"train": "train", "validation": "validation"}),
    )
)
