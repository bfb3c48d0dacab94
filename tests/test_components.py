"""Each component's python_func, called with artifact objects as Kubeflow would (pipelines-components style)."""

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Metrics, Model

from components.export_onnx import export_onnx
from components.intermediate_finetune import intermediate_finetune
from components.report import report
from components.target_finetune import target_finetune
from components.validate_data import validate_data
from components.zero_shot_eval import zero_shot_eval
from xstilts.errors import DataValidationError

TRAIN = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "max_length": 48, "patience": 0}


def artifact(cls, tmp_path, name):
    return cls(name=name, uri=str(tmp_path / name), metadata={})


def test_components_chain_end_to_end(sample_root, tmp_path):
    dataset = artifact(Dataset, tmp_path, "dataset")
    validate_data.python_func(target_task="xnli", conditions=["none", "sst2"], data=str(sample_root),
                              languages=["en", "fr"], hf_revision="", dataset=dataset,
                              report_html=artifact(HTML, tmp_path, "v.html"), report_md=artifact(Markdown, tmp_path, "v.md"))
    assert dataset.metadata["tasks"] == ["sst2", "xnli"] and (tmp_path / "dataset" / "sst2" / "train.parquet").exists()

    results = []
    for condition in ("none", "sst2"):
        inter = artifact(Model, tmp_path, f"inter-{condition}")
        metrics = artifact(Metrics, tmp_path, f"im-{condition}")
        intermediate_finetune.python_func(condition=condition, dataset=dataset, model_name="tiny", model_revision="",
                                          train_params=TRAIN, model=inter, metrics=metrics)
        assert inter.metadata["condition"] == condition
        if condition == "sst2":
            assert metrics.metadata["best_dev_accuracy"] > 0 and metrics.metadata["steps"] > 0
        target = artifact(Model, tmp_path, f"target-{condition}")
        target_finetune.python_func(target_task="xnli", condition=condition, dataset=dataset, intermediate_model=inter,
                                    train_params=TRAIN, model=target, metrics=artifact(Metrics, tmp_path, f"tm-{condition}"))
        onnx_model = artifact(Model, tmp_path, f"onnx-{condition}")
        export_report = artifact(Markdown, tmp_path, f"export-{condition}.md")
        export_onnx.python_func(model=target, onnx_model=onnx_model, report=export_report)
        assert onnx_model.metadata["max_abs_diff"] <= 1e-4 and "ONNX export" in open(export_report.path).read()
        result = artifact(Artifact, tmp_path, f"eval-{condition}")
        eval_metrics = artifact(Metrics, tmp_path, f"em-{condition}")
        zero_shot_eval.python_func(onnx_model=onnx_model, dataset=dataset, condition=condition, results=result,
                                   metrics=eval_metrics, table_md=artifact(Markdown, tmp_path, f"e-{condition}.md"),
                                   table_html=artifact(HTML, tmp_path, f"e-{condition}.html"))
        assert set(eval_metrics.metadata) == {"accuracy_en", "accuracy_fr", "accuracy_average"}
        results.append(result)

    summary = artifact(Artifact, tmp_path, "summary")
    html = artifact(HTML, tmp_path, "report.html")
    report.python_func(results=results, summary=summary, report_html=html, report_md=artifact(Markdown, tmp_path, "r.md"))
    assert set(summary.metadata["average"]) == {"none", "sst2"}
    assert (tmp_path / "summary" / "heatmap.png").exists() and "<table>" in open(html.path).read()


def test_validate_component_fails_on_bad_data(tmp_path, sample_root):
    import shutil

    shutil.copytree(sample_root, tmp_path / "data")
    with open(tmp_path / "data" / "xnli" / "validation.jsonl", "a") as f:
        f.write('{"premise": "x", "hypothesis": "y", "label": "maybe"}\n')
    dataset = artifact(Dataset, tmp_path, "dataset")
    with pytest.raises(DataValidationError, match="label='maybe'"):
        validate_data.python_func(target_task="xnli", conditions=["none"], data=str(tmp_path / "data"), languages=["en"],
                                  hf_revision="", dataset=dataset, report_html=artifact(HTML, tmp_path, "v.html"),
                                  report_md=artifact(Markdown, tmp_path, "v.md"))
    assert not (tmp_path / "dataset").exists()
    assert "FAILED" in (tmp_path / "v.md").read_text()
