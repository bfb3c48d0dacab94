"""Code tasks: CodeXGLUE encoder tasks (defect and clone detection, code search) as intermediates, and code
generation (MBPP, HumanEval, MBXP, HumanEval-XL) with the adapters that turn each dataset into prompt, completion
and an executable test."""

from __future__ import annotations

import re
from xstilts.kinds.base import GENERATION, PAIR, RETRIEVAL, SINGLE
from xstilts.tasks.registry import HubSource, Task, register


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
         source_note="mxeval/mbxp is a loading-script dataset: its automatic parquet export (refs/convert/parquet, one "
         "folder per language, last refreshed in 2024) is read. Fallback when that export is gone: mxeval's release "
         "files (data/mbxp/mb<x>p_release_v*.jsonl from github.com/amazon-science/mxeval) through task_data.mbxp "
         "(read as official files); `xstilts preflight` says which applies"),
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
