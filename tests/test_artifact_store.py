"""Model folders in a DVC remote (xstilts/ops/artifact_store.py): a real local DVC remote, `dvc` itself as the judge of
the md5, the components with `dvc_remote`, the compiled pipeline's Secret references, and an S3 remote served by
moto on loopback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp.dsl import Dataset, Markdown, Metrics, Model
from typer.testing import CliRunner

from xstilts.ops import artifact_store
from xstilts.ops.artifact_store import ArtifactStoreError

REPO = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}
SECRET_TEMPLATE = REPO / "k8s" / "base" / "dvc-remote-secret.template.yaml"


def sh(*args, cwd):
    return subprocess.run(list(args), cwd=cwd, env=ENV, check=True, capture_output=True, text=True).stdout


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def remote_files(remote: Path) -> set[str]:
    return {p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()}


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A small model-shaped folder: nested files, binary weights, an empty file."""
    root = tmp_path / "model"
    (root / "encoder").mkdir(parents=True)
    (root / "heads").mkdir()
    (root / "encoder" / "config.json").write_text('{"hidden_size": 64}\n')
    (root / "encoder" / "model.safetensors").write_bytes(bytes(range(256)) * 400)
    (root / "heads" / "xnli.safetensors").write_bytes(os.urandom(5000))
    (root / "heads.json").write_text("{}\n")
    (root / "empty.txt").write_bytes(b"")
    return root


def test_push_is_dvc_add_and_pull_returns_the_same_bytes(model_dir, tmp_path):
    remote = tmp_path / "remote"
    record = artifact_store.push(model_dir, str(remote))
    assert record["dvc_md5"].endswith(".dir") and record["nfiles"] == 5 and record["uploaded"] == 5
    assert record["size"] == sum(len(b) for b in contents(model_dir).values())
    assert record["remote"] == str(remote) and record["remote_url"] == str(remote)
    # DVC's own layout: files/md5/<2>/<30> per file plus the `.dir` listing.
    md5 = record["dvc_md5"]
    assert f"files/md5/{md5[:2]}/{md5[2:]}" in remote_files(remote) and len(remote_files(remote)) == 6

    # `dvc add` computes the same md5 for the same folder, and `dvc pull` (no local cache) fetches it from our push.
    repo = tmp_path / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh(DVC, "init", "-q", cwd=repo)
    sh(DVC, "remote", "add", "-d", "store", str(remote), cwd=repo)
    shutil.copytree(model_dir, repo / "model")
    sh(DVC, "add", "-q", "model", cwd=repo)
    assert yaml.safe_load((repo / "model.dvc").read_text())["outs"][0]["md5"] == md5
    shutil.rmtree(repo / "model")
    shutil.rmtree(repo / ".dvc" / "cache")
    sh(DVC, "pull", "-q", cwd=repo)
    assert contents(repo / "model") == contents(model_dir)

    original = contents(model_dir)
    shutil.rmtree(model_dir)
    pulled = artifact_store.pull(md5.removesuffix(".dir"), str(remote), tmp_path / "pulled")
    assert pulled["dvc_md5"] == md5 and pulled["nfiles"] == 5 and pulled["path"] == str(tmp_path / "pulled")
    assert contents(tmp_path / "pulled") == original
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp folders left


def test_pushing_the_same_content_twice_uploads_nothing(model_dir, tmp_path):
    remote = tmp_path / "remote"
    first = artifact_store.push(model_dir, str(remote))
    before = {p: p.stat().st_mtime_ns for p in remote.rglob("*") if p.is_file()}
    again = artifact_store.push(model_dir, str(remote))
    assert again["uploaded"] == 0 and again["dvc_md5"] == first["dvc_md5"]
    assert {p: p.stat().st_mtime_ns for p in remote.rglob("*") if p.is_file()} == before
    (model_dir / "heads.json").write_text('{"xnli": 3}\n')  # one changed file: one new file + a new listing
    changed = artifact_store.push(model_dir, str(remote))
    assert changed["uploaded"] == 1 and changed["dvc_md5"] != first["dvc_md5"]
    assert len(remote_files(remote)) == len(before) + 2


def test_clear_errors(model_dir, tmp_path):
    remote = tmp_path / "remote"
    record = artifact_store.push(model_dir, str(remote))
    unknown = "0123456789abcdef0123456789abcdef"
    with pytest.raises(ArtifactStoreError, match=f"unknown md5 {unknown}.dir: DVC remote '{remote}' holds no folder"):
        artifact_store.pull(unknown, str(remote), tmp_path / "out")
    with pytest.raises(ArtifactStoreError, match="remote itself does not exist"):
        artifact_store.pull(unknown, str(tmp_path / "nowhere"), tmp_path / "out")
    with pytest.raises(ArtifactStoreError, match="not a DVC folder md5: 'xyz'"):
        artifact_store.pull("xyz", str(remote), tmp_path / "out")
    with pytest.raises(ArtifactStoreError, match=r"unknown DVC remote 'nosuchremote' \(configured remotes: "):
        artifact_store.push(model_dir, "nosuchremote")
    with pytest.raises(ArtifactStoreError, match="not a folder"):
        artifact_store.push(tmp_path / "missing", str(remote))
    with pytest.raises(ArtifactStoreError, match="requires 'dvc-ssh' to be installed"):
        artifact_store.push(model_dir, "ssh://example.invalid/store")
    assert not (tmp_path / "out").exists()

    # A corrupted object on the remote: the pull fails and the destination keeps what it had.
    blob = next(p for p in remote.rglob("*") if p.is_file() and p.stat().st_size == 256 * 400)
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * (256 * 400))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("old")
    with pytest.raises(ArtifactStoreError, match=r"corrupt\): encoder/model.safetensors$"):
        artifact_store.pull(record["dvc_md5"], str(remote), tmp_path / "out")
    assert contents(tmp_path / "out") == {"keep.txt": b"old"}


def test_remote_by_name_from_the_dvc_config(model_dir, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh(DVC, "init", "-q", cwd=repo)
    sh(DVC, "remote", "add", "models", "../named-remote", cwd=repo)  # relative to the repo, as DVC resolves it
    monkeypatch.chdir(repo)
    record = artifact_store.push(model_dir, "models")
    assert record["remote"] == "models" and record["remote_url"] == str(tmp_path / "named-remote")
    assert (tmp_path / "named-remote" / "files" / "md5").is_dir()
    assert artifact_store.pull(record["dvc_md5"], "models", tmp_path / "back")["nfiles"] == 5


def test_cli_push_and_pull(model_dir, tmp_path):
    from xstilts.cli.main import app

    runner = CliRunner()
    remote = str(tmp_path / "remote")
    first = runner.invoke(app, ["artifacts", "push", str(model_dir), "--remote", remote])
    assert first.exit_code == 0, first.output
    md5 = first.stdout.strip().splitlines()[-1]
    assert md5.endswith(".dir") and "5 new file(s) uploaded" in first.output
    second = runner.invoke(app, ["artifacts", "push", str(model_dir), "--remote", remote])
    assert second.exit_code == 0 and "nothing new to upload" in second.output
    pulled = runner.invoke(app, ["artifacts", "pull", md5, "--remote", remote, "--out", str(tmp_path / "m")])
    assert pulled.exit_code == 0, pulled.output
    assert contents(tmp_path / "m") == contents(model_dir)
    missing = runner.invoke(app, ["artifacts", "pull", "f" * 32, "--remote", remote, "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "error:" in missing.output and f"unknown md5 {'f' * 32}.dir" in missing.output


def test_components_record_dvc_md5_on_the_model(tmp_path):
    """intermediate (none: the pretrained tiny encoder), target (tatoeba: passes through) and export, with
    dvc_remote set: each Model artifact carries the md5 of its folder as pushed, and the remote returns it."""
    from components.export_onnx import export_onnx
    from components.intermediate_finetune import intermediate_finetune
    from components.target_finetune import target_finetune

    def artifact(cls, name):
        return cls(name=name, uri=str(tmp_path / name), metadata={})

    remote = str(tmp_path / "remote")
    dataset = artifact(Dataset, "dataset")
    Path(dataset.path).mkdir()
    (Path(dataset.path) / "manifest.json").write_text("{}\n")
    inter = artifact(Model, "inter")
    intermediate_finetune.python_func(condition="none", seed=1, dataset=dataset, model_name="tiny", model_revision="",
                                      train_params={}, model=inter, metrics=artifact(Metrics, "im"), dvc_remote=remote)
    target = artifact(Model, "target")
    target_finetune.python_func(target_task="tatoeba", dataset=dataset, intermediate_model=inter, train_params={},
                                model=target, metrics=artifact(Metrics, "tm"), dvc_remote=remote)
    onnx_model = artifact(Model, "onnx")
    export_onnx.python_func(model=target, onnx_model=onnx_model, report=artifact(Markdown, "export.md"),
                            dvc_remote=remote)
    for model in (inter, target, onnx_model):
        meta = model.metadata
        assert meta["dvc_remote"] == remote and meta["dvc_md5"].endswith(".dir") and meta["md5"], meta
        pulled = artifact_store.pull(meta["dvc_md5"], remote, tmp_path / f"pulled-{model.name}")
        assert contents(Path(pulled["path"])) == contents(Path(model.path))
        assert meta["dvc_nfiles"] == len(contents(Path(model.path)))
    assert (Path(onnx_model.path) / "model.onnx").exists()

    plain = artifact(Model, "plain")  # without dvc_remote nothing is pushed and no dvc_* keys appear
    intermediate_finetune.python_func(condition="none", seed=1, dataset=dataset, model_name="tiny", model_revision="",
                                      train_params={}, model=plain, metrics=artifact(Metrics, "pm"))
    assert not [k for k in plain.metadata if k.startswith("dvc_")]


def test_compiled_pipeline_references_the_secret_and_holds_no_credentials(tmp_path):
    from pipelines.xstilts import DVC_REMOTE_SECRET, DVC_REMOTE_SECRET_KEYS, compile_pipeline

    template = yaml.safe_load(SECRET_TEMPLATE.read_text())
    assert template["metadata"]["name"] == DVC_REMOTE_SECRET
    assert set(template["stringData"]) == set(DVC_REMOTE_SECRET_KEYS)
    out = compile_pipeline(tmp_path / "p.yaml")
    text = out.read_text()
    docs = list(yaml.safe_load_all(text))
    spec, platform = docs[0], docs[1]
    assert spec["root"]["inputDefinitions"]["parameters"]["dvc_remote"]["defaultValue"] == ""
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    pushing = {name: ex for name, ex in executors.items()
               if any(s.get("secretName") == DVC_REMOTE_SECRET or s.get("secretNameParameter", {}).get(
                      "runtimeValue", {}).get("constant") == DVC_REMOTE_SECRET for s in ex.get("secretAsEnv", []))}
    assert sorted(pushing) == ["exec-export-onnx", "exec-intermediate-finetune", "exec-intermediate-pass-through",
                               "exec-target-finetune", "exec-target-pass-through-bucc18",
                               "exec-target-pass-through-tatoeba"]
    for ex in pushing.values():
        (secret,) = [s for s in ex["secretAsEnv"] if DVC_REMOTE_SECRET in str(s)]
        assert secret["optional"] is True
        assert {(m["secretKey"], m["envVar"]) for m in secret["keyToEnv"]} == {(k, k) for k in DVC_REMOTE_SECRET_KEYS}
    for component in ("comp-export-onnx", "comp-intermediate-finetune", "comp-intermediate-pass-through",
                      "comp-target-finetune", "comp-target-pass-through-bucc18", "comp-target-pass-through-tatoeba"):
        assert "dvc_remote" in spec["components"][component]["inputDefinitions"]["parameters"]
    # Only references: no values of any credential variable, and none of the environment's.
    assert "REPLACE_ME" not in text and "AKIA" not in text
    for key in DVC_REMOTE_SECRET_KEYS:
        value = os.environ.get(key)
        assert not value or value not in text
    committed = (REPO / "pipelines" / "compiled" / "xstilts.yaml").read_text()
    assert "dvc_remote" in committed and DVC_REMOTE_SECRET in committed


# ---- S3 (moto's server on loopback) --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def s3_endpoint():
    pytest.importorskip("moto")
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="models")
    yield url
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch, tmp_path):
    """Credentials and endpoint only in the environment, as the pipeline's Secret provides them."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("XSTILTS_DVC_REMOTE_ENDPOINT", s3_endpoint)
    return s3_endpoint


def test_s3_remote_push_pull_and_errors(model_dir, tmp_path, s3_env, monkeypatch):
    import boto3

    remote = "s3://models/xstilts"
    record = artifact_store.push(model_dir, remote)
    assert record["uploaded"] == 5 and artifact_store.push(model_dir, remote)["uploaded"] == 0
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_env).list_objects_v2(Bucket="models")["Contents"]}
    md5 = record["dvc_md5"]
    assert f"xstilts/files/md5/{md5[:2]}/{md5[2:]}" in keys and len(keys) == 6
    assert contents(Path(artifact_store.pull(md5, remote, tmp_path / "back")["path"])) == contents(model_dir)

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ArtifactStoreError, match="no credentials for DVC remote 's3://models/other': set "
                                                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        artifact_store.push(model_dir, "s3://models/other")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("XSTILTS_DVC_REMOTE_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ArtifactStoreError, match="DVC remote 's3://models/other' is unreachable"):
        artifact_store.push(model_dir, "s3://models/other")
