"""`xstilts bench eval`: every setup measured on the same inputs, fused model parity, int8 agreement, the export
path's fusion (from OPTIMIZE_FROM_PARAMETERS) and its small models saved as traced. No timed assertions: speed is
what the benchmark prints, not what the tests check."""

import json

import onnx
import pytest
import torch
from typer.testing import CliRunner

from xstilts.bench.eval import BASELINE, bench_eval
from xstilts.cli.main import app
from xstilts.io import read_json

SETUPS = [BASELINE, "ort-export", "ort-transformers-optimizer", "ort-fused", "ort-fused-int8"]


@pytest.fixture(scope="module")
def bench_run(target_model, sample_root, tmp_path_factory):
    """The command on the trained tiny XNLI model, 48 test rows, one timed pass per setup."""
    out = tmp_path_factory.mktemp("bench") / "bench-eval.json"
    result = CliRunner().invoke(app, ["bench", "eval", "--model", str(target_model), "--data", str(sample_root),
                                      "--examples", "48", "--batch-size", "16", "--repeats", "1", "--out", str(out)])
    return result, out


def test_command_prints_a_table_and_writes_every_setup(bench_run):
    result, out = bench_run
    assert result.exit_code == 0, result.output
    for name in SETUPS:
        assert name in result.output
    report = json.loads(out.read_text())
    assert [s["setup"] for s in report["setups"]] == SETUPS
    assert report["examples"] == 48 and report["task"] == "xnli" and report["device"]
    for setup in report["setups"]:
        assert setup["samples_per_s"] > 0 and len(setup["seconds"]) == 1
        assert 0 <= setup["agreement"] <= 1 and 0 <= setup["accuracy"] <= 1
        assert setup["model_bytes"] > 0 and setup["max_abs_logit_diff"] >= 0
        assert setup["ratio_vs_pytorch"] == pytest.approx(setup["samples_per_s"] / report["setups"][0]["samples_per_s"],
                                                          rel=1e-2)
    baseline = report["setups"][0]
    assert baseline["agreement"] == 1.0 and baseline["max_abs_logit_diff"] == 0.0


def test_fused_model_has_attention_fused_and_matches_pytorch(bench_run):
    setups = {s["setup"]: s for s in json.loads(bench_run[1].read_text())["setups"]}
    fused = setups["ort-fused"]
    assert fused["fused_ops"]["Attention"] == 2 and fused["fused_ops"]["SkipLayerNormalization"] >= 4  # 2 layers
    assert fused["max_abs_logit_diff"] <= 1e-4 and fused["agreement"] == 1.0
    assert fused["accuracy"] == setups[BASELINE]["accuracy"]


def test_int8_reports_its_accuracy_cost(bench_run):
    setups = {s["setup"]: s for s in json.loads(bench_run[1].read_text())["setups"]}
    int8 = setups["ort-fused-int8"]
    assert any("Integer" in op or op.startswith("DynamicQuantize") for op in int8["fused_ops"])  # really quantised
    assert int8["model_bytes"] < setups["ort-fused"]["model_bytes"]
    assert int8["max_abs_logit_diff"] > 0  # int8 is not bit-exact; its cost is the agreement/accuracy reported
    assert 0.5 <= int8["agreement"] <= 1.0


def test_a_small_models_pipeline_export_is_saved_as_traced_and_parity_checked(onnx_model):
    report = read_json(onnx_model / "export_report.json")
    assert report["optimized"] is False and report["fused_ops"] == {}  # tiny: below OPTIMIZE_FROM_PARAMETERS
    assert report["parity_passed"] and report["max_abs_diff"] <= 1e-4
    assert "| optimized | False |" in (onnx_model / "export_report.md").read_text()


def test_an_optimized_export_is_fused_and_parity_checked(target_model, tmp_path):
    result = CliRunner().invoke(app, ["step", "export", "--model", str(target_model), "--out", str(tmp_path / "onnx"),
                                      "--optimize"])
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "onnx" / "export_report.json")
    assert report["optimized"] and report["fused_ops"].get("attention") == 2
    assert report["parity_passed"] and report["max_abs_diff"] <= 1e-4
    ops = {node.op_type for node in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.node}
    assert "Attention" in ops and "SkipLayerNormalization" in ops


def test_export_optimizes_by_model_size(monkeypatch):
    from xstilts.export import encoder

    module = torch.nn.Linear(10, 10)  # 110 parameters
    assert not encoder.worth_optimizing(module)
    monkeypatch.setattr(encoder, "OPTIMIZE_FROM_PARAMETERS", 110)
    assert encoder.worth_optimizing(module)


def test_joined_rows_give_longer_examples_without_gold_accuracy(target_model, sample_root, tmp_path):
    report = bench_eval(model=str(target_model), data=str(sample_root), examples=16, batch_size=8, repeats=1,
                        join=3, int8=False, out=tmp_path / "b.json", work_dir=tmp_path / "work")
    assert [s["setup"] for s in report["setups"]] == SETUPS[:-1]
    assert report["join"] == 3 and report["examples"] == 16 and report["mean_tokens"] > 30
    assert all(s["accuracy"] is None and s["samples_per_s"] > 0 for s in report["setups"])
    assert read_json(tmp_path / "b.json") == report


@pytest.mark.parametrize("args, message", [
    (["--task", "xquad"], "sentence classification"),
    (["--shape", "huge"], "unknown --shape 'huge'"),
    (["--examples", "0"], "--examples must be at least 1"),
])
def test_bad_options_fail_with_one_error_line(args, message, sample_root, tmp_path):
    result = CliRunner().invoke(app, ["bench", "eval", "--data", str(sample_root), "--out", str(tmp_path / "b.json"),
                                      *args])
    assert result.exit_code == 1 and "error:" in result.output and message in result.output
    assert not (tmp_path / "b.json").exists()
