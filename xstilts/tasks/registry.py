"""The task registry: a task declares its data (hub source and native fields), its kind (which fixes the head and
the canonical columns) and its metric; components never special-case a task (jiant-style).

This module holds the types and the look-ups; the tasks themselves are declared in `xstilts.tasks.catalog`
(registered when the `xstilts.tasks` package is imported). Adding a task means adding a `Task` there (or calling
`register`) — no new component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from xstilts.errors import UnknownTaskError
# Kind names live with the kind specs (xstilts.kinds); re-exported here because tasks are declared with them.
from xstilts.kinds.base import KINDS, PAIR, get_spec
from xstilts.kinds.base import GENERATION, MULTIPLE_CHOICE, QA, RETRIEVAL, SINGLE, TAGGING  # noqa: F401


@dataclass(frozen=True)
class HubSource:
    """Where the real data lives on the Hugging Face hub.

    `config` may contain `{language}`, filled from `language_names` when given (UD-POS: `udpos.German`) else with
    the code itself. `splits` maps our split names (train/validation/test) to the hub's (`+` concatenates hub splits).
    `id_prefix` selects a language's rows by id prefix when one config holds all languages (TyDiQA).
    `revision` pins the dataset version; override it per run with the `hf_revision` parameter.
    `data_dir` (may contain `{language}`) selects a folder of the repo, e.g. one language of a loading-script
    dataset's parquet export (`revision="refs/convert/parquet"`), which the `datasets` library reads as plain files.
    A split name may contain `{language}` too, for datasets with one split per language (HumanEval-XL).
    """

    path: str
    config: str | None
    splits: dict[str, str]
    revision: str = "main"
    language_names: dict[str, str] | None = None
    id_prefix: dict[str, str] | None = None
    data_dir: str | None = None

    def revision_for(self, task: str, hf_revisions: dict | None = None, hf_revision: str | None = None) -> str:
        """The revision a task's data is read at: its own pin in `hf_revisions`, else the run's `hf_revision` when
        this source has no revision of its own (it reads `main`), else the source's own (a pinned commit, or a
        branch such as `refs/convert/parquet` that a run-wide revision must never override)."""
        pinned = (hf_revisions or {}).get(task)
        if pinned:
            return pinned
        return hf_revision if hf_revision and self.revision == "main" else self.revision

    def _fill(self, template: str | None, language: str) -> str | None:
        if template is None:
            return None
        return template.format(language=(self.language_names or {}).get(language, language))

    def config_for(self, language: str) -> str | None:
        return self._fill(self.config, language)

    def data_dir_for(self, language: str) -> str | None:
        return self._fill(self.data_dir, language)

    def split_for(self, split: str, language: str) -> str:
        return self._fill(self.splits[split], language)

    def per_language(self, split: str) -> bool:
        """Whether each language is a separate load (a config, folder, split or id prefix of its own)."""
        return bool(self.id_prefix) or any("{language}" in (t or "") for t in (self.config, self.data_dir,
                                                                               self.splits.get(split)))


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    description: str
    # Canonical field → native field (the kind spec's `fields`), as on the hub and in local files.
    columns: dict[str, str]
    hub: HubSource | None  # None: no redistributable copy on the hub (e.g. CCGbank, LDC); local files only
    # Label names in the hub's index order. Tagging tasks may leave it empty: the label set is the train split's.
    labels: tuple[str, ...] = ()
    # Languages the task is evaluated in (zero-shot); training and dev data are English.
    languages: tuple[str, ...] = ("en",)
    train_language: str = "en"
    splits: tuple[str, ...] = ("train", "validation")
    metric: str = "accuracy"
    # A target task trained on another task's English data (XQuAD and MLQA train on SQuAD v1.1).
    train_task: str | None = None
    # More English training data concatenated to the hub's train split (Phang et al.'s ANLI+ = ANLI + MNLI + SNLI).
    extra_train: tuple[HubSource, ...] = ()
    # Native label values that mean "no gold label" and are dropped on load (SNLI's -1).
    drop_labels: tuple = ()
    # Row adapter applied before the column mapping, for formats a plain field rename cannot express.
    prepare: Callable[[dict], dict] | None = None
    qa_normalization: str = "squad"  # QA only: "squad" (SQuAD v1.1 evaluate) or "mlqa" (per-language)
    max_text_chars: int = 20000
    role: str = "intermediate"  # "target" (XTREME), "intermediate" (English only)
    # The row field that holds the row's (natural) language code in local multi-language files and that the hub
    # loader fills. Code datasets use `language` for the programming language, so they name another field here.
    language_field: str = "language"
    source_note: str = ""
    extra: dict = field(default_factory=dict)

    def split_languages(self, split: str, eval_languages: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """Languages a split must contain: the test split has the evaluation languages, the rest English."""
        if split == "test":
            return tuple(eval_languages) if eval_languages else self.languages
        return (self.train_language,)

    @property
    def is_pair(self) -> bool:
        return self.kind == PAIR

    @property
    def trains(self) -> bool:
        """Retrieval targets are evaluated straight from the (intermediate) encoder: no training, no train split.
        Retrieval intermediates (code search) train the encoder contrastively."""
        return get_spec(self.kind).target_trains or self.role == "intermediate"

    def language_code(self, value: str) -> str:
        """A row's language as the task's code: language names (HumanEval-XL's `German`) map to `de`."""
        known = self.extra.get("language_names") or (self.hub.language_names if self.hub else None) or {}
        names = {name.lower(): code for code, name in known.items()}
        return names.get(value.lower(), value) if isinstance(value, str) else value

    @property
    def data_task(self) -> str:
        """The task whose English train/validation splits train this one."""
        return self.train_task or self.name

    def own_splits(self) -> tuple[str, ...]:
        """Splits this task's own data provides (a target trained on another task's data has only `test`)."""
        return ("test",) if self.train_task else self.splits


_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.kind not in KINDS:
        raise ValueError(f"task {task.name!r}: kind {task.kind!r} is not one of {KINDS}")
    spec = get_spec(task.kind)  # one schema: the kind spec's canonical fields
    missing = sorted(set(spec.required_fields) - set(task.columns))
    if missing:
        raise ValueError(f"task {task.name!r}: a {task.kind} task must map the field(s) {', '.join(missing)} in columns")
    if "+" in task.name or task.name == "none":
        raise ValueError(f"task name {task.name!r} is reserved: '+' joins multi-task conditions, 'none' is the baseline")
    if spec.labelled and not task.labels:
        raise ValueError(f"task {task.name!r}: a {task.kind} task needs labels")
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
    """Validate a user's language selection against the task; empty means all of the task's languages.

    A multi-target run shares one list: languages a task lacks are skipped for that task, but a language no
    selected task has is an error (see `languages_for`)."""
    if not languages:
        return task.languages
    unknown = [lang for lang in languages if lang not in task.languages]
    if unknown:
        raise UnknownTaskError(
            f"task {task.name!r} has no language(s) {', '.join(unknown)}; its languages: {', '.join(task.languages)}"
        )
    return tuple(languages)


def languages_for(tasks: list[Task], languages: list[str] | tuple[str, ...] | None) -> dict[str, tuple[str, ...]]:
    """Per target task, the requested languages it has (all of its own when none are requested)."""
    if not languages:
        return {t.name: t.languages for t in tasks}
    if len(tasks) == 1:
        return {tasks[0].name: check_languages(tasks[0], languages)}
    everywhere = set().union(*(t.languages for t in tasks)) if tasks else set()
    unknown = [lang for lang in languages if lang not in everywhere]
    if unknown:
        raise UnknownTaskError(f"no selected target task has language(s) {', '.join(unknown)} "
                               f"(tasks: {', '.join(t.name for t in tasks)})")
    selected = {t.name: tuple(lang for lang in languages if lang in t.languages) for t in tasks}
    empty = [name for name, langs in selected.items() if not langs]
    if empty:
        raise UnknownTaskError(f"target task(s) {', '.join(empty)} have none of the languages {', '.join(languages)}")
    return selected


BASELINE = "none"
MULTITASK_SEPARATOR = "+"


def condition_tasks(condition: str) -> list[Task]:
    """The intermediate tasks of a condition: [] for `none`, one task, or a multi-task set `mnli+squad+ccg`."""
    if condition == BASELINE:
        return []
    names = [n.strip() for n in condition.split(MULTITASK_SEPARATOR)]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise UnknownTaskError(f"condition {condition!r}: a multi-task condition joins distinct task names with '+'")
    tasks = [get_task(n) for n in names]
    no_training = [t.name for t in tasks if not t.trains]
    if no_training:
        raise UnknownTaskError(f"condition {condition!r}: {', '.join(no_training)} cannot be trained on "
                               f"(retrieval tasks are evaluation only)")
    return tasks

