import re

import pytest

from xstilts.data.load import canonical_columns
from xstilts.tasks.registry import get_task
from xstilts.data.validate import build_suite


def expectations(task: str, languages=("en",), labels=None, extra=()):
    t = get_task(task)
    suite = build_suite(t, languages, t.labels if labels is None else labels, canonical_columns(t.kind) + list(extra))
    return {(e.expectation_type, getattr(e, "column", None) or "+".join(getattr(e, "column_list", []))) for e in suite}


def test_suite_is_built_from_the_task_kind():
    pair = expectations("xnli", ("en", "de"))
    for needed in [("expect_column_to_exist", "text_b"), ("expect_column_values_to_not_be_null", "text_a"),
                   ("expect_column_value_lengths_to_be_between", "text_b"), ("expect_column_values_to_be_in_set", "label"),
                   ("expect_column_values_to_be_in_set", "language"),
                   ("expect_compound_columns_to_be_unique", "language+id")]:
        assert needed in pair
    assert ("expect_column_value_lengths_to_be_between", "text_b") not in expectations("sst2")
    qa = expectations("squad", extra=["check_answers"])
    assert ("expect_column_values_to_be_in_set", "check_answers") in qa  # answer inside its context
    assert ("expect_column_to_exist", "answer_starts") in qa and ("expect_column_values_to_be_in_set", "label") not in qa
    tagging = expectations("panx", extra=["check_tags"])
    assert ("expect_column_values_to_be_in_set", "check_tags") in tagging and ("expect_column_to_exist", "tokens") in tagging
    assert ("expect_column_values_to_be_in_set", "side") in expectations("bucc18", ("de",))
    assert ("expect_column_values_to_be_in_set", "label") in expectations("hellaswag")


def test_sample_data_passes_and_reports_render(dataset):
    manifest = (dataset / "manifest.json").read_text()
    assert '"failed": 0' in manifest
    html = (dataset.parent / "r.html").read_text()
    md = (dataset.parent / "r.md").read_text()
    assert "passed" in md and "xnli/test" in md and "de:150" in md
    # self-contained: no external scripts, styles or images (the Kubeflow UI renders it in a sandboxed iframe)
    assert "<script" not in html and not re.search(r'(src|href)="https?://', html)


def test_whitespace_only_text_fails_validation(sample_root, tmp_path):
    """A text of spaces and tabs is no text: the suite reports it as missing, naming the task, split and field."""
    import json
    import shutil

    from xstilts.data.validate import validate_tasks
    from xstilts.errors import DataValidationError

    shutil.copytree(sample_root / "xnli", tmp_path / "data" / "xnli")
    test = tmp_path / "data" / "xnli" / "test.jsonl"
    rows = [json.loads(line) for line in test.read_text(encoding="utf-8").splitlines()]
    rows[0]["premise"] = " \t "
    test.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataValidationError) as e:
        validate_tasks(["xnli"], str(tmp_path / "data"), tmp_path / "out", tmp_path / "r.html", tmp_path / "r.md",
                       ["en", "de"])
    assert "text_a" in str(e.value) and not (tmp_path / "out").exists()
