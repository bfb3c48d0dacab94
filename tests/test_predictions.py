"""Per-example predictions written by the eval step (results/predictions/<task>/<language>.jsonl) and
`xstilts score`, which recomputes every metric from them."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from xstilts.cli.main import app
from xstilts.errors import DataError
from xstilts.evaluate.predictions import ROW_FIELDS, entity_counts, micro_f1_of, score_predictions
from xstilts.evaluate.zero_shot import zero_shot_eval
from xstilts.export.encoder import export_onnx
from xstilts.io import read_json, read_jsonl
from xstilts.kinds import metrics
from xstilts.tasks.registry import get_task

from tests.test_code_presets import humaneval_run  # noqa: F401  (fixtures: a tiny causal LM, exported)
from tests.test_export_eval_report import kind_models  # noqa: F401  (briefly trained models of every kind)


@pytest.fixture(scope="module")
def evaluated(onnx_model, kind_models, dataset, tmp_path_factory):  # noqa: F811
    """Eval results folders of xnli, xquad, panx, tatoeba and bucc18."""
    root = tmp_path_factory.mktemp("preds")
    out = {"xnli": root / "xnli"}
    zero_shot_eval(onnx_model, dataset, out["xnli"])
    for task in ("xquad", "panx", "tatoeba", "bucc18"):
        export_onnx(kind_models / task, root / f"onnx-{task}")
        zero_shot_eval(root / f"onnx-{task}", dataset, root / task)
        out[task] = root / task
    return out


def _layout(task):
    t = get_task(task)
    return ("bucc" if t.metric == "f1" else "tatoeba") if t.kind == "retrieval" else t.kind


@pytest.mark.parametrize("task", ["xnli", "xquad", "panx", "tatoeba", "bucc18"])
def test_predictions_line_up_with_the_test_set_and_rescore_exactly(task, evaluated, dataset):
    results = read_json(evaluated[task] / "results.json")
    folder = evaluated[task] / "predictions" / task
    meta = read_json(folder / "metric.json")
    assert meta["languages"] == list(results["scores"]) and meta["metric"] == results["metric"]
    test = pd.read_parquet(dataset / task / "test.parquet")
    for lang in results["scores"]:
        rows = read_jsonl(folder / f"{lang}.jsonl")
        assert all(list(r) == list(ROW_FIELDS[_layout(task)]) for r in rows)
        df = test[test["language"] == lang]
        if get_task(task).kind == "retrieval":
            df = df[df["side"] == "source"]
            if get_task(task).metric == "accuracy":
                df = df[df["label"].map(lambda x: isinstance(x, str))]
        assert [r["id"] for r in rows] == [str(i) for i in df["id"]]
        assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    rescored = score_predictions(evaluated[task])[task]
    assert rescored["scores"] == results["scores"]  # exactly: the same metric functions on the same predictions
    assert rescored["details"] == results["details"]
    assert rescored["average"] == results["average"]


@pytest.mark.parametrize("task", ["panx", "bucc18"])
def test_count_records_sum_to_the_corpus_f1(task, evaluated):
    results = read_json(evaluated[task] / "results.json")
    for lang, value in results["scores"].items():
        rows = read_jsonl(evaluated[task] / "predictions" / task / f"{lang}.jsonl")
        assert micro_f1_of(rows) == pytest.approx(value, abs=1e-12), lang
        if task == "panx":  # any subset of sentences: micro F1 of its counts is seqeval's F1 over those sentences
            subset = rows[::2]
            expected = metrics.tagging_f1([r["gold"] for r in subset], [r["prediction"] for r in subset])
            assert micro_f1_of(subset) == pytest.approx(expected, abs=1e-12)
        else:
            assert {r["threshold"] for r in rows} == {results["details"][lang]["threshold"]}  # the full set's
            assert all(r["prediction"] is None or r["prediction"] == r["candidate"] for r in rows)


def test_qa_rows_carry_em_and_f1_and_the_mean_is_the_metric(evaluated):
    results = read_json(evaluated["xquad"] / "results.json")
    for lang, parts in results["details"].items():
        rows = read_jsonl(evaluated["xquad"] / "predictions" / "xquad" / f"{lang}.jsonl")
        assert all(r["score"] == (r["exact_match"] + r["f1"]) / 2 for r in rows)
        assert sum(r["exact_match"] for r in rows) / len(rows) == pytest.approx(parts["exact_match"], abs=1e-12)
        assert sum(r["f1"] for r in rows) / len(rows) == pytest.approx(parts["f1"], abs=1e-12)


def test_entity_counts_follow_seqeval():
    assert entity_counts(["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-ORG"]) == [1, 2, 2]
    assert entity_counts(["O", "O"], ["O", "O"]) == [0, 0, 0]


def test_score_cli_prints_and_writes_json(evaluated, tmp_path):
    result = CliRunner().invoke(app, ["score", str(evaluated["xnli"]), "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert "xnli" in result.output and "average" in result.output
    saved = read_json(tmp_path / "s.json")
    assert saved["xnli"]["scores"] == read_json(evaluated["xnli"] / "results.json")["scores"]


def _copy(evaluated, tmp_path, task="xnli"):
    import shutil

    shutil.copytree(evaluated[task] / "predictions", tmp_path / "predictions")
    return tmp_path / "predictions" / task / "en.jsonl"


@pytest.mark.parametrize("edit, message", [
    (lambda rows: [{k: v for k, v in rows[0].items() if k != "gold"}] + rows[1:], r"line 1: missing field\(s\) gold"),
    (lambda rows: [{**rows[0], "extra": 1}] + rows[1:], r"line 1: unexpected field\(s\) extra"),
    (lambda rows: rows + [rows[0]], r"line \d+: id '.*' is duplicated"),
])
def test_bad_rows_are_one_line_errors_naming_file_and_line(edit, message, evaluated, tmp_path):
    path = _copy(evaluated, tmp_path)
    rows = edit(read_jsonl(path))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=f"en.jsonl: {message}"):
        score_predictions(tmp_path / "predictions")
    result = CliRunner().invoke(app, ["score", str(tmp_path)])
    assert result.exit_code == 1 and "en.jsonl" in result.output and "Traceback" not in result.output


def test_not_json_and_unknown_task_are_errors(evaluated, tmp_path):
    path = _copy(evaluated, tmp_path)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"en.jsonl: line \d+: not valid JSON"):
        score_predictions(tmp_path)
    path.write_text(path.read_text().rsplit("{not json", 1)[0])
    (tmp_path / "predictions" / "xnli").rename(tmp_path / "predictions" / "nosuchtask")
    with pytest.raises(DataError, match=r"nosuchtask/.*\.jsonl: unknown task 'nosuchtask'"):
        score_predictions(tmp_path)


def test_code_generation_rows_recompute_pass_at_k(humaneval_run, tmp_path):  # noqa: F811
    results = zero_shot_eval(humaneval_run / "onnx", humaneval_run / "ds", tmp_path / "eval",
                             generation={"n": 2, "temperature": 0.8, "k": [1, 2], "max_new_tokens": 16,
                                         "min_new_tokens": 4})
    folder = tmp_path / "eval" / "predictions" / "humaneval"
    assert read_json(folder / "metric.json")["k"] == [1, 2]
    rows = read_jsonl(folder / "en.jsonl")
    assert all(list(r) == list(ROW_FIELDS["generation"]) for r in rows) and len(rows) == results["examples"]["en"]
    assert all(r["n"] == 2 == len(r["prediction"]) and r["correct"] == sum(r["prediction"])
               and r["score"] == r["correct"] / r["n"] for r in rows)
    rescored = score_predictions(tmp_path / "eval")["humaneval"]
    assert rescored["scores"] == results["scores"] and rescored["details"] == results["details"]
    assert rescored["metric"] == "pass@1"
