"""The exported-graph store (xstilts.export.graphs): models of one architecture trace once and reuse the template,
with the same model.onnx bytes as an export without the store; another architecture gets its own entry; a corrupt
entry is traced again; a template that does not fit the model falls back to a fresh trace; concurrent exports of
one architecture trace once."""

import contextlib
import filecmp
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from xstilts import env
from xstilts.export.encoder import export_onnx
from xstilts.export.graphs import GraphStore
from xstilts.models.encoder import build_model, load_encoder, save_model_dir

KIND = "pair_classification"


def make_model(out: Path, seed: int, labels: int = 3) -> Path:
    """A target model directory from the tiny encoder, every weight shifted by seeded noise (no training)."""
    encoder, tokenizer = load_encoder("tiny")
    spec = {"kind": KIND, "labels": [f"label{i}" for i in range(labels)]}
    model = build_model(encoder, {"xnli": spec})
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    out.mkdir(parents=True)
    save_model_dir(out, model.encoder, tokenizer, model,
                   {"condition": "none", "heads": {"xnli": spec}, "settings": {"max_length": 64}})
    return out


def export(model: Path, out: Path, store: Path | None, optimize: bool | None = None) -> str:
    """Export with the store at `store` (None: off); what it printed. The tiny model is saved as traced unless
    `optimize`."""
    saved = os.environ.pop(env.GRAPH_CACHE, None)
    if store is not None:
        os.environ[env.GRAPH_CACHE] = str(store)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            export_onnx(model, out, optimize=optimize)
    finally:
        os.environ.pop(env.GRAPH_CACHE, None)
        if saved is not None:
            os.environ[env.GRAPH_CACHE] = saved
    return printed.getvalue()


def graph_line(printed: str) -> tuple[str, str]:
    """(traced|reused, key) from the `[export] graph ...` line."""
    (how, key), = re.findall(r"^\[export\] graph (traced|reused) (\S+)$", printed, re.M)
    return how, key


def outputs(onnx_dir: Path) -> np.ndarray:
    ids = np.random.default_rng(0).integers(5, 300, (3, 21))
    session = ort.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """Models a and b (3 labels, different weights), c (2 labels); a store holding the graph traced for a; b
    exported without the store (a fresh trace)."""
    root = tmp_path_factory.mktemp("graphs")
    models = {name: make_model(root / name, seed, labels) for name, seed, labels in
              (("a", 1, 3), ("b", 2, 3), ("c", 3, 2))}
    printed = export(models["a"], root / "onnx-a", root / "store")
    fresh = export(models["b"], root / "onnx-b-fresh", None)
    return {"root": root, "models": models, "store": root / "store", "a": graph_line(printed),
            "fresh": graph_line(fresh), "fresh_dir": root / "onnx-b-fresh"}


@pytest.fixture
def store(traced, tmp_path) -> Path:
    """A copy of the store holding a's graph, for a test to change."""
    shutil.copytree(traced["store"], tmp_path / "store")
    return tmp_path / "store"


def test_a_model_of_the_same_architecture_reuses_the_graph_with_the_same_bytes(traced, store, tmp_path):
    how, key = traced["a"]
    assert how == "traced" and traced["fresh"] == ("traced", key)  # the key does not depend on the weights
    assert graph_line(export(traced["models"]["b"], tmp_path / "onnx-b", store)) == ("reused", key)
    assert filecmp.cmp(tmp_path / "onnx-b" / "model.onnx", traced["fresh_dir"] / "model.onnx", shallow=False)
    np.testing.assert_array_equal(outputs(tmp_path / "onnx-b"), outputs(traced["fresh_dir"]))
    assert not np.allclose(outputs(tmp_path / "onnx-b"), outputs(traced["root"] / "onnx-a"))  # b's weights, not a's
    assert sorted(p.name for p in store.glob("*.onnx")) == [f"{key}.onnx"]


def test_an_optimized_export_of_a_reused_graph_has_the_bytes_of_a_fresh_one(traced, store, tmp_path):
    """The optimizer and fusions (a real encoder's path) run on the instantiated template: same bytes too."""
    assert graph_line(export(traced["models"]["b"], tmp_path / "b", store, optimize=True)) == ("reused", traced["a"][1])
    assert graph_line(export(traced["models"]["b"], tmp_path / "b-fresh", None, optimize=True))[0] == "traced"
    assert filecmp.cmp(tmp_path / "b" / "model.onnx", tmp_path / "b-fresh" / "model.onnx", shallow=False)
    assert not filecmp.cmp(tmp_path / "b" / "model.onnx", traced["fresh_dir"] / "model.onnx", shallow=False)
    np.testing.assert_allclose(outputs(tmp_path / "b"), outputs(traced["fresh_dir"]), atol=1e-5)


def test_another_architecture_gets_its_own_entry(traced, store, tmp_path):
    how, key = graph_line(export(traced["models"]["c"], tmp_path / "onnx-c", store))
    assert how == "traced" and key != traced["a"][1] and key.startswith(f"HeadModule-{KIND}-")
    assert len(list(store.glob("*.onnx"))) == 2
    assert outputs(tmp_path / "onnx-c").shape == (3, 2)


@pytest.mark.parametrize("damage", ["bytes", "protobuf"])
def test_a_corrupt_entry_is_dropped_with_a_warning_and_traced_again(damage, traced, store, tmp_path):
    key = traced["a"][1]
    entry = store / f"{key}.onnx"
    if damage == "bytes":  # the md5 beside it no longer matches
        data = bytearray(entry.read_bytes())
        data[len(data) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    else:  # matching md5, but not a protobuf
        entry.write_bytes(b"\xff" * 100)
        (store / f"{key}.md5").write_text(hashlib.md5(b"\xff" * 100).hexdigest())
    printed = export(traced["models"]["b"], tmp_path / "onnx-b", store)
    warnings = [line for line in printed.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"graph cache entry {key} is unreadable" in warnings[0]
    assert graph_line(printed) == ("traced", key)
    assert GraphStore(store).read(key) is not None  # written again, whole
    assert filecmp.cmp(tmp_path / "onnx-b" / "model.onnx", traced["fresh_dir"] / "model.onnx", shallow=False)


def test_a_template_missing_a_parameter_falls_back_to_a_fresh_trace(traced, store, tmp_path):
    key = traced["a"][1]
    entry = GraphStore(store)
    template = onnx.load_from_string(entry.read(key))
    name = "model.heads.xnli.out_proj.bias"
    renamed = 0
    for initializer in template.graph.initializer:
        if initializer.name == name:
            initializer.name, renamed = "not.a.parameter", renamed + 1
    for node in template.graph.node:
        node.input[:] = ["not.a.parameter" if i == name else i for i in node.input]
    assert renamed == 1
    entry.write(key, template.SerializeToString(), {})
    printed = export(traced["models"]["b"], tmp_path / "onnx-b", store)
    assert graph_line(printed) == ("reused", key)
    assert re.search(rf"graph {key} does not fit this model \(.*{re.escape(name)}.*\); tracing it afresh", printed)
    assert filecmp.cmp(tmp_path / "onnx-b" / "model.onnx", traced["fresh_dir"] / "model.onnx", shallow=False)


def test_concurrent_exports_of_one_architecture_trace_once(traced, tmp_path):
    """Two processes export a and b at once with an empty store: one traces, the other waits on the key's lock,
    then reuses the entry."""
    code = "import sys; from xstilts.export.encoder import export_onnx; export_onnx(sys.argv[1], sys.argv[2])"
    environ = dict(os.environ, **{env.GRAPH_CACHE: str(tmp_path / "store")})
    runs = [subprocess.Popen([sys.executable, "-c", code, str(traced["models"][name]), str(tmp_path / name)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)
            for name in ("a", "b")]
    printed = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], printed
    lines = sorted(graph_line(text) for text in printed)
    assert [how for how, _ in lines] == ["reused", "traced"] and lines[0][1] == lines[1][1] == traced["a"][1]
    assert filecmp.cmp(tmp_path / "b" / "model.onnx", traced["fresh_dir"] / "model.onnx", shallow=False)


def test_a_retrieval_encoder_pooled_below_its_last_layer_reuses_its_graph(tmp_path):
    """Pooling layer 0 leaves the last layer's parameters out of the graph: the template records them as unused,
    so the next model of the architecture still reuses it (and gets the bytes of a fresh export)."""
    def retrieval_model(out: Path, seed: int) -> Path:
        encoder, tokenizer = load_encoder("tiny")
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in encoder.parameters():
                parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
        out.mkdir(parents=True)
        save_model_dir(out, encoder, tokenizer, info={"task": "tatoeba", "condition": "none", "heads": {}})
        return out

    first, second = retrieval_model(tmp_path / "a", 1), retrieval_model(tmp_path / "b", 2)
    store = tmp_path / "store"
    assert graph_line(export(first, tmp_path / "a.onnx", store))[0] == "traced"
    printed = export(second, tmp_path / "b.onnx", store)
    assert graph_line(printed)[0] == "reused" and "does not fit" not in printed
    export(second, tmp_path / "b-fresh.onnx", None)
    assert filecmp.cmp(tmp_path / "b.onnx" / "model.onnx", tmp_path / "b-fresh.onnx" / "model.onnx", shallow=False)
