"""`xstilts preflight` against a loopback fake of the hub's HTTP API: exactly the endpoints preflight uses, answered
as the hub answers them (huggingface_hub's HfApi parses the JSON; its error mapping reads the X-Error-Code header).

  GET /api/datasets/{repo}/revision/{rev}     dataset info: sha, private, gated, cardData (the README's YAML),
                                              siblings [{rfilename}] (+ size/blobId/lfs with ?blobs=true)
  GET /api/models/{repo}/revision/{rev}       model info: the same, plus safetensors {parameters, total}
  GET /api/{datasets|models}/{repo}/refs      {branches, converts, tags}: [{name, ref, targetCommit}]
  GET /api/{datasets|models}/{repo}/auth-check   200, or 401/403 GatedRepo
  a missing or private repository (no valid token): 401 X-Error-Code RepoNotFound; a bad revision: 404
  X-Error-Code RevisionNotFound. `{rev}` comes percent-encoded (refs%2Fconvert%2Fparquet).

Repositories are laid out as the real ones are: per-config folders with `<config>/<split>-NNNNN-of-NNNNN.parquet`
declared in the card's `configs:` (nyu-mll/glue, google/xtreme, facebook/xnli, google-research-datasets/paws-x),
`data/<split>-…` shards without a declaration (Rowan/hellaswag), a loading script only (facebook/mlqa before
conversion), and the Parquet export branch refs/convert/parquet (`<config>/<split>/0000.parquet`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from typer.testing import CliRunner

from xstilts.cli.main import app
from xstilts.config import merge_params
from xstilts.ops import preflight as pf
from xstilts.tasks.catalog.xtreme import MLQA_LANGUAGES, PANX_LANGUAGES, PAWSX_LANGUAGES, TATOEBA_LANGUAGES, UDPOS_LANGUAGES, XNLI_LANGUAGES, XQUAD_LANGUAGES, BUCC_LANGUAGES

GOOD_TOKEN = "hf_good"
XLMR = "FacebookAI/xlm-roberta-large"
XLMR_PARAMS = 560_142_482  # what the hub's safetensors metadata says for XLM-R Large (F32)


def sha(*parts) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class Repo:
    def __init__(self, kind, repo_id, files, card=None, private=False, gated=False, safetensors=None,
                 branches=("main",), convert=None):
        self.kind, self.id, self.files, self.card = kind, repo_id, dict(files), card
        self.private, self.gated, self.safetensors = private, gated, safetensors
        self.revisions = {b: sha(repo_id, b) for b in branches}
        self.convert = dict(convert or {})  # files of refs/convert/parquet
        if convert:
            self.revisions["refs/convert/parquet"] = sha(repo_id, "parquet")

    def files_at(self, revision):
        return self.convert if revision == "refs/convert/parquet" else self.files


def declared(configs: dict[str, list[str]]) -> tuple[dict, dict]:
    """(files, cardData) of a repository whose card declares each config's splits as `<config>/<split>-*`, the way
    the hub's Parquet conversion writes them."""
    files, entries = {}, []
    for config, splits in configs.items():
        for split in splits:
            files[f"{config}/{split}-00000-of-00001.parquet"] = 1000
        entries.append({"config_name": config,
                        "data_files": [{"split": s, "path": f"{config}/{s}-*"} for s in splits]})
    return files, {"license": "cc-by-4.0", "configs": entries}


def grid_repos() -> list[Repo]:
    """Every hub source of the xtreme-grid preset, present."""
    trio = ["train", "validation", "test"]
    repos = []

    def add(repo_id, configs, **kw):
        files, card = declared(configs)
        repos.append(Repo("dataset", repo_id, {"README.md": 10, ".gitattributes": 1, **files}, card, **kw))

    add("facebook/xnli", {**{lang: trio for lang in XNLI_LANGUAGES}, "all_languages": trio})
    add("google-research-datasets/paws-x", {lang: trio for lang in PAWSX_LANGUAGES})
    add("google/xquad", {f"xquad.{lang}": ["validation"] for lang in XQUAD_LANGUAGES})
    add("google-research-datasets/tydiqa", {"primary_task": ["train", "validation"],
                                            "secondary_task": ["train", "validation"]})
    add("google/xtreme", {**{f"MLQA.{lang}.{lang}": ["validation", "test"] for lang in MLQA_LANGUAGES},
                          **{f"PAN-X.{lang}": trio for lang in PANX_LANGUAGES},
                          **{f"udpos.{name}": trio for name in UDPOS_LANGUAGES.values()},
                          **{f"bucc18.{lang}": ["validation", "test"] for lang in BUCC_LANGUAGES},
                          **{f"tatoeba.{code}": ["validation"] for code in TATOEBA_LANGUAGES.values()}})
    add("rajpurkar/squad", {"plain_text": ["train", "validation"]})
    add("rajpurkar/squad_v2", {"squad_v2": ["train", "validation"]})
    add("facebook/anli", {"plain_text": [f"{s}_r{r}" for s in ("train", "dev", "test") for r in (1, 2, 3)]})
    add("nyu-mll/glue", {"mnli": ["train", "validation_matched", "validation_mismatched", "test_matched"],
                         "qqp": trio, "sst2": trio, "cola": trio})
    add("stanfordnlp/snli", {"plain_text": trio})
    # script-only main branch; read from the hub's parquet export (refs/convert/parquet/default/<split>/)
    repos.append(Repo("dataset", "allenai/cosmos_qa", {"README.md": 10, "cosmos_qa.py": 5000}, {"license": "cc-by-4.0"},
                      convert={f"default/{s}/0000.parquet": 1000 for s in trio}))
    # no `configs:` in the card: datasets infers the splits from the data/<split>-NNNNN-of-NNNNN shards
    repos.append(Repo("dataset", "Rowan/hellaswag", {"README.md": 10, **{f"data/{s}-00000-of-00001.parquet": 1000
                                                                       for s in trio}}, {"license": "mit"}))
    repos.append(Repo("dataset", "tau/commonsense_qa", {**{f"data/{s}-00000-of-00001.parquet": 1000 for s in trio}}))
    repos.append(xlmr())
    return repos


def xlmr(**kw) -> Repo:
    files = {"config.json": 616, "model.safetensors": 2_244_861_551, "pytorch_model.bin": 2_244_960_000,
             "sentencepiece.bpe.model": 5_069_051, "tokenizer.json": 9_096_718, "onnx/model.onnx": 2_200_000_000,
             "README.md": 9_000}
    safetensors = {"parameters": {"F32": XLMR_PARAMS}, "total": XLMR_PARAMS}
    return Repo("model", kw.pop("repo_id", XLMR), files, {"language": ["multilingual"]},
                safetensors=kw.pop("safetensors", safetensors), **kw)


class FakeHub:
    """The hub's API on 127.0.0.1: records every request path."""

    def __init__(self, repos):
        self.repos = {(r.kind, r.id): r for r in repos}
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append(self.path)
                status, headers, body = fake.answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def answer(self, raw_path, auth):
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        parts = url.path.split("/")  # '', 'api', 'datasets', ns, name, ...
        if len(parts) < 5 or parts[1] != "api" or parts[2] not in ("datasets", "models"):
            return 404, {}, {"error": "Not Found"}
        kind, repo_id, rest = parts[2][:-1], f"{parts[3]}/{parts[4]}", parts[5:]
        repo = self.repos.get((kind, repo_id))
        if repo is None or (repo.private and auth != f"Bearer {GOOD_TOKEN}"):
            return 401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, \
                {"error": "Repository not found"}
        if rest == ["refs"]:
            ref = lambda name, full, commit: {"name": name, "ref": full, "targetCommit": commit}
            return 200, {}, {"branches": [ref(b, f"refs/heads/{b}", c) for b, c in repo.revisions.items()
                                          if not b.startswith("refs/")],
                             "converts": [ref("parquet", "refs/convert/parquet", repo.revisions[r])
                                          for r in repo.revisions if r == "refs/convert/parquet"],
                             "tags": []}
        if rest == ["auth-check"]:
            if repo.gated and auth != f"Bearer {GOOD_TOKEN}":
                return 403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this resource is gated"}, \
                    {"error": "Access to this resource is gated"}
            return 200, {}, {}
        if len(rest) != 2 or rest[0] != "revision":
            return 404, {}, {"error": "Not Found"}
        revision = unquote(rest[1])
        commit = repo.revisions.get(revision) or (revision if revision in repo.revisions.values() else None)
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": f"Invalid rev id: {revision}"}, \
                {"error": f"Invalid rev id: {revision}"}
        named = next((r for r, c in repo.revisions.items() if c == commit), revision)
        blobs = query.get("blobs", [""])[0].lower() == "true"
        siblings = []
        for name, size in sorted(repo.files_at(named).items()):
            sibling = {"rfilename": name}
            if blobs:
                sibling.update(size=size, blobId=sha(name, size))
                if size > 100_000:
                    sibling["lfs"] = {"sha256": hashlib.sha256(name.encode()).hexdigest(), "size": size,
                                      "pointerSize": 134}
            siblings.append(sibling)
        body = {"_id": sha(repo_id)[:24], "id": repo_id, "author": repo_id.split("/")[0], "sha": commit,
                "lastModified": "2024-01-04T16:00:00.000Z", "createdAt": "2022-03-02T23:29:22.000Z",
                "private": repo.private, "gated": repo.gated, "disabled": False, "downloads": 1, "likes": 1,
                "tags": [], "siblings": siblings}
        if repo.card is not None and named != "refs/convert/parquet":
            body["cardData"] = repo.card
        if kind == "model":
            body.update(modelId=repo_id, library_name="transformers", pipeline_tag="fill-mask",
                        config={"architectures": ["XLMRobertaForMaskedLM"], "model_type": "xlm-roberta"})
            if repo.safetensors:
                body["safetensors"] = repo.safetensors
        return 200, {}, body


@pytest.fixture
def hub(monkeypatch):
    """A fake hub with every source of xtreme-grid, HF_ENDPOINT pointing at it, online, no token."""
    from huggingface_hub import constants

    fake = FakeHub(grid_repos())
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # conftest sets HF_HUB_OFFLINE=1 for the other tests
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    # no token saved by `hf auth login` on this machine either: only HF_TOKEN counts
    monkeypatch.setattr("huggingface_hub.utils._headers.get_token", lambda: os.environ.get("HF_TOKEN") or None)
    yield fake
    fake.close()


def cli(*args):
    result = CliRunner().invoke(app, ["preflight", *args], env={"COLUMNS": "250"})
    return result.exit_code, result.output


def grid(**overrides) -> dict:
    return merge_params(overrides=overrides, preset_name="xtreme-grid")


def rows(report, status=None):
    return [c for c in report.checks if status is None or c.status == status]


def failed(report) -> dict[str, str]:
    return {f"{c.check} {c.subject}": c.detail for c in report.failures}


def test_xtreme_grid_passes_and_shows_every_source(hub):
    code, out = cli("--preset", "xtreme-grid", "--cluster")
    assert code == 0, out
    assert "ready:" in out and "0 failed" in out
    for source in ("facebook/xnli", "google-research-datasets/paws-x", "google/xquad",
                   "google-research-datasets/tydiqa", "google/xtreme", "rajpurkar/squad", "rajpurkar/squad_v2",
                   "facebook/anli", "nyu-mll/glue", "stanfordnlp/snli", "Rowan/hellaswag", "allenai/cosmos_qa",
                   "tau/commonsense_qa", XLMR):
        assert source in out, source
    hub.requests.clear()
    report = pf.preflight(grid(), local=False, gpu_memory="80G")
    assert report.ok, failed(report)
    subjects = " ".join(c.subject for c in report.checks)
    for task in ("xnli", "pawsx", "xquad", "mlqa", "tydiqa", "panx", "udpos", "bucc18", "tatoeba", "squad",
                 "anli", "mnli", "qqp", "squad_v2", "hellaswag", "cosmosqa", "commonsenseqa", "sst2", "ccg"):
        assert f"{task} ←" in subjects, task
    assert "anli (extra train) ← nyu-mll/glue" in subjects and "anli (extra train) ← stanfordnlp/snli" in subjects
    ccg = next(c for c in report.checks if c.subject.startswith("ccg ←"))
    assert ccg.status == pf.SKIP  # a cluster path: checked there
    panx = next(c for c in report.checks if c.subject == "panx ← google/xtreme")
    assert "40 config(s)" in panx.detail and "parquet" in panx.detail
    memory = next(c for c in report.checks if c.check == "model memory")
    assert memory.status == pf.PASS and "560M parameters" in memory.detail and "8.3 GiB" in memory.detail
    # google/xtreme serves four tasks and nyu-mll/glue three, but each (repo, revision) is asked for once
    infos = [r for r in hub.requests if "/revision/" in r]
    assert len(infos) == len(set(infos))


def test_local_checks_task_data_folders(hub, tmp_path):
    ccg = tmp_path / "ccgbank"
    (ccg / "ccg").mkdir(parents=True)
    (ccg / "ccg" / "train.jsonl").write_text("{}\n")
    report = pf.preflight(grid(target_tasks=["xnli"], conditions=["ccg"], task_data={"ccg": str(ccg)}),
                          local=True, gpu_memory="80G")
    assert failed(report) == {f"task data ccg ← {ccg}": f"missing under {ccg}: ccg/validation.jsonl (or .parquet) "
                              f"({pf.get_task('ccg').source_note})"}
    (ccg / "ccg" / "validation.parquet").write_bytes(b"PAR1")
    assert pf.preflight(grid(target_tasks=["xnli"], conditions=["ccg"], task_data={"ccg": str(ccg)})).ok


@pytest.mark.parametrize("case, expect", [
    ("wrong id", ("dataset xnli ← facebook/xnl", "dataset facebook/xnl not found (401)")),
    ("missing config", ("dataset panx ← google/xtreme", "no config 'PAN-X.xx'")),
    ("script only", ("dataset mlqa ← facebook/mlqa", "only a loading script (mlqa.py)")),
    ("wrong revision", ("dataset xnli ← facebook/xnli@v9.9", "revision 'v9.9' not found in dataset facebook/xnli")),
    ("missing split", ("dataset mnli ← nyu-mll/glue", "no split 'validation_matched'")),
])
def test_dataset_failures_are_rows(hub, monkeypatch, case, expect):
    from xstilts.tasks import registry

    params = grid()
    if case == "wrong id":
        xnli = registry.get_task("xnli")
        monkeypatch.setitem(registry._REGISTRY, "xnli", _with_hub(xnli, path="facebook/xnl"))
    elif case == "missing config":
        monkeypatch.setitem(registry._REGISTRY, "panx", _with_hub(registry.get_task("panx"), config="PAN-X.xx"))
    elif case == "script only":  # as mlqa's registry entry was before it moved to google/xtreme's parquet configs
        monkeypatch.setitem(registry._REGISTRY, "mlqa", _with_hub(registry.get_task("mlqa"), path="facebook/mlqa",
                                                                   config="mlqa.{language}.{language}"))
        hub.repos[("dataset", "facebook/mlqa")] = Repo(
            "dataset", "facebook/mlqa", {"README.md": 10, "mlqa.py": 8000, ".gitattributes": 1},
            {"license": "cc-by-sa-3.0"}, convert={f"mlqa.{lang}.{lang}/test/0000.parquet": 1000 for lang in ["en", "de"]})
    elif case == "wrong revision":
        params["hf_revision"] = "v9.9"
        params["target_tasks"], params["conditions"] = ["xnli"], ["none"]
    elif case == "missing split":
        files, card = declared({"mnli": ["train", "validation_mismatched"], "qqp": ["train", "validation"],
                                "sst2": ["train", "validation"]})
        hub.repos[("dataset", "nyu-mll/glue")] = Repo("dataset", "nyu-mll/glue", files, card)
    report = pf.preflight(params, local=False, gpu_memory="80G")
    subject, detail = expect
    bad = [c for c in report.failures if c.subject.startswith(subject.split(" ", 1)[1])]
    assert bad and all(c.check == subject.split(" ")[0] for c in bad), failed(report)
    assert detail in bad[0].detail, bad[0].detail
    if case == "script only":
        assert "refs/convert/parquet" in bad[0].detail  # the hint: the Parquet export exists
    if case == "missing split":  # anli's extra MNLI train source is fine, mnli's validation split is not
        assert "dataset anli (extra train) ← nyu-mll/glue" not in failed(report)


def _with_hub(task, **changes):
    from dataclasses import replace

    return replace(task, hub=replace(task.hub, **changes))


def test_per_task_revisions_and_parquet_export(hub):
    """`hf_revisions[task]` pins one task; refs/convert/parquet with data_dir reads the export's folders."""
    from xstilts.tasks.registry import HubSource

    repo = hub.repos[("dataset", "facebook/xnli")]
    params = {**grid(target_tasks=["xnli"], conditions=["none"]), "hf_revisions": {"xnli": repo.revisions["main"]}}
    assert pf.dataset_revision(params, "xnli", pf.get_task("xnli").hub) == repo.revisions["main"]
    assert pf.dataset_revision({"hf_revision": "v1"}, "xnli", pf.get_task("xnli").hub) == "v1"
    assert pf.dataset_revision({"hf_revision": ""}, "mbxp", pf.get_task("mbxp").hub) == "refs/convert/parquet"
    out = pf.PreflightReport()
    pf._check_data({**params, "languages": ["en", "de"]}, False, pf._Hub(), out)
    row = next(c for c in out.checks if c.subject.startswith("xnli ←"))
    assert row.status == pf.PASS and repo.revisions["main"][:7] in row.detail, row
    hub.repos[("dataset", "mxeval/mbxp")] = Repo("dataset", "mxeval/mbxp", {"mbxp.py": 1, "README.md": 1}, {},
                                                 convert={f"{lang}/test/0000.parquet": 1 for lang in ("python", "go")})
    out = pf.PreflightReport()
    source = HubSource("mxeval/mbxp", None, {"test": "test"}, revision="refs/convert/parquet", data_dir="{language}")
    pf._check_source(pf._Hub(), out, "mbxp", source, source.revision,
                     pf._loads(source, "test", ("python", "go")))
    assert out.checks[0].status == pf.PASS, out.checks[0]
    out = pf.PreflightReport()
    pf._check_source(pf._Hub(), out, "mbxp", source, source.revision, pf._loads(source, "test", ("java",)))
    assert out.checks[0].status == pf.FAIL and "no folder 'java'" in out.checks[0].detail


def test_private_model_fails_and_token_opens_it(hub, monkeypatch):
    hub.repos[("model", "acme/private-xlmr")] = xlmr(repo_id="acme/private-xlmr", private=True)
    params = grid(model_name="acme/private-xlmr", target_tasks=["xnli"], conditions=["none"])
    report = pf.preflight(params, local=False, gpu_memory="80G")
    assert list(failed(report)) == ["model acme/private-xlmr@main"]
    assert "not found (401)" in report.failures[0].detail and "no HF_TOKEN set" in report.failures[0].detail
    monkeypatch.setenv("HF_TOKEN", GOOD_TOKEN)
    report = pf.preflight(params, local=False, gpu_memory="80G")
    assert report.ok, failed(report)
    assert "private, readable with the token" in next(c for c in report.checks if c.check == "model").detail


def test_wrong_model_revision_and_missing_files(hub):
    params = grid(model_revision="nope", target_tasks=["xnli"], conditions=["none"])
    report = pf.preflight(params, local=False, gpu_memory="80G")
    assert failed(report) == {f"model {XLMR}@nope": f"revision 'nope' not found in model {XLMR} (a branch, tag "
                              "or commit of that repository)"}
    hub.repos[("model", "acme/bare")] = Repo("model", "acme/bare", {"config.json": 1, "README.md": 1})
    report = pf.preflight(grid(model_name="acme/bare", target_tasks=["xnli"], conditions=["none"]), local=False)
    assert "missing a tokenizer" in report.failures[0].detail and "weights" in report.failures[0].detail


def test_model_too_big_for_gpu_memory(hub):
    seven_b = 7_241_732_096
    hub.repos[("model", "acme/big")] = Repo(
        "model", "acme/big", {"config.json": 1, "tokenizer.json": 1, "model-00001-of-00002.safetensors": 9_900_000_000,
                              "model-00002-of-00002.safetensors": 4_580_000_000, "model.safetensors.index.json": 1},
        safetensors={"parameters": {"BF16": seven_b}, "total": seven_b})
    saved = _params_file(hub, model_name="acme/big").with_name("report.json")
    code, out = cli("--params", str(_params_file(hub, model_name="acme/big")), "--cluster", "--gpu-memory", "80G",
                    "--json", str(saved))
    assert code == 1, out
    assert "model memory" in out and "fail" in out and "not ready" in out
    record = json.loads(saved.read_text())
    assert record["ok"] is False and record["counts"]["fail"] == 1
    assert {"check": "model memory", "subject": "acme/big@main", "status": "fail"}.items() <= \
        next(c for c in record["checks"] if c["status"] == "fail").items()
    report = pf.preflight(grid(model_name="acme/big", target_tasks=["xnli"], conditions=["none"]), local=False,
                          gpu_memory="80G")
    assert list(failed(report)) == ["model memory acme/big@main"]
    assert "7,242M parameters × 16 B" in report.failures[0].detail and "> 80.0 GiB" in report.failures[0].detail
    assert pf.preflight(grid(model_name="acme/big", target_tasks=["xnli"], conditions=["none"]), local=False,
                        gpu_memory="141G").ok  # H200: 108 GiB fits
    skipped = pf.preflight(grid(model_name="acme/big", target_tasks=["xnli"], conditions=["none"]), local=False)
    assert next(c for c in skipped.checks if c.check == "model memory").status == pf.SKIP


_written = iter(range(10**6))


def _params_file(hub, **overrides) -> Path:
    import tempfile

    import yaml

    values = {"target_tasks": ["xnli"], "conditions": ["none"], "data": "hf", "languages": ["en", "de"],
              "model_name": XLMR, **overrides}
    path = Path(tempfile.mkdtemp(prefix="preflight-")) / f"params{next(_written)}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_missing_compiler_fails(hub, monkeypatch):
    from xstilts.codeexec import languages
    from xstilts.codeexec.languages import ToolchainMissingError

    real = languages.find_toolchain

    def no_go(language):
        if language.name == "go":
            raise ToolchainMissingError("go: toolchain executable `go` not found (searched /usr/bin, or set "
                                        "XSTILTS_GO); `make toolchains` installs the missing ones")
        return real(language)

    monkeypatch.setattr(languages, "find_toolchain", no_go)
    monkeypatch.setattr(languages, "_find_tool", lambda name: f"/usr/bin/{name}")
    params = merge_params(preset_name="code-mbxp")
    report = pf.preflight(params, local=True)
    assert pf.code_languages(params) == ["python", "javascript", "typescript", "java", "cpp", "go"]
    assert list(failed(report)) == ["toolchain go"]
    assert "`go` not found" in report.failures[0].detail
    with pytest.raises(pf.PreflightError, match="toolchain go"):
        report.raise_for_failures()
    code, out = cli("--preset", "code-mbxp")
    assert code == 1 and "toolchain" in out and "not found" in out
    # on the cluster the image's toolchains are checked by the pipeline's first step
    assert pf.preflight(params, local=False).ok


def test_registry_and_dvc_remote(hub, tmp_path):
    import subprocess

    bare = tmp_path / "registry.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    base = {"target_tasks": ["xnli"], "conditions": ["none"], "data": "data/sample"}
    report = pf.preflight(merge_params(overrides={**base, "registry_repo": str(bare), "dvc_remote": str(tmp_path / "remote")}))
    assert report.ok, failed(report)
    assert {c.check: c.status for c in report.checks}["registry"] == pf.PASS
    report = pf.preflight(merge_params(overrides={**base, "registry_repo": str(tmp_path / "nowhere.git")}))
    assert list(failed(report)) == [f"registry {tmp_path / 'nowhere.git'}"]
    assert "git ls-remote failed" in report.failures[0].detail


def test_parameter_errors_come_first(hub):
    code, out = cli("--preset", "xtreme-grid", "--params", "x.yaml")
    assert code != 0 and "not both" in out
    code, out = cli("--params", str(_params_file(hub, target_tasks=["nope"])))
    assert code == 1 and "target_tasks[0]" in out
    assert not [r for r in hub.requests if "/api/" in r]  # nothing asked before the parameters are right
    with pytest.raises(Exception, match="GPU memory"):
        pf.parse_memory("lots")
    assert pf.parse_memory("80G") == 80 * 1024**3 == pf.parse_memory("80GiB") == pf.parse_memory(80 * 1024**3)
    assert pf.parse_memory("0") is None and pf.parse_memory(None) is None


def test_offline_and_unreachable_hub_fail_clearly(hub, monkeypatch):
    from huggingface_hub import constants

    params = grid(target_tasks=["xnli"], conditions=["none"])
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    report = pf.preflight(params, local=False)
    assert report.failures and all("HF_HUB_OFFLINE" in c.detail for c in report.failures)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    report = pf.preflight(params, local=False)
    assert report.failures and all("cannot reach the hub at http://127.0.0.1:9" in c.detail for c in report.failures)


def test_resolution_rules():
    files = ["README.md", "mnli/train-00000-of-00001.parquet", "mnli/validation_matched-00000-of-00001.parquet"]
    card = {"configs": [{"config_name": "mnli", "data_files": [{"split": "train", "path": "mnli/train-*"},
                                                                {"split": "validation_matched",
                                                                 "path": "mnli/validation_matched-*"}]}]}
    splits, where = pf.resolve_source(files, card, "nyu-mll/glue", "mnli", None)
    assert set(splits) == {"train", "validation_matched"} and where == "config mnli"
    assert pf.resolve_source(files, card, "nyu-mll/glue", None, None)[0]  # the only config is the default
    # as datasets does: split keywords in folder names win over those in file names (dev.jsonl is not read)
    assert pf.infer_splits(["en/train/0000.parquet", "en/partial-test/0000.parquet", "en/dev.jsonl"]) == {
        "train": ["en/train/0000.parquet"], "test": ["en/partial-test/0000.parquet"]}
    inferred = pf.infer_splits(["en/train-0.parquet", "en/dev.jsonl", "x/valid_1.csv"])
    assert {k: sorted(v) for k, v in inferred.items()} == {"train": ["en/train-0.parquet"],
                                                           "validation": ["en/dev.jsonl", "x/valid_1.csv"]}
    assert pf.infer_splits(["train.json.gz", "notes.txt"]) == {"train": ["train.json.gz"]}
    # no configs in the card: a named config does not exist for `datasets` (the folder is a hint)
    splits, why = pf.resolve_source(["de/train-0.parquet"], {"license": "x"}, "a/b", "de", None)
    assert splits is None and "name it as data_dir" in why
    # no card in the answer at all: the folder layout decides
    assert pf.resolve_source(["de/train-0.parquet"], None, "a/b", "de", None)[0] == {"train": ["de/train-0.parquet"]}
    splits, why = pf.resolve_source(["data/train.zip"], None, "a/b", None, None)
    assert splits == {}


def test_preflight_command_loads_no_torch(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom typer.testing import CliRunner\nfrom xstilts.cli.main import app\n"
            "result = CliRunner().invoke(app, ['preflight', '--preset', 'tiny', '--json', sys.argv[1]])\n"
            "print(result.exit_code, 'torch' in sys.modules, 'datasets' in sys.modules)\n")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "report.json")], cwd=repo, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)
    assert out.stdout.split() == ["0", "False", "False"], out.stdout + out.stderr
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is True


def test_json_report_never_replaces_a_device_or_folder(tmp_path):
    code, out = cli("--preset", "tiny", "--json", str(tmp_path))
    assert code == 1 and "not a regular file" in out and tmp_path.is_dir()


def test_local_official_release_files_count_as_task_data(hub, tmp_path):
    """A folder of official release files (here XNLI's TSV) passes where <task>/<split>.jsonl would be looked for."""
    root = tmp_path / "xnli-release"
    (root / "XNLI-1.0").mkdir(parents=True)
    header = "language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t" \
             "sentence1\tsentence2\tpromptID\tpairID\tgenre\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t" \
             "sentence1_tokenized\tsentence2_tokenized\tmatch\n"
    row = "en\tentailment\t\t\t\t\tA man sleeps.\tA person rests.\t1\t1\tfiction\t\t\t\t\t\t\t\tTrue\n"
    (root / "XNLI-1.0" / "xnli.test.tsv").write_text(header + row)
    status, detail = pf._local_task_files(root, pf.get_task("xnli"), ["test"], ("en",))
    assert status == "pass" and "xnli.test.tsv" in detail, detail

