"""The five code research questions: presets (local tiny and cluster forms), English NLU tasks as text → text on a
causal LM, and code-generation targets scored by executing sampled completions (pass@k per task language)."""

import json

import pandas as pd
import pytest

from xstilts.kinds import base as kinds
from xstilts.errors import ConfigError
from xstilts.config import CLUSTER_PRESETS, CODE_QUESTIONS, load_params
from xstilts.kinds.base import GENERATION
from xstilts.tasks.registry import get_task
from xstilts.config import TrainConfig
from xstilts.train.finetune import intermediate_finetune, target_finetune

CONFIG = TrainConfig(epochs=1, max_steps=3, batch_size=8, learning_rate=3e-3, max_length=128, patience=0,
                     checkpoint_every=1000)


@pytest.mark.parametrize("name", list(CODE_QUESTIONS))
def test_each_question_is_a_local_and_a_cluster_preset(name):
    local, cluster = load_params(None, None, name), CLUSTER_PRESETS[name]
    assert local["target_tasks"] == cluster["target_tasks"] and local["conditions"] == cluster["conditions"]
    causal = any(get_task(t).kind == GENERATION for t in local["target_tasks"])
    assert local["model_name"] == ("tiny-causal" if causal else "tiny") and local["data"] == "data/sample"
    assert cluster["model_name"] != local["model_name"] and cluster["data"] == "hf"
    if causal:
        assert cluster["model_revision"] and cluster["generation"]["k"] == [1, 10]
    for task in cluster["task_data"]:  # local-only intermediates point at the cache PVC on the cluster
        assert task in cluster["conditions"] and get_task(task).hub is None


def test_cluster_preset_is_compiled_as_the_ui_defaults(tmp_path):
    import yaml

    from pipelines.xstilts import compile_pipeline

    spec = yaml.safe_load(compile_pipeline(tmp_path / "p.yaml", defaults=CLUSTER_PRESETS["english-humaneval"])
                          .read_text().split("\n---\n")[0])
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["target_tasks"]["defaultValue"] == ["humaneval"]
    assert params["conditions"]["defaultValue"] == ["none", "mnli", "squad"]
    assert params["generation"]["defaultValue"]["n"] == 20


def test_encoder_tasks_as_text_to_text():
    pair = pd.DataFrame({"text_a": ["A man sleeps."], "text_b": ["Someone rests."], "label": ["entailment"],
                         "language": ["en"]})
    rows = kinds.as_generation(get_task("mnli"), pair)
    assert rows.loc[0, "prompt"].startswith("Task: mnli\nSentence 1: A man sleeps.\nSentence 2: Someone rests.")
    assert rows.loc[0, "prompt"].endswith("Label:") and rows.loc[0, "completion"] == " entailment"
    qa = pd.DataFrame({"text_a": ["Who?"], "text_b": ["Ann came."], "answer_texts": [["Ann"]],
                       "answer_starts": [[0]], "language": ["en"]})
    assert kinds.as_generation(get_task("squad"), qa).loc[0, "completion"] == " Ann"
    with pytest.raises(ValueError, match="no text-to-text form"):
        kinds.as_generation(get_task("panx"), pair)


@pytest.fixture(scope="module")
def humaneval_run(sample_root, tmp_path_factory):
    """english-humaneval in miniature: tiny-causal → mnli as text → text → humaneval target (MBPP) → ONNX."""
    from xstilts.export.encoder import export_onnx
    from xstilts.data.validate import validate_experiment

    root = tmp_path_factory.mktemp("humaneval")
    validate_experiment(["humaneval"], ["none", "mnli"], str(sample_root), root / "ds", root / "r.html",
                        root / "r.md", ["en"])
    intermediate_finetune("mnli", root / "ds", "tiny-causal", root / "mnli", CONFIG)
    target_finetune("humaneval", root / "ds", root / "mnli", root / "target", CONFIG)
    export_onnx(root / "target", root / "onnx")
    return root


def test_mnli_trains_a_causal_lm_then_humaneval_is_scored_by_execution(humaneval_run):
    from xstilts.evaluate.zero_shot import zero_shot_eval

    training = json.loads((humaneval_run / "mnli" / "training.json").read_text())
    assert training["tasks"] == ["mnli"] and training["steps"] == 3 and training["losses"][-1] > 0
    assert (humaneval_run / "mnli" / "lm" / "config.json").exists()  # a causal LM, not an encoder with heads
    out = humaneval_run / "eval"
    results = zero_shot_eval(humaneval_run / "onnx", humaneval_run / "ds", out,
                             generation={"n": 2, "temperature": 0.8, "k": [1, 2], "max_new_tokens": 16,
                                         "min_new_tokens": 4})
    assert results["metric"] == "pass@1" and set(results["scores"]) == {"en"}
    assert set(results["details"]["en"]) == {"pass@1", "pass@2", "passed_samples"}
    assert results["condition"] == "mnli" and results["generation"]["samples"] == 2 * results["examples"]["en"]
    executed = [json.loads(line) for line in (out / "execution" / "samples.jsonl").read_text().splitlines()]
    assert len(executed) == results["generation"]["samples"] and all(r["status"] for r in executed)
    assert results["sandbox"]["mode"] and (out / "generation" / "samples.jsonl").exists()
    assert "pass@2" in (out / "results.md").read_text() and (out / "lineage.json").exists()


def test_generation_settings_are_checked(humaneval_run, tmp_path):
    from xstilts.evaluate.zero_shot import zero_shot_eval

    with pytest.raises(ConfigError, match="unknown generation setting.s. beams"):
        zero_shot_eval(humaneval_run / "onnx", humaneval_run / "ds", tmp_path / "e", generation={"beams": 4})
    with pytest.raises(ConfigError, match="'k' must be integers in 1..n"):
        zero_shot_eval(humaneval_run / "onnx", humaneval_run / "ds", tmp_path / "e", generation={"k": [10]})
    assert not (tmp_path / "e").exists()


def test_generation_settings_from_kfp_floats():
    from xstilts.config import generation_settings

    settings = generation_settings({"n": 20.0, "max_new_tokens": 64.0, "k": [1.0, 10.0], "temperature": 0.2})
    assert settings["n"] == 20 and isinstance(settings["max_new_tokens"], int) and settings["k"] == [1, 10]
    with pytest.raises(ConfigError, match="'max_new_tokens' must be an integer, got 64.5"):
        generation_settings({"max_new_tokens": 64.5})


def test_code_mbxp_preset_end_to_end(sample_root, tmp_path):
    """`xstilts run --local --preset code-mbxp`: tiny-causal → humaneval_xl_en (or none) → MBPP target training →
    KV-cache ONNX → generation + sandboxed execution in six programming languages → the grid report."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    xstilts = str(Path(sys.executable).parent / "xstilts")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({"data": str(sample_root)}))
    out = subprocess.run([xstilts, "run", "--local", "--preset", "code-mbxp", "--params", str(tmp_path / "p.yaml"),
                          "--workdir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = Path([line for line in out.stdout.splitlines() if line.startswith("report: ")][-1].removeprefix("report: "))
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["targets"] == ["mbxp"] and summary["conditions"] == ["none", "humaneval_xl_en"]
    assert summary["metric"] == {"mbxp": "pass@1"}
    for scores in summary["scores"]["mbxp"].values():
        assert list(scores) == ["python", "javascript", "typescript", "java", "cpp", "go"]
        assert all(0 <= s <= 1 for s in scores.values())
    for condition in ("none", "humaneval_xl_en"):  # every completion was executed, none skipped
        details = summary["details"]["mbxp"][condition]
        assert all("pass@1" in details[lang] for lang in details)
