import re

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from xstilts.kinds import base as kinds
from xstilts.errors import ConfigError, ExportParityError
from xstilts.evaluate.zero_shot import zero_shot_eval
from xstilts.export.encoder import EXPORT_SHAPE, export_onnx
from xstilts.io import read_json
from xstilts.models.encoder import MeanPooledEncoder, load_encoder, load_model
from xstilts.evaluate.report import build_report
from xstilts.evaluate.summary import gather_results

from grid_results import write_result
from xstilts.tasks.registry import get_task
from xstilts.config import Settings, TrainConfig
from xstilts.train.finetune import intermediate_finetune, target_finetune


def test_onnx_has_named_io_and_dynamic_axes(onnx_model):
    graph = onnx.load(onnx_model / "model.onnx").graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == ["logits"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param and not d.dim_value for d in dims)  # symbolic batch and sequence
    report = read_json(onnx_model / "export_report.json")
    assert report["parity_passed"] and report["max_abs_diff"] <= 1e-4
    assert all(shape != list(EXPORT_SHAPE) for shape in report["parity_shapes"])
    meta = read_json(onnx_model / "task.json")
    assert meta["labels"] == ["entailment", "neutral", "contradiction"] and meta["settings"]["max_length"] == 64
    assert (onnx_model / "tokenizer.json").exists() and (onnx_model / "export_report.md").exists()


def test_onnx_matches_pytorch_on_a_new_shape(onnx_model, target_model):
    model, _, _ = load_model(target_model)
    ids = torch.randint(5, 300, (7, 51))
    mask = torch.ones_like(ids)
    mask[3, 30:] = 0
    session = ort.InferenceSession(str(onnx_model / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model("xnli", ids, mask).numpy()).max() <= 1e-4


def test_parity_failure_fails_the_step_and_writes_nothing(target_model, tmp_path):
    with pytest.raises(ExportParityError, match=r"max \|onnx - torch\|"):
        export_onnx(target_model, tmp_path / "onnx", tolerance=-1.0)  # no model can meet a negative tolerance
    assert not (tmp_path / "onnx").exists() and not list(tmp_path.iterdir())


def test_zero_shot_eval_matches_pytorch_accuracy_per_language(onnx_model, target_model, dataset, tmp_path):
    results = zero_shot_eval(onnx_model, dataset, tmp_path / "eval")
    assert results["provider"] == "CPUExecutionProvider"  # recorded; CUDA where usable
    assert results["condition"] == "none"  # read from the model
    assert list(results["scores"]) == ["en", "de", "es", "fr", "ru"]
    assert results["average"] == pytest.approx(np.mean(list(results["scores"].values())))
    # cross-check one language with the PyTorch model, batched and padded differently
    model, tokenizer, info = load_model(target_model)
    test = pd.read_parquet(dataset / "xnli" / "test.parquet")
    fr = test[test["language"] == "fr"]
    enc = tokenizer(fr["text_a"].tolist(), fr["text_b"].tolist(), padding=True, truncation=True, max_length=64,
                    return_tensors="pt")
    with torch.no_grad():
        preds = model("xnli", enc["input_ids"], enc["attention_mask"]).argmax(-1).numpy()
    gold = fr["label"].map({label: i for i, label in enumerate(info["heads"]["xnli"]["labels"])}).to_numpy()
    assert results["scores"]["fr"] == pytest.approx(float((preds == gold).mean()))
    saved = read_json(tmp_path / "eval" / "results.json")
    assert saved["scores"] == results["scores"]
    assert "| fr |" in (tmp_path / "eval" / "results.md").read_text()


FAST = TrainConfig(epochs=0, max_steps=40, batch_size=32, learning_rate=1e-3, max_length=64, doc_stride=24,
                   max_query_length=24, patience=0, checkpoint_every=1000)


@pytest.fixture(scope="module")
def kind_models(dataset, target_model, tmp_path_factory):
    """Briefly trained models of the other kinds: QA (XQuAD via SQuAD), tagging (PAN-X), multiple choice, retrieval."""
    root = tmp_path_factory.mktemp("kinds")
    none = target_model.parent / "none"
    target_finetune("xquad", dataset, none, root / "xquad", FAST)
    target_finetune("panx", dataset, none, root / "panx", FAST)
    intermediate_finetune("hellaswag", dataset, "tiny", root / "hellaswag", FAST)
    for task in ("tatoeba", "bucc18"):
        target_finetune(task, dataset, none, root / task, FAST)
    return root


@pytest.mark.parametrize("task, outputs", [("xquad", ["start_logits", "end_logits"]), ("panx", ["logits"]),
                                           ("hellaswag", ["logits"]), ("tatoeba", ["embeddings"])])
def test_every_kind_exports_with_parity(task, outputs, kind_models, tmp_path):
    report = export_onnx(kind_models / task, tmp_path / "onnx", retrieval_layer=-1)
    assert report["parity_passed"] and report["outputs"] == outputs
    graph = onnx.load(tmp_path / "onnx" / "model.onnx").graph
    assert [o.name for o in graph.output] == outputs
    rank = len(graph.input[0].type.tensor_type.shape.dim)
    assert rank == (3 if task == "hellaswag" else 2)  # multiple choice: [batch, choices, sequence]


@pytest.mark.parametrize("task", ["xquad", "panx", "tatoeba", "bucc18"])
def test_onnx_evaluation_equals_the_pytorch_evaluation(task, kind_models, dataset, tmp_path):
    """The zero-shot step (onnxruntime) and the same decoding and metric on the PyTorch model agree per language."""
    export_onnx(kind_models / task, tmp_path / "onnx")
    results = zero_shot_eval(tmp_path / "onnx", dataset, tmp_path / "eval")
    t = get_task(task)
    settings = Settings(**read_json(tmp_path / "onnx" / "task.json")["settings"])
    test = pd.read_parquet(dataset / task / "test.parquet")
    if t.kind == "retrieval":
        encoder, tokenizer = load_encoder(str(kind_models / task / "encoder"))
        run = kinds.torch_runner(MeanPooledEncoder(encoder, 0).eval(), None, t.kind, torch.device("cpu"))
    else:
        model, tokenizer, info = load_model(kind_models / task)
        labels = tuple(info["heads"][task]["labels"])
        run = kinds.torch_runner(model, task, t.kind, torch.device("cpu"))
    assert list(results["scores"]) == read_json(dataset / "manifest.json")["tasks"][task]["languages"]
    for lang, value in results["scores"].items():
        df = test[test["language"] == lang].reset_index(drop=True)
        if t.kind == "retrieval":
            expected = kinds.retrieval_score(t, df, kinds.embed(run, df["text_a"].tolist(), tokenizer, settings, 16))
        else:
            expected = kinds.score(t, df, kinds.predict(run, t, labels, df, tokenizer, settings, 16), lang)
        assert value == pytest.approx(expected["score"], abs=1e-6), lang
        assert 0.0 <= value <= 1.0
    if task == "xquad":
        assert set(results["details"]["de"]) == {"exact_match", "f1"}
        assert "fr" not in results["scores"]  # XQuAD has no French: the shared language list skips it
    if task == "bucc18":
        assert set(results["details"]["de"]) == {"precision", "recall", "threshold"}


def _results(tmp_path, condition, scores, task="xnli", metric="accuracy", seed=1):
    return write_result(tmp_path / f"{condition}-{task}-{seed}", task, condition, scores, metric, seed)


GRID = {  # target → condition → language → score
    "xnli": {"none": {"en": 0.7, "de": 0.5}, "mnli": {"en": 0.8, "de": 0.6}, "sst2": {"en": 0.6, "de": 0.55}},
    "xquad": {"none": {"en": 0.5, "ru": 0.3}, "mnli": {"en": 0.5, "ru": 0.2}, "sst2": {"en": 0.4, "ru": 0.3}},
    "tatoeba": {"none": {"de": 0.9}, "mnli": {"de": 0.8}, "sst2": {"de": 0.95}},
}


def grid_results(tmp_path):
    """One gathered folder per condition, as the pipeline's per-condition gather step writes them."""
    gathered = []
    for condition in ("mnli", "none", "sst2"):
        files = [_results(tmp_path, condition, GRID[t][condition], t) for t in GRID]
        gathered.append(tmp_path / f"gathered-{condition}")
        gather_results(files, gathered[-1])
    return gathered


def test_report_builds_the_grid_with_xtreme_average_deltas_and_best_intermediates(tmp_path):
    summary = build_report(grid_results(tmp_path), tmp_path / "report", html_path=tmp_path / "r.html",
                           md_path=tmp_path / "r.md")
    assert summary["scores"] == {t: {c: GRID[t][c] for c in ("none", "mnli", "sst2")} for t in sorted(GRID)}
    assert summary["conditions"] == ["none", "mnli", "sst2"] and summary["targets"] == ["tatoeba", "xnli", "xquad"]
    assert summary["task_average"]["xnli"]["mnli"] == pytest.approx(0.7)
    # XTREME average: mean over tasks of each task's mean over languages
    assert summary["xtreme_average"]["none"] == pytest.approx((0.6 + 0.4 + 0.9) / 3)
    assert summary["xtreme_average"]["sst2"] == pytest.approx((0.575 + 0.35 + 0.95) / 3)
    assert summary["delta_vs_none"]["xnli"]["mnli"]["de"] == pytest.approx(0.1)
    assert summary["delta_vs_none"]["xquad"]["mnli"]["average"] == pytest.approx(-0.05)
    assert summary["xtreme_delta_vs_none"]["sst2"] == pytest.approx((0.575 + 0.35 + 0.95 - 1.9) / 3)
    assert summary["best_intermediate"]["xnli"]["condition"] == "mnli"
    # +5 points on tatoeba's 100 examples is not significant after Holm: the top condition is not declared best
    assert summary["best_intermediate"]["tatoeba"] == {"condition": None, "candidate": "sst2", "score": 0.95,
                                                       "gain": pytest.approx(0.05), "significant": False,
                                                       "p_adjusted": pytest.approx(0.26, abs=0.05)}
    report = tmp_path / "report"
    assert {p.name for p in report.iterdir()} == {".xstilts-output", "summary.json", "lineage.json", "report.md",
                                                   "report.html", "grid.png", "forest.png", "predictions",
                                                   "heatmap-xnli.png", "heatmap-xquad.png", "heatmap-tatoeba.png"}
    md = (tmp_path / "r.md").read_text()
    assert "| xnli | accuracy | 60.0 | 70.0 | 57.5 | +10.0* | -2.5 | mnli |" in md  # one seed: no ± std
    assert "| XTREME average |  | 63.3 | 61.7 | 62.5 | -1.7 | -0.8 | — |" in md
    assert "**xnli**: best intermediate **mnli** (70.0, +10.0 vs `none`, 95 % CI [+6.0, +14.0]" in md
    assert "**tatoeba**: no condition differs significantly from `none` (90.0); highest **sst2** (+5.0" in md
    assert "### xquad ((EM+F1)/2)" not in md and "### xquad (accuracy)" in md  # metric as each result says
    html = (tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "<script" not in html  # self-contained
    assert not re.search(r'(src|href)="https?://', html)


def test_report_rejects_duplicates_and_holes(tmp_path):
    a = _results(tmp_path, "none", {"en": 0.7})
    with pytest.raises(ConfigError, match="two results for target task 'xnli' and condition 'none'"):
        build_report([a, a], tmp_path / "r")
    b = _results(tmp_path, "mnli", {"en": 0.7}, task="pawsx")
    with pytest.raises(ConfigError, match="target task 'pawsx' has no results for condition\\(s\\) none"):
        build_report([a, b], tmp_path / "r")
    c = _results(tmp_path, "mnli", {"de": 0.7})
    with pytest.raises(ConfigError, match="xnli: condition 'mnli' \\(seed 1\\) was evaluated on \\['de'\\]"):
        build_report([a, c], tmp_path / "r")
    with pytest.raises(ConfigError, match="different conditions"):
        gather_results([a, b], tmp_path / "g")
    assert not (tmp_path / "r").exists() and not (tmp_path / "g").exists()


def test_report_says_when_no_intermediate_task_helps(tmp_path):
    paths = [_results(tmp_path, "none", {"en": 0.7}), _results(tmp_path, "mnli", {"en": 0.6})]
    build_report(paths, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "**xnli**: no condition differs significantly from `none` (70.0); highest **mnli** (-10.0" in md
    assert "significantly worse: mnli" in md
    assert "**XTREME average**: no condition differs significantly from `none` (70.0)" in md
