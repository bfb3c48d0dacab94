"""DVC-versioned data as a data source: `dvc+<repo>?rev=<rev>&path=<path>`.

`repo` is a git URL or a local repository path, `rev` a branch, tag or commit (default HEAD, the last commit — not
the working tree), `path` the DVC-tracked folder inside the repository (e.g. `data/sample`). `fetch` downloads
exactly that version through `dvc.api.DVCFileSystem` (from the repository's DVC cache or its remote) into a
content-addressed cache folder, `<cache>/<md5>`, so a later fetch of the same data is served without the remote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs
from xstilts.errors import DataError


PREFIX = "dvc+"
FORM = "dvc+<repo>?rev=<rev>&path=<path> (repo: a git URL or local repository path; rev: branch, tag or commit, " \
       "default HEAD; path: the DVC-tracked folder inside the repository)"


def is_dvc_source(source: str | None) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def parse_source(source: str) -> dict[str, str]:
    """{"repo", "rev", "path"} of a `dvc+<repo>?rev=<rev>&path=<path>` string; DataError naming the form if not."""
    if not is_dvc_source(source):
        raise DataError(f"not a DVC data source: {source!r}; expected {FORM}")
    body = source[len(PREFIX):]
    repo, sep, query = body.rpartition("?")
    if not sep or not repo:
        raise DataError(f"cannot parse DVC data source {source!r}: expected {FORM}")
    try:
        fields = parse_qs(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise DataError(f"cannot parse DVC data source {source!r}: expected {FORM}") from None
    unknown = sorted(set(fields) - {"rev", "path"})
    repeated = sorted(k for k, v in fields.items() if len(v) > 1)
    if unknown or repeated:
        what = f"unknown parameter(s) {', '.join(unknown)}" if unknown else f"repeated parameter(s) {', '.join(repeated)}"
        raise DataError(f"cannot parse DVC data source {source!r}: {what}; expected {FORM}")
    path = (fields.get("path") or [""])[0].strip("/")
    if not path:
        raise DataError(f"DVC data source {source!r} names no path: expected {FORM}")
    rev = (fields.get("rev") or [""])[0] or "HEAD"
    return {"repo": repo, "rev": rev, "path": path}


def default_dest() -> Path:
    from xstilts.env import cache_dir

    return cache_dir() / "dvc-data"


def _is_local(repo: str) -> bool:
    return "://" not in repo and not (":" in repo and "@" in repo.split(":", 1)[0])  # not scp-like git@host:x


def _open(repo: str, rev: str):
    """A DVCFileSystem at `rev`, with its repo loaded, or a DataError naming what was asked."""
    from dvc.api import DVCFileSystem
    from dvc.scm import CloneError, RevError, SCMError

    asked = repo
    if _is_local(repo):
        if not Path(repo).is_dir():
            raise DataError(f"DVC data repository not found: {repo!r} (no such directory)")
        top = subprocess.run(["git", "-C", repo, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
        if top.returncode != 0:
            raise DataError(f"DVC data repository {repo!r} is not a git repository")
        repo = str(Path(repo).resolve())
    try:
        fs = DVCFileSystem(repo, rev=rev)  # (a resolved local path; messages name the repo as asked)
        fs.repo  # noqa: B018 — clone/open now, so errors surface here
        return fs
    except RevError:
        raise DataError(f"revision {rev!r} not found in DVC data repository {asked!r}") from None
    except CloneError as e:
        raise DataError(f"DVC data repository not found or unreachable: {asked!r} ({e})") from None
    except SCMError as e:
        raise DataError(f"cannot open revision {rev!r} of DVC data repository {asked!r}: {e}") from None
    except Exception as e:  # NotDvcRepoError and friends
        raise DataError(f"cannot open DVC data repository {asked!r} at revision {rev!r}: {type(e).__name__}: {e}") from None


def _commit(fs, rev: str) -> str:
    sha = fs.repo.get_rev()
    if not (isinstance(sha, str) and len(sha) == 40):
        sha = fs.repo.scm.resolve_rev(rev)
    return sha


def _output(fs, path: str, repo: str, rev: str):
    """(output path, output md5) of the DVC output that is `path` or holds it at this revision."""
    r = fs.repo
    outs = []
    for out in r.index.outs:
        rel = r.fs.relpath(out.fs_path, r.root_dir).replace(os.sep, "/")
        outs.append(rel)
        if (path == rel or path.startswith(rel + "/")) and out.hash_info and out.hash_info.value:
            return rel, out.hash_info.value
    listed = ", ".join(sorted(outs)) or "none"
    raise DataError(f"path {path!r} is not tracked by DVC at revision {rev!r} of {repo!r} (tracked outputs: {listed})")


def _remote(fs) -> str:
    config = fs.repo.config
    name = config["core"].get("remote")
    if not name:
        return "no default DVC remote is configured"
    url = config["remote"].get(name, {}).get("url", "?")
    return f"DVC remote {name!r} ({url})"


def _count(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def _content_key(md5: str, output: str, path: str) -> str:
    """The content address of `path` inside DVC output `output` whose md5 is `md5`."""
    key = md5.removesuffix(".dir")
    if path != output:  # a folder inside a tracked output: its own entry of the content address
        key += "-" + hashlib.sha1(path[len(output) + 1:].encode()).hexdigest()[:12]
    return key


def resolve(repo: str, rev: str | None, path: str) -> dict:
    """Which data `path` of `repo` at `rev` is, without downloading it: {"repo", "rev" (as asked), "commit" (full
    sha), "path", "dvc_md5"} (+ "output" when `path` is a folder inside a tracked output)."""
    rev = rev or "HEAD"
    path = path.strip("/")
    fs = _open(repo, rev)
    out, md5 = _output(fs, path, repo, rev)
    record = {"repo": repo, "rev": rev, "commit": _commit(fs, rev), "path": path, "dvc_md5": md5}
    if path != out:
        record["output"] = out
    return record


def pinned_source(record: dict) -> str:
    """The `dvc+` source string of a resolved record, pinned to its commit (a moving branch or tag cannot change it)."""
    return f"{PREFIX}{record['repo']}?rev={record['commit']}&path={record['path']}"


def fetch(repo: str, rev: str | None, path: str, dest: str | os.PathLike | None = None) -> dict:
    """Fetch `path` of DVC repository `repo` at `rev` into `<dest>/<md5>` (dest: default `<cache_dir>/dvc-data`),
    or reuse an earlier fetch of the same content. Returns {"repo", "rev" (as asked), "commit" (full sha), "path",
    "dvc_md5", "files"} plus "local" (the folder holding the data) and "cached" (whether it was reused)."""
    rev = rev or "HEAD"
    path = path.strip("/")
    fs = _open(repo, rev)
    commit = _commit(fs, rev)
    out, md5 = _output(fs, path, repo, rev)
    key = _content_key(md5, out, path)
    base = Path(dest) if dest is not None else default_dest()
    final = base / key
    record = {"repo": repo, "rev": rev, "commit": commit, "path": path, "dvc_md5": md5}
    if path != out:
        record["output"] = out
    if final.is_dir():
        return {**record, "files": _count(final), "local": str(final), "cached": True}
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=base))
    try:
        try:
            fs.get(path, str(tmp / "d"), recursive=True)
        except Exception as e:
            raise DataError(f"cannot fetch {path!r} (md5 {md5}) at revision {rev!r} of {repo!r} from {_remote(fs)}: "
                            f"the data is neither in the repository's DVC cache nor on the remote, or the remote is "
                            f"unreachable ({type(e).__name__}: {e})") from None
        got = tmp / "d"
        if not got.is_dir():
            raise DataError(f"DVC path {path!r} at revision {rev!r} of {repo!r} is a file; name the folder holding "
                            f"<task>/<split>.jsonl|.parquet")
        files = _count(got)
        try:
            os.replace(got, final)
        except OSError:
            if not final.is_dir():  # not a concurrent fetch of the same content that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**record, "files": files, "local": str(final), "cached": False}


def fetch_source(source: str, dest: str | os.PathLike | None = None) -> dict:
    """`fetch` for a `dvc+...` source string."""
    spec = parse_source(source)
    return fetch(spec["repo"], spec["rev"], spec["path"], dest)


def version_record(fetched: dict) -> dict:
    """The fields of a fetch that describe the data version (no local paths)."""
    return {k: v for k, v in fetched.items() if k not in ("local", "cached")}


def _source_version(source: str) -> dict:
    """What one data source is right now: {"source" (pinned where it can be), "md5", ...version fields}."""
    from xstilts.provenance import artifact_md5

    if is_dvc_source(source):
        spec = parse_source(source)
        record = resolve(spec["repo"], spec["rev"], spec["path"])
        key = _content_key(record["dvc_md5"], record.get("output", record["path"]), record["path"])
        return {**record, "source": pinned_source(record), "md5": key}
    if source in ("hf", "hub") or source.startswith("hf://"):
        # The hub's content is named by `hf_revision` (a pipeline parameter, so already in the caching key).
        return {"source": source, "md5": ""}
    folder = Path(source)
    if not folder.is_dir():  # the validate step names the missing file precisely (with a `dvc pull` hint)
        return {"source": source, "md5": "", "missing": True}
    return {"source": source, "md5": artifact_md5(folder)}


def resolve_run_data(data: str, task_data: dict[str, str] | None = None, data_repo: str = "",
                     data_rev: str = "") -> dict:
    """The exact data a run will read, decided before any step runs (the pipeline's uncached `resolve data` step).

    With `data_repo`, `data` is the DVC-tracked path inside that repository at `data_rev` (default HEAD). DVC
    sources are pinned to their resolved commit, so every later step reads the same version. Returns
    {"data", "task_data" (pinned sources), "data_commit" (of `data`, if DVC), "data_md5" (one md5 over all sources' content md5s: a KFP caching key
    input, so unchanged data reuses cached steps and changed data retrains), "versions" {source: record}}."""
    if data_repo:
        if is_dvc_source(data) or "://" in data or data in ("hf", "hub"):
            raise DataError(f"with data_repo={data_repo!r}, `data` must be the DVC-tracked path inside that repository "
                            f"(e.g. data/sample), got {data!r}")
        data = f"{PREFIX}{data_repo}?rev={data_rev or 'HEAD'}&path={data.strip('/')}"
    elif data_rev:
        raise DataError(f"data_rev={data_rev!r} needs data_repo (the git/DVC repository holding the data)")
    versions = {}
    for source in dict.fromkeys([data, *(task_data or {}).values()]):
        versions[source] = _source_version(source)
    content = {"data": versions[data]["md5"], "task_data": {t: versions[s]["md5"] for t, s in (task_data or {}).items()}}
    for task, source in [("data", data), *(task_data or {}).items()]:
        if not versions[source]["md5"]:  # hub data is named, not hashed (hf_revision is a parameter of its own)
            (content if task == "data" else content["task_data"])[task] = source
    combined = hashlib.md5(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return {"data": versions[data]["source"],
            "task_data": {task: versions[s]["source"] for task, s in (task_data or {}).items()},
            "data_commit": versions[data].get("commit", ""), "data_md5": combined, "versions": versions}
