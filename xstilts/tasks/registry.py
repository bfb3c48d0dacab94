"""The task registry: a task declares its data (hub source and native fields), its kind (which fixes the head and
the canonical columns) and its metric; components never special-case a task (jiant-style).

Adding a task means adding a `Task` here (or calling `register`) — no new component.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable
from xstilts.errors import UnknownTaskError


# Task kinds. The kind decides the canonical columns, the head, the loss, the ONNX outputs and the metric code.
PAIR = "pair_classification"
SINGLE = "single_classification"
MULTIPLE_CHOICE = "multiple_choice"
QA = "extractive_qa"
TAGGING = "tagging"
RETRIEVAL = "retrieval"
# Code generation with a causal LM: prompt → completion. Eval rows also carry an execution test (HumanEval/MBXP).
GENERATION = "generation"
KINDS = (PAIR, SINGLE, MULTIPLE_CHOICE, QA, TAGGING, RETRIEVAL, GENERATION)

# Canonical fields each kind's native rows are mapped to (`Task.columns` maps them to native field names).
KIND_FIELDS = {
    PAIR: ("text_a", "text_b", "label"),
    SINGLE: ("text_a", "label"),
    MULTIPLE_CHOICE: ("text_a", "text_b", "choices", "label"),  # context, question (optional), endings, answer index
    QA: ("text_a", "text_b", "answers"),  # question, context, {"text": [...], "answer_start": [...]}
    TAGGING: ("tokens", "tags"),
    RETRIEVAL: ("text_a", "text_b"),  # source sentence, its target-language (English) translation
    # problem id, prompt, completion (train target / canonical solution), execution test, function name,
    # programming language of the program (the natural language is the task's language dimension)
    GENERATION: ("id", "prompt", "completion", "test", "entry_point", "program_language"),
}
OPTIONAL_FIELDS = {MULTIPLE_CHOICE: ("text_b",), GENERATION: ("completion", "test", "entry_point")}
# Programming languages a generation row may name: MBXP's and HumanEval-XL's (the sandbox runs a subset of them).
PROGRAM_LANGUAGES = ("python", "javascript", "typescript", "java", "cpp", "go", "csharp", "kotlin", "perl", "php",
                     "ruby", "scala", "swift")

XNLI_LANGUAGES = ("en", "ar", "bg", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
XQUAD_LANGUAGES = ("en", "es", "de", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi")
MLQA_LANGUAGES = ("en", "es", "de", "ar", "hi", "vi", "zh")
TYDIQA_LANGUAGES = {"en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
                    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu"}  # TyDiQA ids start with the name
PANX_LANGUAGES = ("af", "ar", "bg", "bn", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "hu", "id",
                  "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms", "my", "nl", "pt", "ru", "sw", "ta", "te", "th",
                  "tl", "tr", "ur", "vi", "yo", "zh")
UDPOS_LANGUAGES = {"af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
                   "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
                   "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian",
                   "ja": "Japanese", "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese",
                   "ru": "Russian", "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish",
                   "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese"}  # google/xtreme udpos.<Name>
BUCC_LANGUAGES = ("de", "fr", "ru", "zh")
XCOPA_LANGUAGES = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")
TATOEBA_LANGUAGES = {"af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
                     "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
                     "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
                     "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
                     "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
                     "zh": "cmn"}  # google/xtreme tatoeba.<iso 639-3>


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
    # Canonical field → native field (see KIND_FIELDS), as on the hub and in local files.
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
        return self.kind != RETRIEVAL or self.role == "intermediate"

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
    needed = set(KIND_FIELDS[task.kind]) - set(OPTIONAL_FIELDS.get(task.kind, ()))
    missing = sorted(needed - set(task.columns))
    if missing:
        raise ValueError(f"task {task.name!r}: a {task.kind} task must map the field(s) {', '.join(missing)} in columns")
    if "+" in task.name or task.name == "none":
        raise ValueError(f"task name {task.name!r} is reserved: '+' joins multi-task conditions, 'none' is the baseline")
    if task.kind in (PAIR, SINGLE, MULTIPLE_CHOICE) and not task.labels:
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


# ---- the registry ---------------------------------------------------------------------------------------------

NLI_LABELS = ("entailment", "neutral", "contradiction")  # the hub's label order for XNLI, GLUE MNLI, SNLI, ANLI
PANX_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
UPOS_LABELS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
               "SCONJ", "SYM", "VERB", "X")  # google/xtreme udpos ClassLabel order
NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
SQUAD_COLUMNS = {"text_a": "question", "text_b": "context", "answers": "answers"}
PAIRS_COLUMNS = {"text_a": "source_sentence", "text_b": "target_sentence"}
XTREME = "google/xtreme"
TEST_ONLY = ("test",)

GLUE_MNLI = HubSource("nyu-mll/glue", "mnli", {"train": "train", "validation": "validation_matched"})
SNLI = HubSource("stanfordnlp/snli", "plain_text", {"train": "train", "validation": "validation"})


def _cosmosqa(row: dict) -> dict:
    return {**row, "choices": [row["answer0"], row["answer1"], row["answer2"], row["answer3"]]}


def _commonsenseqa(row: dict) -> dict:
    """Choices come as {"label": ["A".."E"], "text": [...]}, the answer as its letter."""
    choices = row["choices"]
    letters, texts = list(choices["label"]), list(choices["text"])
    key = row["answerKey"]
    return {**row, "choice_texts": texts, "answer_index": letters.index(key) if key in letters else key}


COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


def _copa(row: dict) -> dict:
    """COPA/XCOPA: two alternatives; the question (cause/effect) becomes a phrase the encoder reads with each."""
    return {**row, "choices": [row["choice1"], row["choice2"]],
            "question_text": COPA_QUESTIONS.get(row["question"], row["question"])}


COPA_COLUMNS = {"text_a": "premise", "text_b": "question_text", "choices": "choices", "label": "label"}


# ---- code tasks -------------------------------------------------------------------------------------------------

def _bool_label(row: dict, field: str) -> dict:
    """CodeXGLUE stores binary labels as booleans: False/True → label index 0/1."""
    value = row[field]
    return {**row, field: int(value)} if isinstance(value, bool) else row


def _defect(row: dict) -> dict:
    return _bool_label(row, "target")


def _clone(row: dict) -> dict:
    return _bool_label(row, "label")


def python_check_call(test: str, entry_point: str | None) -> str:
    """HumanEval-style Python tests define `check(candidate)` and leave the call to the harness: append it, so that
    prompt + completion + "\n" + test is the whole program in every language."""
    if entry_point and re.search(r"^def check\(", test, flags=re.M) and not re.search(r"^check\(", test, flags=re.M):
        return f"{test.rstrip()}\n\n\ncheck({entry_point})\n"
    return test


def _humaneval_style(row: dict, program_language_field: str | None = None, language: str = "python") -> dict:
    """HumanEval/MBXP/HumanEval-XL rows: the program language from its field (or fixed), the Python check call."""
    program_language = row.get(program_language_field, language) if program_language_field else language
    test = row.get("test")
    if isinstance(test, str) and program_language == "python":
        test = python_check_call(test, row.get("entry_point"))
    return {**row, "test": test, "program_language": program_language}


def _humaneval(row: dict) -> dict:
    return _humaneval_style(row)


def _multilingual_humaneval(row: dict) -> dict:
    return _humaneval_style(row, program_language_field="language")


def _mbpp(row: dict) -> dict:
    """MBPP (text, code, test_list, test_setup_code) → a HumanEval-like problem: the prompt is a docstring with the
    description and the first test as an example, the completion the reference code, the test its assert lines."""
    tests = [t for t in row["test_list"] if isinstance(t, str)]
    if not tests or len(tests) != len(row["test_list"]):
        raise TypeError(f"test_list must be a non-empty list of strings, got {row['test_list']!r}")
    code = row["code"].replace("\r\n", "\n").rstrip() + "\n" if isinstance(row["code"], str) else row["code"]
    text = row["text"].strip() if isinstance(row["text"], str) else row["text"]
    defined = re.findall(r"^def\s+(\w+)\s*\(", code or "", flags=re.M)
    called = [name for name in defined if re.search(rf"\b{name}\s*\(", tests[0])]
    setup = (row.get("test_setup_code") or "").replace("\r\n", "\n").strip()
    entry_point = called[0] if called else (defined[-1] if defined else None)
    # HumanEval's shape (a check function, then its call), so every Python test runs the same way
    test = (setup + "\n" if setup else "") + "\n\ndef check(candidate):\n" + "".join(f"    {t}\n" for t in tests)
    return {**row, "prompt": f'"""\n{text}\n{tests[0]}\n"""\n' if isinstance(text, str) else text,
            "completion": code, "test": python_check_call(test, entry_point), "entry_point": entry_point,
            "program_language": "python"}


GENERATION_COLUMNS = {"id": "task_id", "prompt": "prompt", "completion": "canonical_solution", "test": "test",
                      "entry_point": "entry_point", "program_language": "program_language"}
# MBXP configs the project's sandbox executes (the hub has 13: also csharp, kotlin, perl, php, ruby, scala, swift).
MBXP_LANGUAGES = ("python", "javascript", "typescript", "java", "cpp", "go")
# HumanEval-XL's 23 natural languages: our code → its split name (lower case in the parquet copy).
HUMANEVAL_XL_LANGUAGES = {"en": "english", "ru": "russian", "zh": "chinese", "de": "german", "es": "spanish",
                          "fr": "french", "it": "italian", "pt": "portuguese", "el": "greek", "hu": "hungarian",
                          "nl": "dutch", "fi": "finnish", "id": "indonesian", "tr": "turkish", "ar": "arabic",
                          "vi": "vietnamese", "bg": "bulgarian", "fa": "persian", "ms": "malay", "he": "hebrew",
                          "et": "estonian", "tl": "tagalog", "af": "afrikaans"}
# Natural languages with an intermediate HumanEval-XL task (`humaneval_xl_<code>`): the bundled sample's five.
HUMANEVAL_XL_INTERMEDIATE_LANGUAGES = ("en", "de", "es", "fr", "ru")
CODE_MAX_CHARS = 100000  # whole functions: longer than sentences


def humaneval_xl_intermediate(language: str) -> Task:
    """HumanEval-XL's Python problems with prompts in one natural language, as intermediate training data: the same
    problems in every language, so conditions differ only in the prompt's language (research question 5)."""
    return Task(f"humaneval_xl_{language}", GENERATION,
                f"HumanEval-XL Python problems with {HUMANEVAL_XL_LANGUAGES[language].capitalize()} prompts "
                f"(intermediate training data)", GENERATION_COLUMNS, None, languages=(language,),
                train_language=language, metric="pass@1", prepare=_multilingual_humaneval,
                language_field="natural_language", max_text_chars=CODE_MAX_CHARS,
                extra={"language_names": HUMANEVAL_XL_LANGUAGES},
                source_note="FloatAI/humaneval-xl (the only copy with canonical solutions) is a loading-script "
                "dataset that `datasets` >= 4 cannot run: export its python rows of this language (e.g. from "
                f"github.com/FloatAI/HumanEval-XL) to <data>/humaneval_xl_{language}/{{train,validation}}.jsonl; "
                "the problems are those of the humaneval_xl target, so evaluate these conditions on mbxp")


for _task in [
    # -- XTREME target tasks ------------------------------------------------------------------------------------
    Task("xnli", PAIR, "Cross-lingual NLI (Conneau et al. 2018)", NLI_COLUMNS,
         HubSource("facebook/xnli", "{language}", {"train": "train", "validation": "validation", "test": "test"}),
         labels=NLI_LABELS, languages=XNLI_LANGUAGES, splits=("train", "validation", "test"), role="target"),
    Task("pawsx", PAIR, "PAWS-X paraphrase identification (Yang et al. 2019)",
         {"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
         HubSource("google-research-datasets/paws-x", "{language}",
                   {"train": "train", "validation": "validation", "test": "test"}),
         labels=("different", "paraphrase"), languages=PAWSX_LANGUAGES, splits=("train", "validation", "test"),
         role="target"),
    Task("xquad", QA, "XQuAD extractive QA (Artetxe et al. 2020); trained on SQuAD v1.1", SQUAD_COLUMNS,
         HubSource("google/xquad", "xquad.{language}", {"test": "validation"}),
         languages=XQUAD_LANGUAGES, splits=("train", "validation", "test"), metric="(EM+F1)/2", train_task="squad",
         role="target"),
    Task("mlqa", QA, "MLQA extractive QA (Lewis et al. 2020); trained on SQuAD v1.1, MLQA's per-language "
         "normalisation", SQUAD_COLUMNS, HubSource("facebook/mlqa", "mlqa.{language}.{language}", {"test": "test"}),
         languages=MLQA_LANGUAGES, splits=("train", "validation", "test"), metric="(EM+F1)/2", train_task="squad",
         qa_normalization="mlqa", role="target"),
    Task("tydiqa", QA, "TyDiQA-GoldP extractive QA (Clark et al. 2020); trained on its English train split",
         SQUAD_COLUMNS, HubSource("google-research-datasets/tydiqa", "secondary_task",
                                  {"train": "train", "validation": "validation", "test": "validation"},
                                  id_prefix=TYDIQA_LANGUAGES),
         languages=tuple(TYDIQA_LANGUAGES), splits=("train", "validation", "test"), metric="(EM+F1)/2",
         role="target", source_note="the hub has no English dev split apart from the evaluation one: early stopping "
         "uses the English validation rows"),
    Task("panx", TAGGING, "PAN-X / WikiANN named entities (Pan et al. 2017)", {"tokens": "tokens", "tags": "ner_tags"},
         HubSource(XTREME, "PAN-X.{language}", {"train": "train", "validation": "validation", "test": "test"}),
         labels=PANX_LABELS, languages=PANX_LANGUAGES, splits=("train", "validation", "test"), metric="f1",
         role="target"),
    Task("udpos", TAGGING, "Universal Dependencies v2.5 part-of-speech tags", {"tokens": "tokens", "tags": "pos_tags"},
         HubSource(XTREME, "udpos.{language}", {"train": "train", "validation": "validation", "test": "test"},
                   language_names=UDPOS_LANGUAGES),
         labels=UPOS_LABELS, languages=tuple(UDPOS_LANGUAGES), splits=("train", "validation", "test"), metric="f1",
         role="target"),
    Task("bucc18", RETRIEVAL, "BUCC 2018 bitext mining (margin scoring, F1 at the best threshold)", PAIRS_COLUMNS,
         HubSource(XTREME, "bucc18.{language}", {"test": "test"}), languages=BUCC_LANGUAGES, splits=TEST_ONLY,
         metric="f1", role="target", source_note="the hub copy keeps only the gold pairs; the full mining corpora "
         "load from local files (<task>/test.jsonl sentences + test.pairs.tsv gold pairs)"),
    Task("tatoeba", RETRIEVAL, "Tatoeba sentence retrieval (nearest neighbour by cosine)", PAIRS_COLUMNS,
         HubSource(XTREME, "tatoeba.{language}", {"test": "validation"}, language_names=TATOEBA_LANGUAGES),
         languages=tuple(TATOEBA_LANGUAGES), splits=TEST_ONLY, metric="accuracy", role="target"),
    # XTREME-R's multiple-choice target (secondary here: not one of the paper's nine).
    Task("xcopa", MULTIPLE_CHOICE, "XCOPA causal commonsense reasoning (Ponti et al. 2020, XTREME-R); trained on COPA",
         COPA_COLUMNS, HubSource("cambridgeltl/xcopa", "{language}", {"test": "test"}), labels=("0", "1"),
         languages=XCOPA_LANGUAGES, splits=("train", "validation", "test"), train_task="copa", prepare=_copa,
         role="target"),
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
         HubSource("allenai/cosmos_qa", None, {"train": "train", "validation": "validation"}),
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
    # -- code: CodeXGLUE encoder tasks (intermediate) -------------------------------------------------------------
    Task("codexglue_defect", SINGLE, "CodeXGLUE defect detection (Devign: is a C function vulnerable?)",
         {"text_a": "func", "label": "target"},
         HubSource("google/code_x_glue_cc_defect_detection", None, {"train": "train", "validation": "validation"}),
         labels=("no_defect", "defect"), prepare=_defect, max_text_chars=CODE_MAX_CHARS),
    Task("codexglue_clone", PAIR, "CodeXGLUE clone detection (BigCloneBench: are two Java functions clones?)",
         {"text_a": "func1", "text_b": "func2", "label": "label"},
         HubSource("google/code_x_glue_cc_clone_detection_big_clone_bench", None,
                   {"train": "train", "validation": "validation"}),
         labels=("not_clone", "clone"), prepare=_clone, max_text_chars=CODE_MAX_CHARS),
    Task("codexglue_codesearch", RETRIEVAL, "CodeXGLUE NL code search (AdvTest: docstring → Python function), "
         "trained contrastively with in-batch negatives; dev score MRR", {"text_a": "docstring", "text_b": "code"},
         HubSource("google/code_x_glue_tc_nl_code_search_adv", None, {"train": "train", "validation": "validation"}),
         metric="mrr", language_field="natural_language", max_text_chars=CODE_MAX_CHARS),
    # -- code generation (prompt → completion, scored by executing tests) ------------------------------------------
    Task("mbpp", GENERATION, "MBPP: Mostly Basic Python Problems (prompt: description + first test; completion: "
         "reference code)", {"id": "task_id", "prompt": "prompt", "completion": "completion", "test": "test",
                             "entry_point": "entry_point", "program_language": "program_language"},
         HubSource("google-research-datasets/mbpp", "full", {"train": "train", "validation": "validation"}),
         metric="pass@1", prepare=_mbpp, max_text_chars=CODE_MAX_CHARS),
    Task("humaneval", GENERATION, "HumanEval (OpenAI): Python function completion; trained on MBPP",
         {**GENERATION_COLUMNS}, HubSource("openai/openai_humaneval", "openai_humaneval", {"test": "test"}),
         splits=("train", "validation", "test"), metric="pass@1", train_task="mbpp", prepare=_humaneval,
         max_text_chars=CODE_MAX_CHARS, role="target"),
    Task("mbxp", GENERATION, "MBXP: MBPP in many programming languages (the task's languages are programming "
         "languages); trained on English Python MBPP", {**GENERATION_COLUMNS, "program_language": "language"},
         HubSource("mxeval/mbxp", None, {"test": "test"}, revision="refs/convert/parquet", data_dir="{language}"),
         languages=MBXP_LANGUAGES, splits=("train", "validation", "test"), metric="pass@1", train_task="mbpp",
         prepare=_multilingual_humaneval, max_text_chars=CODE_MAX_CHARS, role="target",
         source_note="mxeval/mbxp is a loading-script dataset: its parquet export (refs/convert/parquet, one folder "
         "per language) is read instead"),
    Task("humaneval_xl", GENERATION, "HumanEval-XL: the same Python problems with prompts in 23 natural languages; "
         "trained on MBPP", {**GENERATION_COLUMNS, "program_language": "language"},
         HubSource("iNeil77/HumanEval-XL", "python", {"test": "{language}"}, language_names=HUMANEVAL_XL_LANGUAGES),
         languages=tuple(HUMANEVAL_XL_LANGUAGES), splits=("train", "validation", "test"), metric="pass@1",
         train_task="mbpp", prepare=_multilingual_humaneval, language_field="natural_language",
         max_text_chars=CODE_MAX_CHARS, role="target",
         source_note="FloatAI/humaneval-xl is a loading-script dataset `datasets` >= 4 cannot run; iNeil77/HumanEval-XL "
         "is its parquet copy (split per language, no canonical solutions)"),
    *[humaneval_xl_intermediate(code) for code in HUMANEVAL_XL_INTERMEDIATE_LANGUAGES],
]:
    register(_task)
