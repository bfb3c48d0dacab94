"""DVC-versioned data sources (`dvc+<repo>?rev=<rev>&path=<path>`) against a real git + DVC repo with a local remote."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.data import dvc as dvcdata
from xstilts.errors import DataError
from xstilts.data.validate import default_source, validate_tasks

DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}

ROWS = [{"sentence": "a good and moving film .", "label": 1, "idx": 0},
        {"sentence": "a dull and awful film .", "label": 0, "idx": 1}]


def sh(*args, cwd):
    subprocess.run(list(args), cwd=cwd, env=ENV, check=True, capture_output=True, text=True)


def write_sst2(root: Path, rows: list[dict]) -> None:
    (root / "sst2").mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation"):
        (root / "sst2" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """<base>/repo: git + DVC, `data/` tracked, tags v1 (2 rows a split) and v2 (3 rows); <base>/remote: its remote."""
    base = tmp_path_factory.mktemp("dvcworld")
    repo = base / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh(DVC, "init", "-q", cwd=repo)
    sh(DVC, "remote", "add", "-d", "local", "../remote", cwd=repo)  # relative: a copy of <base> is self-contained
    write_sst2(repo / "data", ROWS)
    (repo / "README.md").write_text("plain git file\n")
    for tag, rows in (("v1", ROWS), ("v2", ROWS + [{"sentence": "a fine and warm film .", "label": 1, "idx": 2}])):
        write_sst2(repo / "data", rows)
        sh(DVC, "add", "-q", "data", cwd=repo)
        sh(DVC, "push", "-q", cwd=repo)
        sh("git", "add", "-A", cwd=repo)
        sh("git", "commit", "-qm", tag, cwd=repo)
        sh("git", "tag", tag, cwd=repo)
    return base


@pytest.fixture
def copy(world, tmp_path):
    """A private copy of the repo and its remote, for tests that delete caches or the remote."""
    shutil.copytree(world, tmp_path / "w", symlinks=True)
    return tmp_path / "w" / "repo"


def rev_parse(repo, rev):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", rev], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_parse_source():
    assert dvcdata.parse_source("dvc+https://github.com/o/r.git?rev=v1&path=data/sample") == {
        "repo": "https://github.com/o/r.git", "rev": "v1", "path": "data/sample"}
    assert dvcdata.parse_source("dvc+/tmp/r?path=data/")["rev"] == "HEAD"
    assert dvcdata.parse_source("dvc+git@github.com:o/r.git?path=d&rev=main")["repo"] == "git@github.com:o/r.git"
    for bad in ("dvc+/tmp/r", "dvc+?path=data", "dvc+/tmp/r?rev=v1", "dvc+/tmp/r?path=d&branch=x", "dvc+/r?path=a&path=b"):
        with pytest.raises(DataError, match=r"dvc\+<repo>\?rev=<rev>&path=<path>"):
            dvcdata.parse_source(bad)
    with pytest.raises(DataError, match="expected dvc"):
        default_source("dvc+/tmp/r?rev=v1")
    assert default_source("hf") == "hf://" and default_source("dvc+/r?path=p") == "dvc+/r?path=p"


def test_fetch_versions_and_cache(world, tmp_path):
    repo = world / "repo"
    one = dvcdata.fetch(str(repo), "v1", "data", tmp_path / "cache")
    two = dvcdata.fetch(str(repo), "v2", "data", tmp_path / "cache")
    assert one["commit"] == rev_parse(repo, "v1") and two["commit"] == rev_parse(repo, "v2")
    assert one["rev"] == "v1" and one["path"] == "data" and one["files"] == 2 and not one["cached"]
    assert one["dvc_md5"] != two["dvc_md5"] and one["dvc_md5"].endswith(".dir")
    assert one["dvc_md5"] in (repo / "data.dvc").read_text() or one["dvc_md5"] in subprocess.run(
        ["git", "-C", str(repo), "show", "v1:data.dvc"], capture_output=True, text=True).stdout
    lines = lambda f: (Path(f["local"]) / "sst2" / "train.jsonl").read_text().splitlines()  # noqa: E731
    assert len(lines(one)) == 2 and len(lines(two)) == 3
    assert Path(one["local"]).name == one["dvc_md5"].removesuffix(".dir")  # content-addressed
    head = dvcdata.fetch(str(repo), None, "data/", tmp_path / "cache")
    assert head["rev"] == "HEAD" and head["commit"] == two["commit"] and head["cached"]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_validate_from_remote_then_from_cache(copy, tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "xc"))
    shutil.rmtree(copy / ".dvc" / "cache")  # the data must come from the remote
    source = f"dvc+{copy}?rev=v1&path=data"
    out = tmp_path / "ds"
    manifest = validate_tasks(["sst2"], default_source(source), out, tmp_path / "r.html", tmp_path / "r.md")
    version = manifest["data_version"]
    assert version == {"repo": str(copy), "rev": "v1", "commit": rev_parse(copy, "v1"), "path": "data",
                       "dvc_md5": version["dvc_md5"], "files": 2}
    written = json.loads((out / "manifest.json").read_text())
    assert written["data_version"] == version and written["source"] == source
    assert manifest["tasks"]["sst2"]["splits"]["train"]["rows"] == 2
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["data"]["data_version"] == version and lineage["data"]["source"] == source
    assert not (copy / ".dvc" / "cache").exists() or not any((copy / ".dvc" / "cache").rglob("*.dir"))

    shutil.rmtree(copy.parent / "remote")  # a second fetch of the same version is served from the cache
    again = dvcdata.fetch_source(source)
    assert again["cached"] and again["dvc_md5"] == version["dvc_md5"]
    with pytest.raises(DataError, match="DVC remote 'local'") as e:  # v2 is not cached
        dvcdata.fetch_source(f"dvc+{copy}?rev=v2&path=data")
    assert "'v2'" in str(e.value) and str(copy.parent / "remote") in str(e.value)


def test_task_data_values_accept_dvc(world, tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE", str(tmp_path / "xc"))
    source = f"dvc+{world / 'repo'}?rev=v2&path=data"
    manifest = validate_tasks(["sst2"], str(tmp_path / "nowhere"), tmp_path / "ds", tmp_path / "r.html",
                              tmp_path / "r.md", task_data={"sst2": source})
    assert manifest["task_data_versions"]["sst2"]["files"] == 2 and "data_version" not in manifest
    assert manifest["tasks"]["sst2"]["splits"]["train"]["rows"] == 3


def test_errors_name_what_was_asked(world, tmp_path):
    repo, dest = str(world / "repo"), tmp_path / "c"
    with pytest.raises(DataError, match=r"revision 'v9' not found.*repo"):
        dvcdata.fetch(repo, "v9", "data", dest)
    with pytest.raises(DataError, match=r"'README.md' is not tracked by DVC at revision 'v1'.*tracked outputs: data"):
        dvcdata.fetch(repo, "v1", "README.md", dest)
    with pytest.raises(DataError, match=r"'nope' is not tracked by DVC"):
        dvcdata.fetch(repo, "v1", "nope", dest)
    with pytest.raises(DataError, match=r"repository not found: .*missing"):
        dvcdata.fetch(str(tmp_path / "missing"), "v1", "data", dest)
    with pytest.raises(DataError, match="not a git repository"):
        dvcdata.fetch(str(tmp_path), "v1", "data", dest)
    with pytest.raises(DataError, match=r"repository not found or unreachable: 'file://"):
        dvcdata.fetch(f"file://{tmp_path}/missing.git", "v1", "data", dest)


def test_resolve_run_data_pins_commit_and_md5_keys_the_cache(copy, tmp_path):
    """The pipeline's `resolve data` step: same data → same md5 (cached steps reused), new data → new md5."""
    v1 = dvcdata.resolve_run_data("data", {}, str(copy), "v1")
    v2 = dvcdata.resolve_run_data("data", {}, str(copy), "v2")
    assert v1["data"] == f"dvc+{copy}?rev={rev_parse(copy, 'v1')}&path=data" and v1["data_commit"] == rev_parse(copy, "v1")
    assert v1["data_md5"] != v2["data_md5"]
    (copy / "README.md").write_text("a commit that does not touch the data\n")
    sh("git", "commit", "-qam", "docs", cwd=copy)
    head = dvcdata.resolve_run_data("data", {}, str(copy), "")
    assert head["data_commit"] == rev_parse(copy, "HEAD") != v2["data_commit"]
    assert head["data_md5"] == v2["data_md5"]  # unchanged data: the validate step's caching key is unchanged
    assert dvcdata.fetch_source(head["data"])["dvc_md5"] == next(iter(v2["versions"].values()))["dvc_md5"]


def test_resolve_run_data_local_hub_and_errors(tmp_path):
    write_sst2(tmp_path / "d", ROWS)
    one = dvcdata.resolve_run_data(str(tmp_path / "d"), {"ccg": "hf"})
    assert one["data"] == str(tmp_path / "d") and one["task_data"] == {"ccg": "hf"} and one["data_commit"] == ""
    write_sst2(tmp_path / "d", ROWS[:1])
    assert dvcdata.resolve_run_data(str(tmp_path / "d"), {"ccg": "hf"})["data_md5"] != one["data_md5"]
    missing = dvcdata.resolve_run_data(str(tmp_path / "nowhere"))  # validate reports it, naming the file
    assert missing["versions"][str(tmp_path / "nowhere")]["missing"]
    with pytest.raises(DataError, match="data_rev='v1' needs data_repo"):
        dvcdata.resolve_run_data("hf", {}, "", "v1")
    with pytest.raises(DataError, match="must be the DVC-tracked path inside that repository"):
        dvcdata.resolve_run_data("hf", {}, str(tmp_path), "v1")
