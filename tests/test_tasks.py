import os
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.errors import UnknownTaskError
from xstilts.kinds.base import KINDS, MULTIPLE_CHOICE, PAIR, QA, RETRIEVAL, SINGLE, TAGGING, get_spec
from xstilts.tasks.registry import (HubSource, Task, all_tasks, check_languages, condition_tasks, get_task, languages_for, register)

REPO = Path(__file__).resolve().parents[1]
XTREME = {"xnli": (PAIR, 15), "pawsx": (PAIR, 7), "xquad": (QA, 11), "mlqa": (QA, 7), "tydiqa": (QA, 9),
          "panx": (TAGGING, 40), "udpos": (TAGGING, 33), "bucc18": (RETRIEVAL, 4), "tatoeba": (RETRIEVAL, 36)}
PAPER_INTERMEDIATES = {"anli": PAIR, "mnli": PAIR, "qqp": PAIR, "squad": QA, "squad_v2": QA, "hellaswag": MULTIPLE_CHOICE,
                       "cosmosqa": MULTIPLE_CHOICE, "commonsenseqa": MULTIPLE_CHOICE, "sst2": SINGLE, "ccg": TAGGING}


def test_registry_has_every_xtreme_target_and_paper_intermediate():
    for name, (kind, n_languages) in XTREME.items():
        task = get_task(name)
        assert (task.kind, len(task.languages), task.role) == (kind, n_languages, "target"), name
        assert task.hub is not None and task.hub.revision
    for name, kind in PAPER_INTERMEDIATES.items():
        task = get_task(name)
        assert task.kind == kind and task.role == "intermediate" and task.languages == ("en",), name
    assert get_task("xquad").train_task == get_task("mlqa").train_task == "squad"
    assert [s.path for s in get_task("anli").extra_train] == ["nyu-mll/glue", "stanfordnlp/snli"]
    assert get_task("mlqa").qa_normalization == "mlqa" and get_task("xquad").qa_normalization == "squad"
    assert get_task("udpos").hub.config_for("de") == "udpos.German"
    assert get_task("tatoeba").hub.config_for("de") == "tatoeba.deu"
    assert {t.kind for t in all_tasks()} == set(KINDS)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UnknownTaskError, match="unknown task 'xnlii'.*known tasks: .*xnli"):
        get_task("xnlii")


def test_unknown_language_is_rejected():
    with pytest.raises(UnknownTaskError, match="no language.*klingon"):
        check_languages(get_task("xnli"), ["en", "klingon"])
    assert check_languages(get_task("xnli"), None) == get_task("xnli").languages


def test_languages_are_shared_across_targets():
    selected = languages_for([get_task("xnli"), get_task("tatoeba"), get_task("bucc18")], ["en", "de", "fr"])
    assert selected == {"xnli": ("en", "de", "fr"), "tatoeba": ("de", "fr"), "bucc18": ("de", "fr")}
    with pytest.raises(UnknownTaskError, match="no selected target task has language.*klingon"):
        languages_for([get_task("xnli"), get_task("pawsx")], ["en", "klingon"])
    with pytest.raises(UnknownTaskError, match="task 'xnli' has no language.*klingon; its languages: en, ar"):
        languages_for([get_task("xnli")], ["en", "klingon"])
    with pytest.raises(UnknownTaskError, match="bucc18 have none of the languages en, es"):
        languages_for([get_task("xnli"), get_task("bucc18")], ["en", "es"])


def test_conditions_are_tasks_or_multitask_sets():
    assert condition_tasks("none") == []
    assert [t.name for t in condition_tasks("mnli+squad+ccg")] == ["mnli", "squad", "ccg"]
    with pytest.raises(UnknownTaskError, match="unknown task 'nope'"):
        condition_tasks("mnli+nope")
    with pytest.raises(UnknownTaskError, match="distinct task names"):
        condition_tasks("mnli+mnli")
    with pytest.raises(UnknownTaskError, match="tatoeba cannot be trained on"):
        condition_tasks("tatoeba")


def test_register_rejects_inconsistent_declarations():
    with pytest.raises(ValueError, match="must map the field.*text_b"):
        register(Task("broken", PAIR, "", {"text_a": "x", "label": "y"}, HubSource("x/y", "c", {"train": "train"}),
                      labels=("a",)))
    with pytest.raises(ValueError, match="reserved"):
        register(Task("a+b", SINGLE, "", {"text_a": "x", "label": "y"}, None, labels=("a",)))
    with pytest.raises(ValueError, match="needs labels"):
        register(Task("nolabels", SINGLE, "", {"text_a": "x", "label": "y"}, None))


def test_code_tasks_are_registered_with_their_hub_sources():
    from xstilts.kinds.base import GENERATION

    assert (get_task("codexglue_defect").kind, get_task("codexglue_clone").kind,
            get_task("codexglue_codesearch").kind) == (SINGLE, PAIR, RETRIEVAL)
    assert all(get_task(n).role == "intermediate" for n in ("codexglue_defect", "codexglue_clone",
                                                              "codexglue_codesearch", "mbpp", "humaneval_xl_de"))
    assert {get_task(n).kind for n in ("mbpp", "humaneval", "mbxp", "humaneval_xl", "humaneval_xl_fr")} == {GENERATION}
    assert get_task("mbxp").languages == ("python", "javascript", "typescript", "java", "cpp", "go")
    assert get_task("mbxp").hub.data_dir_for("cpp") == "cpp" and get_task("mbxp").hub.revision == "refs/convert/parquet"
    assert get_task("humaneval_xl").hub.split_for("test", "de") == "german" and len(get_task("humaneval_xl").languages) == 23
    assert get_task("humaneval_xl").language_code("German") == "de"
    assert {get_task(n).train_task for n in ("humaneval", "mbxp", "humaneval_xl")} == {"mbpp"}
    assert get_task("humaneval_xl_ru").train_language == "ru" and get_task("humaneval_xl_ru").hub is None


def test_every_kind_has_a_spec_and_every_task_maps_its_kinds_fields():
    for kind in KINDS:
        spec = get_spec(kind)
        assert spec.name == kind and spec.fields and spec.columns, kind
        assert set(spec.optional_fields) <= set(spec.fields), kind
    with pytest.raises(ValueError, match="unknown task kind 'nope'"):
        get_spec("nope")
    for task in all_tasks():
        spec = get_spec(task.kind)
        assert set(spec.required_fields) <= set(task.columns), task.name
        assert set(task.columns) <= set(spec.fields), task.name  # no mapping of a field the kind does not read
        assert task.labels or not spec.labelled, task.name


def test_task_registry_imports_without_torch():
    # `xstilts tasks` lists the registry: the kind specs it reads must not pull in torch (seconds of start-up).
    code = ("import sys, xstilts.tasks.registry as r; r.all_tasks(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
