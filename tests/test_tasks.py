import pytest

from xstilts.errors import UnknownTaskError
from xstilts.tasks import PAIR, SINGLE, HubSource, Task, all_tasks, check_languages, get_task, register


def test_registry_declares_foundation_tasks():
    names = {t.name for t in all_tasks()}
    assert {"xnli", "mnli", "sst2"} <= names
    xnli = get_task("xnli")
    assert xnli.kind == PAIR and xnli.metric == "accuracy" and len(xnli.languages) == 15
    assert xnli.hub.path == "facebook/xnli" and xnli.hub.revision
    assert get_task("sst2").kind == SINGLE and get_task("mnli").hub.path == "nyu-mll/glue"


def test_unknown_task_names_the_known_ones():
    with pytest.raises(UnknownTaskError, match="unknown task 'xnlii'.*known tasks: .*xnli"):
        get_task("xnlii")


def test_unknown_language_is_rejected():
    with pytest.raises(UnknownTaskError, match="no language.*klingon"):
        check_languages(get_task("xnli"), ["en", "klingon"])
    assert check_languages(get_task("xnli"), None) == get_task("xnli").languages


def test_register_rejects_inconsistent_declarations():
    with pytest.raises(ValueError, match="needs 2 text columns"):
        register(Task(name="broken", kind=PAIR, description="", labels=("a",), text_columns=("x",), label_column="y",
                      hub=HubSource("x/y", "c", {"train": "train"})))
