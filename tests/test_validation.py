import re

from xstilts.tasks import get_task
from xstilts.validation import build_suite


def test_suite_is_built_from_the_task_schema():
    pair = {(e.expectation_type, e.column) for e in build_suite(get_task("xnli"), ("en", "de"))}
    for needed in [("expect_column_to_exist", "text_b"), ("expect_column_values_to_not_be_null", "text_a"),
                   ("expect_column_value_lengths_to_be_between", "text_b"), ("expect_column_values_to_be_in_set", "label"),
                   ("expect_column_values_to_be_in_set", "language"), ("expect_column_values_to_be_unique", "id")]:
        assert needed in pair
    single = {column for _, column in ((e.expectation_type, e.column) for e in build_suite(get_task("sst2"), ("en",)))}
    assert "text_b" not in single


def test_sample_data_passes_and_reports_render(dataset):
    manifest = (dataset / "manifest.json").read_text()
    assert '"failed": 0' in manifest
    html = (dataset.parent / "r.html").read_text()
    md = (dataset.parent / "r.md").read_text()
    assert "passed" in md and "xnli/test" in md and "de:150" in md
    # self-contained: no external scripts, styles or images (the Kubeflow UI renders it in a sandboxed iframe)
    assert "<script" not in html and not re.search(r'(src|href)="https?://', html)
