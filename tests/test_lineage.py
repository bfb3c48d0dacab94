"""Provenance: lineage.json on every artifact, md5 audit with tamper detection, and `xstilts lineage`."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts import provenance
from xstilts.ops import lineage
from xstilts.provenance import LINEAGE_FILE, LineageError, artifact_md5, record
from xstilts.ops.lineage import MissingParentError, TamperedArtifactError, audit

REPO = Path(__file__).resolve().parents[1]
XSTILTS = str(Path(sys.executable).parent / "xstilts")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_artifact_md5_file_and_directory(tmp_path):
    f = write(tmp_path / "a.txt", "hello")
    assert artifact_md5(f) == hashlib.md5(b"hello").hexdigest()
    d = tmp_path / "dir"
    write(d / "x.bin", "1")
    write(d / "sub" / "y.bin", "2")
    before = artifact_md5(d)
    write(d / LINEAGE_FILE, "{}")  # the record itself is not part of the artifact
    assert artifact_md5(d) == before
    (d / "sub" / "y.bin").rename(d / "sub" / "z.bin")  # names count, not only bytes
    assert artifact_md5(d) != before


def test_code_version_prefers_env(monkeypatch):
    monkeypatch.setenv("XSTILTS_COMMIT", "abc123")
    monkeypatch.setenv("XSTILTS_IMAGE", "ghcr.io/xstilts/xstilts:abc123")
    assert provenance.code_version() == {"code_commit": "abc123", "image": "ghcr.io/xstilts/xstilts:abc123"}
    monkeypatch.delenv("XSTILTS_COMMIT")
    monkeypatch.delenv("XSTILTS_IMAGE")
    version = provenance.code_version()
    assert version["image"] is None and version["code_commit"]  # git HEAD here, else the package version


def fake_chain(root: Path) -> dict[str, Path]:
    """data → dataset → model → onnx, each with its lineage record."""
    data = write(root / "data" / "xnli" / "test.jsonl", '{"premise": "a"}\n')
    ds = root / "run" / "validate-data" / "dataset"
    write(ds / "manifest.json", "{}")
    record(ds, "validate", params={"target_tasks": ["xnli"]}, data={"source": str(data.parent.parent),
                                                                    "files": provenance.source_files([data])})
    model = root / "run" / "loop" / "target-finetune" / "model"
    write(model / "weights.bin", "w" * 100)
    record(model, "target", {"dataset": ds}, {"task": "xnli", "condition": "none"})
    onnx = root / "run" / "loop" / "export-onnx" / "onnx_model"
    write(onnx / "model.onnx", "onnx-bytes")
    entry = record(onnx, "export", {"model": model}, {"opset": 18})
    assert entry["inputs"]["model"] == {"path": str(model.resolve()), "md5": artifact_md5(model)}
    assert entry["artifact_md5"] == artifact_md5(onnx) and entry["files"] == {"model.onnx": artifact_md5(onnx / "model.onnx")}
    assert set(entry) >= {"step", "artifact_md5", "inputs", "params", "code_commit", "image", "data", "started_at", "seconds"}
    version = json.loads((ds / "lineage.json").read_text())["data_version"]  # the validate step's, inherited
    assert version["md5"] and entry["data_version"] == version
    assert provenance.metadata(onnx) == {"md5": entry["artifact_md5"], "parent_md5s": {"model": artifact_md5(model)},
                                      "code_commit": entry["code_commit"], "image": entry["image"] or "",
                                      "data_repo": "", "data_rev": "", "data_commit": "", "data_md5": version["md5"],
                                      "params": {"opset": 18}, "started_at": entry["started_at"],
                                      "seconds": entry["seconds"]}
    return {"data": data, "dataset": ds, "model": model, "onnx": onnx, "run": root / "run"}


def test_audit_links_parents_in_pipeline_order(tmp_path):
    paths = fake_chain(tmp_path)
    nodes = audit(paths["run"])
    assert [n["step"] for n in nodes] == ["validate", "target", "export"]
    validate, target, export = nodes
    assert target["parents"]["dataset"]["path"] == validate["path"]
    assert export["parents"]["model"] == {"path": target["path"], "md5": target["artifact_md5"], "step": "target"}
    assert (export["condition"], export["task"]) == ("none", "xnli")  # inherited from the target model
    assert lineage.run_directory(paths["onnx"]) == paths["run"].resolve()


def test_audit_names_the_tampered_file(tmp_path):
    paths = fake_chain(tmp_path)
    with open(paths["model"] / "weights.bin", "r+b") as f:
        f.seek(10)
        f.write(b"X")
    with pytest.raises(TamperedArtifactError, match=r"target-finetune/model \(step target\).*recorded md5 [0-9a-f]{32}, "
                                                    r"actual [0-9a-f]{32} \(changed: weights.bin\)"):
        audit(paths["run"])
    write(paths["model"] / "extra.txt", "x")
    with pytest.raises(TamperedArtifactError, match="added: extra.txt"):
        audit(paths["run"])


def test_audit_reports_a_missing_parent(tmp_path):
    paths = fake_chain(tmp_path)
    os.unlink(paths["model"] / LINEAGE_FILE)  # the model is no longer a recorded artifact of the run
    with pytest.raises(MissingParentError, match=r"export-onnx/onnx_model \(step export\): its input 'model'"):
        audit(paths["run"])
    nodes = audit(paths["run"], allow_missing_parents=True)
    assert nodes[-1]["parents"] == {"model": None}


def test_audit_reports_a_replaced_parent(tmp_path):
    paths = fake_chain(tmp_path)
    write(paths["model"] / "weights.bin", "retrained")
    record(paths["model"], "target", {"dataset": paths["dataset"]}, {"task": "xnli"})  # consistent, but not what export read
    with pytest.raises(MissingParentError, match="replaced after this step read it"):
        audit(paths["run"])


# ---- a real (small) run, built from the library steps, audited end to end --------------------------------------------

TRAIN = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3, "max_length": 48, "patience": 0}


@pytest.fixture(scope="module")
def small_run(sample_root, tmp_path_factory):
    """validate → intermediate → target → export → eval → gather → report for none × {xnli, tatoeba}, laid out like
    a kfp.local run."""
    from xstilts.evaluate.zero_shot import zero_shot_eval
    from xstilts.export.encoder import export_onnx
    from xstilts.evaluate.report import build_report
    from xstilts.evaluate.summary import gather_results
    from xstilts.config import TrainConfig
    from xstilts.train.finetune import intermediate_finetune, target_finetune
    from xstilts.data.validate import validate_experiment

    run = tmp_path_factory.mktemp("kfp") / "xstilts-run"
    config = TrainConfig.from_dict(TRAIN)
    dataset = run / "validate-data" / "dataset"
    validate_experiment(["xnli", "tatoeba"], ["none"], str(sample_root), dataset, run / "validate-data" / "report_html",
                        run / "validate-data" / "report_md", ["en", "fr"])
    loop = run / "for-loop-1-iteration-0"
    inter = loop / "intermediate-finetune" / "model"
    intermediate_finetune("none", dataset, "tiny", inter, config)
    results = []
    for i, task in enumerate(["xnli", "tatoeba"]):
        inner = loop / f"for-loop-2-iteration-{i}"
        target_finetune(task, dataset, inter, inner / "target-finetune" / "model", config)
        export_onnx(inner / "target-finetune" / "model", inner / "export-onnx" / "onnx_model")
        zero_shot_eval(inner / "export-onnx" / "onnx_model", dataset, inner / "zero-shot-eval" / "results")
        results.append(inner / "zero-shot-eval" / "results")
    gather_results(results, loop / "gather-results" / "gathered")
    build_report([loop / "gather-results" / "gathered"], run / "report" / "summary")
    return run


def test_a_run_audits_end_to_end(small_run, sample_root):
    nodes = audit(small_run)
    steps = [n["step"] for n in nodes]
    assert steps == ["validate", "intermediate", "target", "target", "export", "export", "evaluate", "evaluate",
                     "gather", "report"]
    by = {(n["step"], n["task"]): n for n in nodes}
    validate = by[("validate", None)]
    assert validate["data"]["source"] == str(sample_root)
    assert str((sample_root / "xnli" / "test.jsonl").resolve()) in validate["data"]["files"]
    assert validate["params"]["conditions"] == ["none"]
    evaluate = by[("evaluate", "xnli")]
    assert evaluate["condition"] == "none"
    assert {p["step"] for p in evaluate["parents"].values()} == {"export", "validate"}
    assert by[("export", "xnli")]["parents"]["model"]["path"] == by[("target", "xnli")]["path"]
    assert by[("target", "tatoeba")]["params"]["trained"] is False  # retrieval: the encoder passes through
    assert by[("target", "xnli")]["parents"]["intermediate_model"]["step"] == "intermediate"
    report = by[("report", None)]
    assert list(report["parents"]) == ["condition[none]"] and report["parents"]["condition[none]"]["step"] == "gather"
    assert set(by[("gather", None)]["inputs"]) == {"results[xnli]", "results[tatoeba]"}
    assert all(n["code_commit"] and n["started_at"].endswith("+00:00") and n["seconds"] >= 0 for n in nodes)


def xstilts(*args):
    return subprocess.run([XSTILTS, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_lineage_text_and_json(small_run):
    out = xstilts("lineage", str(small_run / "report" / "summary"))  # a report folder: walks up to the run
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for expected in ("10 artifacts verified", "data", "validate", "condition none", "target xnli", "target tatoeba",
                     "ONNX", "eval results", "gather", "report", "opset=18"):
        assert expected in text, expected
    out = xstilts("lineage", str(small_run), "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["run"] == str(small_run.resolve()) and data["verified"]
    assert [a["step"] for a in data["artifacts"]][-1] == "report"


def test_tampered_onnx_fails_audit_and_cli(small_run):
    onnx = small_run / "for-loop-1-iteration-0" / "for-loop-2-iteration-0" / "export-onnx" / "onnx_model" / "model.onnx"
    original = onnx.read_bytes()
    try:
        with open(onnx, "r+b") as f:
            f.seek(len(original) // 2)
            f.write(bytes([original[len(original) // 2] ^ 0xFF]))
        with pytest.raises(TamperedArtifactError, match=r"onnx_model \(step export\).*changed: model\.onnx"):
            audit(small_run)
        out = xstilts("lineage", str(small_run))
        assert out.returncode == 1
        assert "error:" in out.stderr and "model.onnx" in out.stderr and "step export" in out.stderr
        assert "Traceback" not in out.stderr
    finally:
        onnx.write_bytes(original)
    assert len(audit(small_run)) == 10


def test_link_and_chain_tree_without_files():
    """The shared linking and tree (the Kubeflow audit feeds records read from the cluster, not folders)."""
    from rich.console import Console

    def node(path, step, md5, inputs=(), **params):
        return {"path": path, "step": step, "artifact_md5": md5, "params": params, "code_commit": "c" * 40,
                "seconds": 1.5, "inputs": {name: {"path": p, "md5": m} for name, p, m in inputs}}

    nodes = [node("/r/report", "report", "e" * 32, [("promotion", "/r/gate", "d" * 32)], targets=["xnli"]),
             node("/r/gate", "promote", "d" * 32, [("results[0]", "/r/gather", "c" * 32)]),
             node("/r/gather", "gather", "c" * 32, [("results[xnli]", "/r/onnx", "b" * 32)], condition="none"),
             node("/r/onnx", "export", "b" * 32, [("model", "/r/model", "a" * 32)], opset=18),
             node("/r/model", "target", "a" * 32, condition="none", task="xnli")]
    linked = lineage.link(nodes, "test run")
    assert [n["step"] for n in linked] == ["target", "export", "gather", "promote", "report"]
    assert linked[1]["task"] == "xnli" and linked[3]["condition"] is None  # run-wide steps inherit nothing
    console = Console(width=160, record=True)
    console.print(lineage.chain_tree(linked, "run", lambda n: n["path"]))
    text = console.export_text()
    assert text.index("condition none") < text.index("target xnli") < text.index("ONNX bbbbbbbb") < text.index("gather")
    assert text.index("gather") < text.index("promote dddddddd") < text.index("report eeeeeeee")
    assert "commit cccccccccc 1.5s opset=18 /r/onnx" in text

    next(n for n in nodes if n["step"] == "export")["inputs"]["model"]["md5"] = "0" * 32
    with pytest.raises(MissingParentError, match=r"artifact /r/onnx \(step export\): its input 'model' \(/r/model\) is "
                                                 r"recorded with md5 0{32}, but that artifact \(step target\) has md5 a{32}"):
        lineage.link(nodes, "test run")


def test_run_directory_is_never_a_guess(tmp_path):
    paths = fake_chain(tmp_path)
    run = paths["run"].resolve()
    assert lineage.run_directory(run) == run
    assert lineage.run_directory(paths["onnx"] / "model.onnx") == run  # a file inside an artifact
    empty = paths["run"] / "loop" / "empty"
    empty.mkdir()
    with pytest.raises(LineageError, match="no run directory at or above .*empty"):
        lineage.run_directory(empty)  # near a run, but not in one of its artifacts
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(LineageError, match="notes.txt is a file outside any artifact"):
        lineage.run_directory(notes)
    other = tmp_path / "other"
    (other / "validate-data" / "dataset").mkdir(parents=True)
    (other / "validate-data" / "dataset" / LINEAGE_FILE).write_text(
        (paths["dataset"] / LINEAGE_FILE).read_text())
    with pytest.raises(LineageError, match="holds 2 runs' records; give one run directory"):
        lineage.run_directory(tmp_path)
    (paths["dataset"] / LINEAGE_FILE).write_text("{not json")
    with pytest.raises(LineageError, match="dataset/lineage.json: unreadable lineage record"):
        lineage.run_directory(paths["onnx"])  # never another run's result instead
