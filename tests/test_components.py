"""Each component's python_func, called with artifact objects as Kubeflow would (pipelines-components style)."""

import pytest
from kfp.dsl import HTML, Artifact, Dataset, Markdown, Metrics, Model

from components.export_onnx import export_onnx
from components.gather_results import gather_results
from components.intermediate_finetune import intermediate_finetune
from components.promotion_gate import promotion_gate
from components.report import report
from components.resolve_data import resolve_data
from components.target_finetune import target_finetune
from components.validate_data import validate_data
from components.zero_shot_eval import zero_shot_eval
from xstilts.errors import ConfigError, DataValidationError

TRAIN = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "max_length": 48, "doc_stride": 16, "max_query_length": 16,
         "patience": 0}
TARGETS = ["xnli", "tatoeba"]


def artifact(cls, tmp_path, name):
    return cls(name=name, uri=str(tmp_path / name), metadata={})


def run_params(**values) -> dict:
    """Every pipeline parameter, as the Kubeflow UI passes them to the first step (numbers in dicts as floats)."""
    return {"task_data": {}, "data_repo": "", "data_rev": "", "target_tasks": TARGETS, "conditions": ["none", "sst2"],
            "seeds": [1.0],
            "languages": ["en", "fr"], "hf_revision": "", "hf_revisions": {}, "model_name": "tiny", "model_revision": "",
            "retrieval_layer": 0, "generation": {}, "intermediate_train": {k: float(v) for k, v in TRAIN.items()},
            "target_train": TRAIN, "registry_repo": "", "promotion_targets": [], "promotion_tolerance": 0.005,
            "promotion_condition": "", "dvc_remote": "", **values}


def test_the_first_step_refuses_bad_parameters_listing_all(sample_root):
    with pytest.raises(ConfigError) as e:
        resolve_data.python_func(**run_params(data=str(sample_root), conditions=["none", "mnli+mnli"],
                                              intermediate_train={"seed": -1.0}, promotion_targets=["panx"]))
    text = str(e.value)
    assert text.startswith("pipeline parameters: 3 invalid parameter(s):")
    assert "intermediate_train.seed" in text and "conditions[1]" in text and "promotion_targets: panx" in text


def test_components_chain_end_to_end(sample_root, tmp_path):
    resolved = resolve_data.python_func(**run_params(data=str(sample_root)))
    assert resolved.data == str(sample_root) and len(resolved.data_md5) == 32 and resolved.data_commit == ""
    dataset = artifact(Dataset, tmp_path, "dataset")
    validate_data.python_func(target_tasks=TARGETS, conditions=["none", "sst2"], data=resolved.data,
                              task_data=resolved.task_data, languages=["en", "fr"], hf_revision="", dataset=dataset,
                              report_html=artifact(HTML, tmp_path, "v.html"), report_md=artifact(Markdown, tmp_path, "v.md"),
                              data_md5=resolved.data_md5)
    assert dataset.metadata["tasks"] == ["sst2", "tatoeba", "xnli"]
    assert dataset.metadata["data_md5"] == resolved.data_md5
    assert (tmp_path / "dataset" / "sst2" / "train.parquet").exists()

    gathered = []
    for condition in ("none", "sst2"):
        inter = artifact(Model, tmp_path, f"inter-{condition}")
        metrics = artifact(Metrics, tmp_path, f"im-{condition}")
        intermediate_finetune.python_func(condition=condition, seed=2.0, dataset=dataset, model_name="tiny",
                                          model_revision="", train_params=TRAIN, model=inter, metrics=metrics)
        assert inter.metadata["condition"] == condition and inter.metadata["seed"] == 2
        if condition == "sst2":
            assert metrics.metadata["best_dev_score"] > 0 and metrics.metadata["steps"] > 0
        results = []
        for task in TARGETS:
            name = f"{condition}-{task}"
            target = artifact(Model, tmp_path, f"target-{name}")
            target_finetune.python_func(target_task=task, dataset=dataset, intermediate_model=inter, train_params=TRAIN,
                                        model=target, metrics=artifact(Metrics, tmp_path, f"tm-{name}"))
            assert target.metadata["condition"] == condition  # read from the intermediate model
            onnx_model = artifact(Model, tmp_path, f"onnx-{name}")
            export_report = artifact(Markdown, tmp_path, f"export-{name}.md")
            export_onnx.python_func(model=target, onnx_model=onnx_model, report=export_report, retrieval_layer=0)
            assert onnx_model.metadata["max_abs_diff"] <= 1e-4 and "ONNX export" in open(export_report.path).read()
            result = artifact(Artifact, tmp_path, f"eval-{name}")
            eval_metrics = artifact(Metrics, tmp_path, f"em-{name}")
            zero_shot_eval.python_func(onnx_model=onnx_model, dataset=dataset, results=result, metrics=eval_metrics,
                                       table_md=artifact(Markdown, tmp_path, f"e-{name}.md"),
                                       table_html=artifact(HTML, tmp_path, f"e-{name}.html"))
            expected = {"xnli": {"xnli_en", "xnli_fr", "xnli_average"}, "tatoeba": {"tatoeba_fr", "tatoeba_average"}}
            assert set(eval_metrics.metadata) == expected[task]
            assert result.metadata["condition"] == condition and result.metadata["seed"] == 2  # the restart's seed
            results.append(result)
        per_seed = artifact(Artifact, tmp_path, f"gathered-{condition}-2")
        gather_results.python_func(results=results, gathered=per_seed)
        gathered.append(artifact(Artifact, tmp_path, f"gathered-{condition}"))
        gather_results.python_func(results=[per_seed], gathered=gathered[-1])
        assert {k: gathered[-1].metadata[k] for k in ("condition", "seeds", "targets")} == {
            "condition": condition, "seeds": [2], "targets": ["tatoeba", "xnli"]}
        # Provenance on every artifact: its md5, its parents' md5s, the code commit and image.
        assert set(per_seed.metadata["parent_md5s"]) == {"results[xnli]", "results[tatoeba]"}
        assert set(per_seed.metadata["parent_md5s"].values()) == {r.metadata["md5"] for r in results}
        assert set(gathered[-1].metadata["parent_md5s"].values()) == {per_seed.metadata["md5"]}
        assert results[0].metadata["parent_md5s"]["dataset"] == dataset.metadata["md5"]
        assert inter.metadata["parent_md5s"] == {"dataset": dataset.metadata["md5"]} and inter.metadata["code_commit"]
        # ... and the data version it descends from (the resolve step's md5, the caching key's).
        assert {a.metadata["data_md5"] for a in (inter, *results, gathered[-1])} == {resolved.data_md5}

    decision = artifact(Artifact, tmp_path, "decision")
    promotion_gate.python_func(results=gathered, registry_repo="", promotion_targets=[], promotion_tolerance=0.005,
                               promotion_condition="", run_name="r1", decision=decision,
                               decision_md=artifact(Markdown, tmp_path, "decision.md"))
    assert decision.metadata["skipped"] and "not configured" in (tmp_path / "decision.md").read_text()
    summary = artifact(Artifact, tmp_path, "summary")
    html = artifact(HTML, tmp_path, "report.html")
    report.python_func(results=gathered, decision=decision, summary=summary, report_html=html,
                       report_md=artifact(Markdown, tmp_path, "r.md"))
    assert "Promotion gate" in open(html.path).read()
    assert set(summary.metadata["xtreme_average"]) == {"none", "sst2"} and summary.metadata["targets"] == ["tatoeba", "xnli"]
    assert (tmp_path / "summary" / "grid.png").exists() and "<table>" in open(html.path).read()


def test_validate_component_fails_on_bad_data(tmp_path, sample_root):
    import shutil

    shutil.copytree(sample_root, tmp_path / "data")
    with open(tmp_path / "data" / "xnli" / "validation.jsonl", "a") as f:
        f.write('{"premise": "x", "hypothesis": "y", "label": "maybe"}\n')
    dataset = artifact(Dataset, tmp_path, "dataset")
    with pytest.raises(DataValidationError, match="label='maybe'"):
        validate_data.python_func(target_tasks=["xnli"], conditions=["none"], data=str(tmp_path / "data"), task_data={},
                                  languages=["en"],
                                  hf_revision="", dataset=dataset, report_html=artifact(HTML, tmp_path, "v.html"),
                                  report_md=artifact(Markdown, tmp_path, "v.md"))
    assert not (tmp_path / "dataset").exists()
    assert "FAILED" in (tmp_path / "v.md").read_text()
