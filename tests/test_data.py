"""Bad input: every error names the file/row/field and nothing half-written is left behind."""

import json

import pandas as pd
import pytest

from xstilts.data.load import load_split
from xstilts.errors import DataError, DataValidationError
from xstilts.tasks.registry import get_task
from xstilts.data.validate import validate_tasks


def write_rows(root, task, split, rows):
    path = root / task / f"{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def good_sst2(root, n=20):
    rows = [{"sentence": f"a fine film number {i} .", "label": i % 2, "idx": i} for i in range(n)]
    write_rows(root, "sst2", "train", rows)
    write_rows(root, "sst2", "validation", rows[:5])


def run_validate(root, out, task="sst2", languages=None):
    return validate_tasks([task], str(root), out / "ds", out / "r.html", out / "r.md", languages)


def test_local_jsonl_is_canonicalised(tmp_path):
    good_sst2(tmp_path)
    manifest = run_validate(tmp_path, tmp_path)
    df = pd.read_parquet(tmp_path / "ds" / "sst2" / "train.parquet")
    assert list(df.columns) == ["id", "language", "text_a", "text_b", "label"]
    assert set(df["label"]) == {"negative", "positive"} and set(df["language"]) == {"en"}
    assert manifest["tasks"]["sst2"]["splits"]["train"]["rows"] == 20


def test_parquet_input_is_accepted(tmp_path):
    good_sst2(tmp_path)
    pd.read_json(tmp_path / "sst2" / "train.jsonl", lines=True).to_parquet(tmp_path / "sst2" / "train.parquet")
    (tmp_path / "sst2" / "train.jsonl").unlink()
    run_validate(tmp_path, tmp_path)
    assert (tmp_path / "ds" / "sst2" / "train.parquet").exists()


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"missing file: .*sst2/train\.jsonl"):
        run_validate(tmp_path, tmp_path)
    assert not (tmp_path / "ds").exists()


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    good_sst2(tmp_path)
    with open(tmp_path / "sst2" / "train.jsonl", "a") as f:
        f.write('{"sentence": "oops", "label": 1\n')
    with pytest.raises(DataError, match=r"sst2/train\.jsonl: line 21: not valid JSON"):
        run_validate(tmp_path, tmp_path)
    assert not (tmp_path / "ds").exists()


def test_wrong_column_type_names_row_and_field(tmp_path):
    good_sst2(tmp_path)
    write_rows(tmp_path, "sst2", "validation", [{"sentence": "ok .", "label": 1}, {"sentence": 42, "label": 0}])
    with pytest.raises(DataError, match=r"validation\.jsonl: row 2: field 'sentence' must be a string, got int 42"):
        run_validate(tmp_path, tmp_path)


def test_missing_field_names_expected_fields(tmp_path):
    good_sst2(tmp_path)
    write_rows(tmp_path, "sst2", "validation", [{"text": "ok .", "label": 1}])
    with pytest.raises(DataError, match=r"row 1: missing field 'sentence'"):
        run_validate(tmp_path, tmp_path)


def test_empty_split(tmp_path):
    good_sst2(tmp_path)
    (tmp_path / "sst2" / "validation.jsonl").write_text("")
    with pytest.raises(DataError, match=r"validation\.jsonl: split 'validation' of task 'sst2' is empty"):
        run_validate(tmp_path, tmp_path)


def test_label_outside_set_and_other_failures_are_all_listed(tmp_path):
    good_sst2(tmp_path)
    rows = [{"sentence": "fine .", "label": "positive", "idx": 1}, {"sentence": "meh .", "label": "mixed", "idx": 2},
            {"sentence": "", "label": 7, "idx": 3}, {"sentence": "dup .", "label": 0, "idx": 3}]
    write_rows(tmp_path, "sst2", "validation", rows)
    with pytest.raises(DataValidationError) as err:
        run_validate(tmp_path, tmp_path)
    message = str(err.value)
    assert "expect_column_values_to_be_in_set(label): 2 of 4 rows failed" in message
    assert "row 2 id='2' label='mixed'" in message and "label='7'" in message
    assert "expect_column_value_lengths_to_be_between(text_a)" in message  # the empty sentence
    assert "expect_compound_columns_to_be_unique(language+id)" in message
    assert not (tmp_path / "ds").exists()  # nothing downstream can read a half-valid dataset
    report = (tmp_path / "r.md").read_text()
    assert "FAILED" in report and "mixed" in report


def test_unknown_language_in_data_is_reported(tmp_path, sample_root):
    import shutil

    shutil.copytree(sample_root / "xnli", tmp_path / "xnli")
    with open(tmp_path / "xnli" / "test.jsonl", "a") as f:
        f.write(json.dumps({"premise": "a", "hypothesis": "b", "label": 0, "language": "xx"}) + "\n")
    with pytest.raises(DataValidationError, match=r"xnli/test \(.*xnli/test\.jsonl\): expect_column_values_to_be_in_set\(language\).*row 751 .*language='xx'"):
        run_validate(tmp_path, tmp_path, task="xnli", languages=["en", "de"])


def test_requested_language_without_rows(sample_root):
    with pytest.raises(DataError, match=r"no rows for language 'ar'"):
        load_split(get_task("xnli"), "test", str(sample_root), ("en", "ar"))


def test_dvc_tracked_path_that_was_not_pulled(tmp_path):
    (tmp_path / "mydata.dvc").write_text("outs:\n- path: mydata\n")
    with pytest.raises(DataError, match=r"tracked by DVC: run `dvc pull"):
        run_validate(tmp_path / "mydata", tmp_path)


def test_hub_loader_reads_hub_layout(tmp_path, monkeypatch):
    """The real hub path (datasets.load_dataset with id, config, split, revision) on a local repo in hub format."""
    import dataclasses

    import xstilts.tasks.registry as tasks

    repo = tmp_path / "glue"
    (repo / "sst2").mkdir(parents=True)
    for split, n in (("train", 12), ("validation", 4)):
        pd.DataFrame({"sentence": [f"good {i} ." for i in range(n)], "label": [i % 2 for i in range(n)],
                      "idx": range(n)}).to_parquet(repo / "sst2" / f"{split}-00000-of-00001.parquet")
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: sst2\n  data_files:\n  - split: train\n"
                                    "    path: sst2/train-*\n  - split: validation\n    path: sst2/validation-*\n---\n")
    task = dataclasses.replace(tasks.get_task("sst2"), hub=dataclasses.replace(tasks.get_task("sst2").hub, path=str(repo),
                                                                                revision=None))
    monkeypatch.setitem(tasks._REGISTRY, "sst2", task)
    manifest = validate_tasks(["sst2"], "hf://", tmp_path / "ds", tmp_path / "r.html", tmp_path / "r.md")
    assert manifest["tasks"]["sst2"]["splits"]["train"]["rows"] == 12
    assert set(pd.read_parquet(tmp_path / "ds" / "sst2" / "validation.parquet")["label"]) == {"negative", "positive"}


def test_null_text_in_parquet_is_reported_by_the_suite(tmp_path):
    good_sst2(tmp_path)
    pd.DataFrame({"sentence": ["fine .", None], "label": [1, 0], "idx": [1, 2]}).to_parquet(tmp_path / "sst2" / "validation.parquet")
    (tmp_path / "sst2" / "validation.jsonl").unlink()
    with pytest.raises(DataValidationError, match=r"expect_column_values_to_not_be_null\(text_a\): 1 of 2 rows failed — e.g. row 2"):
        run_validate(tmp_path, tmp_path)


def test_repeated_condition_is_rejected(tmp_path, sample_root):
    from xstilts.errors import ConfigError
    from xstilts.data.validate import validate_experiment

    with pytest.raises(ConfigError, match="conditions list mnli more than once"):
        validate_experiment("xnli", ["none", "mnli", "mnli"], str(sample_root), tmp_path / "ds", tmp_path / "r.html",
                            tmp_path / "r.md")
