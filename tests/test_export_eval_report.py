import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from xstilts.errors import ConfigError, ExportParityError
from xstilts.evaluation import zero_shot_eval
from xstilts.export import EXPORT_SHAPE, export_onnx
from xstilts.fsutil import read_json
from xstilts.modeling import load_classifier
from xstilts.report import build_report


def test_onnx_has_named_io_and_dynamic_axes(onnx_model):
    graph = onnx.load(onnx_model / "model.onnx").graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param and not d.dim_value for d in dims)  # symbolic batch and sequence
    report = read_json(onnx_model / "export_report.json")
    assert report["parity_passed"] and report["max_abs_diff"] <= 1e-4
    assert all(shape != list(EXPORT_SHAPE) for shape in report["parity_shapes"])
    assert read_json(onnx_model / "labels.json")["labels"] == ["entailment", "neutral", "contradiction"]
    assert (onnx_model / "tokenizer.json").exists() and (onnx_model / "export_report.md").exists()


def test_onnx_matches_pytorch_on_a_new_shape(onnx_model, target_model):
    model, _, _ = load_classifier(target_model)
    ids = torch.randint(5, 300, (7, 51))
    mask = torch.ones_like(ids)
    mask[3, 30:] = 0
    session = ort.InferenceSession(str(onnx_model / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model(ids, mask).numpy()).max() <= 1e-4


def test_parity_failure_fails_the_step_and_writes_nothing(target_model, tmp_path):
    with pytest.raises(ExportParityError, match=r"max \|onnx - torch\|"):
        export_onnx(target_model, tmp_path / "onnx", tolerance=-1.0)  # no model can meet a negative tolerance
    assert not (tmp_path / "onnx").exists() and not list(tmp_path.iterdir())


def test_zero_shot_eval_matches_pytorch_accuracy_per_language(onnx_model, target_model, dataset, tmp_path):
    import pandas as pd

    results = zero_shot_eval(onnx_model, dataset, tmp_path / "eval", condition="none")
    assert results["provider"] == "CPUExecutionProvider"  # recorded; CUDA where usable
    assert list(results["scores"]) == ["en", "de", "es", "fr", "ru"]
    assert results["average"] == pytest.approx(np.mean(list(results["scores"].values())))
    # cross-check one language with the PyTorch model
    model, tokenizer, info = load_classifier(target_model)
    test = pd.read_parquet(dataset / "xnli" / "test.parquet")
    fr = test[test["language"] == "fr"]
    enc = tokenizer(fr["text_a"].tolist(), fr["text_b"].tolist(), padding=True, truncation=True, max_length=128,
                    return_tensors="pt")
    with torch.no_grad():
        preds = model(enc["input_ids"], enc["attention_mask"]).argmax(-1).numpy()
    gold = fr["label"].map({label: i for i, label in enumerate(info["labels"])}).to_numpy()
    assert results["scores"]["fr"] == pytest.approx(float((preds == gold).mean()))
    saved = read_json(tmp_path / "eval" / "results.json")
    assert saved["scores"] == results["scores"]
    assert "| fr |" in (tmp_path / "eval" / "results.md").read_text()


def _results(tmp_path, condition, scores):
    path = tmp_path / condition
    path.mkdir()
    (path / "results.json").write_text(json.dumps({"task": "xnli", "condition": condition, "metric": "accuracy",
                                                   "provider": "CPUExecutionProvider", "scores": scores}))
    return path


def test_report_gathers_conditions_with_deltas_heatmap_and_summary(tmp_path):
    paths = [_results(tmp_path, "mnli", {"en": 0.8, "de": 0.6}), _results(tmp_path, "none", {"en": 0.7, "de": 0.5}),
             _results(tmp_path, "sst2", {"en": 0.6, "de": 0.55})]
    summary = build_report(paths, tmp_path / "report", html_path=tmp_path / "r.html", md_path=tmp_path / "r.md")
    on_disk = read_json(tmp_path / "report" / "summary.json")
    assert on_disk["target_task"] == "xnli" and on_disk["metric"] == "accuracy"
    assert list(on_disk["conditions"]) == ["none", "mnli", "sst2"]
    assert on_disk["conditions"]["mnli"] == {"en": 0.8, "de": 0.6}
    assert summary["delta_vs_none"]["mnli"]["de"] == pytest.approx(0.1)
    assert summary["delta_vs_none"]["sst2"]["average"] == pytest.approx(-0.025)
    png = (tmp_path / "report" / "heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html and not re.search(r'(src|href)="https?://', html)
    md = (tmp_path / "r.md").read_text()
    assert "Best intermediate task: **mnli**" in md and "| de | 0.5000 | 0.6000 | 0.5500 | +0.1000 | +0.0500 |" in md


def test_report_rejects_mixed_tasks_and_duplicates(tmp_path):
    a = _results(tmp_path, "none", {"en": 0.7})
    b = tmp_path / "other"
    b.mkdir()
    (b / "results.json").write_text(json.dumps({"task": "pawsx", "condition": "mnli", "metric": "accuracy", "scores": {"en": 1}}))
    with pytest.raises(ConfigError, match="mix target tasks"):
        build_report([a, b], tmp_path / "r")
    with pytest.raises(ConfigError, match="two results for condition 'none'"):
        build_report([a, a], tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_report_says_when_no_intermediate_task_helps(tmp_path):
    paths = [_results(tmp_path, "none", {"en": 0.7}), _results(tmp_path, "mnli", {"en": 0.6})]
    build_report(paths, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "No intermediate task beats the `none` baseline (0.7000 average accuracy); the closest is **mnli** (-0.1000)" in md
