"""Model folders (checkpoints, ONNX exports) in a DVC remote, addressed by DVC's own directory md5.

`push` stores a folder the way `dvc add --to-remote` / `dvc push` do — every file as `files/md5/<xx>/<rest>` and a
`<md5>.dir` listing — so `dvc`, `dvc.api` and `pull` here can fetch it by that md5 alone. Pushing content the remote
already holds uploads nothing. `pull` fetches a folder by md5 and checks every byte against it before it appears.

`remote` is a DVC remote URL (a local path, `s3://bucket/prefix`, `gs://bucket/prefix`, ...) or the name of a remote
configured with `dvc remote add` (in the DVC repository at the working directory, or the user's/system's DVC config).
Credentials come only from the environment — AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (S3, MinIO),
GOOGLE_APPLICATION_CREDENTIALS (GCS) — or the remote's own DVC config; never from parameters, and nothing here
writes them anywhere. An S3-compatible endpoint (MinIO) for a URL remote comes from XSTILTS_DVC_REMOTE_ENDPOINT
(else AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from xstilts import env
from xstilts.errors import XstiltsError


_MD5 = re.compile(r"^[0-9a-f]{32}(\.dir)?$")


class ArtifactStoreError(XstiltsError):
    """A model folder could not be pushed to or pulled from a DVC remote (the message names remote and md5)."""


def _progress(desc: str, unit: str = "file"):
    from fsspec.callbacks import TqdmCallback

    return TqdmCallback(tqdm_kwargs={"desc": desc, "unit": unit, "disable": not env.progress_enabled(),
                                     "mininterval": 1.0})


def redact(url: str) -> str:
    """`url` without any user:password part (what is recorded and printed)."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def _is_url_or_path(remote: str) -> bool:
    return "://" in remote or remote.startswith((".", "/", "~")) or os.sep in remote or "/" in remote


def _dvc_config():
    """The DVC config of the repository at the working directory (if any) with the user's and system's."""
    from dvc.config import Config

    return Config.from_cwd(validate=True)


def open_remote(remote: str):
    """A `dvc.data_cloud.Remote` for a remote URL/path or a configured remote name, and its URL without secrets.
    A bare word is a configured remote's name, else an existing folder of that name."""
    from dvc.config import ConfigError as DvcConfigError, RemoteNotFoundError
    from dvc.data_cloud import Remote
    from dvc.fs import get_cloud_fs

    if not remote or not remote.strip():
        raise ArtifactStoreError("no DVC remote given: pass a remote URL (local path, s3://..., gs://...) or the name "
                                 "of a remote configured with `dvc remote add`")
    remote = remote.strip()
    try:
        dvc_config = None if _is_url_or_path(remote) else _dvc_config()
        if dvc_config is None or (remote.lower() not in dvc_config["remote"] and Path(remote).is_dir()):
            url = remote if "://" in remote else os.path.abspath(os.path.expanduser(remote))
            spec = {"url": url}
            endpoint = env.dvc_remote_endpoint()
            if url.startswith("s3://") and endpoint:
                spec["endpointurl"] = endpoint
            cls, config, path = get_cloud_fs({}, **spec)
        else:
            try:
                cls, config, path = get_cloud_fs(dvc_config, name=remote)
            except RemoteNotFoundError:
                known = ", ".join(sorted(dvc_config["remote"])) or "none"
                raise ArtifactStoreError(
                    f"unknown DVC remote {remote!r} (configured remotes: {known}); pass a URL or path, or add it with "
                    f"`dvc remote add {remote} URL`") from None
            url = dvc_config["remote"][remote.lower()]["url"]
        fs = cls(**config)
    except ArtifactStoreError:
        raise
    except DvcConfigError as e:  # includes "s3 is supported, but requires 'dvc-s3' to be installed"
        raise ArtifactStoreError(f"cannot use DVC remote {redact(remote)!r}: {e}") from None
    except Exception as e:
        raise ArtifactStoreError(f"cannot open DVC remote {redact(remote)!r}: {type(e).__name__}: {e}") from None
    return Remote(remote, path, fs, **config), redact(url)


def _explain(e: BaseException, remote: str) -> str:
    """A one-line reason for a remote failure, pointing at the environment when credentials are missing."""
    chain, seen = [], e
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    names = {type(x).__name__ for x in chain}
    text = " ".join(str(x) for x in chain)
    if "NoCredentialsError" in names or "Unable to locate credentials" in text:
        return (f"no credentials for DVC remote {remote!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                f"environment (on the cluster: the xstilts-dvc-remote Secret)")
    if "DefaultCredentialsError" in names:
        return (f"no credentials for DVC remote {remote!r}: set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
                f"key file, or run where Workload Identity/instance credentials apply")
    if names & {"ClientError", "PermissionError"} and re.search(r"AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|"
                                                               r"Forbidden|403|Permission denied", text):
        return f"DVC remote {remote!r} refused access (check the credentials in the environment): {e}"
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError",
                "ConnectionRefusedError", "gaierror"}:
        return f"DVC remote {remote!r} is unreachable: {type(e).__name__}: {e}"
    return f"DVC remote {remote!r} failed: {type(e).__name__}: {e}"


def push(path: str | os.PathLike, remote: str, jobs: int | None = None) -> dict:
    """Store the folder `path` in DVC remote `remote`, content-addressed. Returns {"dvc_md5" (`<md5>.dir`, what
    `dvc add` records for the same folder), "remote" (as given), "remote_url" (no credentials), "nfiles", "size"
    (bytes), "uploaded" (files new to the remote; 0 when it already held this content)}."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.transfer import transfer
    from dvc_objects.fs.local import LocalFileSystem

    path = Path(path)
    if not path.is_dir():
        raise ArtifactStoreError(f"cannot push {path} to DVC remote {remote!r}: not a folder (expected a model folder)")
    if not any(p.is_file() for p in path.rglob("*")):
        raise ArtifactStoreError(f"cannot push {path} to DVC remote {remote!r}: the folder holds no files")
    store, url = open_remote(remote)
    odb = store.odb
    with _progress(f"hashing {path.name}") as callback:
        staging, meta, tree = build(odb, str(path.resolve()), LocalFileSystem(), "md5", callback=callback)
    md5 = tree.hash_info.value
    try:
        with _progress(f"pushing {path.name} ({human_size(meta.size)}) to {url}") as callback:
            result = transfer(staging, odb, {tree.hash_info}, jobs=jobs, hardlink=False, shallow=False,
                              callback=callback)
    except ArtifactStoreError:
        raise
    except Exception as e:
        raise ArtifactStoreError(f"cannot push {path} (md5 {md5}): {_explain(e, url)}") from None
    if result.failed:
        raise ArtifactStoreError(f"cannot push {path} (md5 {md5}) to DVC remote {url!r}: {len(result.failed)} "
                                 f"object(s) failed to upload (run with DVC's debug logging for details)")
    # `transferred` counts files plus the `.dir` listing itself.
    uploaded = len([h for h in result.transferred if not h.isdir])
    return {"dvc_md5": md5, "remote": redact(remote), "remote_url": url, "nfiles": meta.nfiles, "size": meta.size,
            "uploaded": uploaded}


def human_size(n: int | None) -> str:
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _normalise_md5(md5: str) -> str:
    value = md5.strip().lower()
    if not _MD5.match(value):
        raise ArtifactStoreError(f"not a DVC folder md5: {md5!r} (expected 32 hex digits, optionally with `.dir`, "
                                 f"as shown in the Model artifact's dvc_md5)")
    return value if value.endswith(".dir") else value + ".dir"


def pull(md5: str, remote: str, dest: str | os.PathLike, jobs: int | None = None) -> dict:
    """Fetch the folder with DVC md5 `md5` from `remote` into `dest` (atomically: `dest` appears whole, or stays as
    it was). Every file is checked against the md5: the folder is re-hashed after download and must match.
    Returns {"dvc_md5", "remote", "remote_url", "nfiles", "size", "path"}."""
    from dvc_data.hashfile import load
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.checkout import CheckoutError, checkout
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.transfer import transfer
    from dvc_objects.fs.local import LocalFileSystem

    md5 = _normalise_md5(md5)
    store, url = open_remote(remote)
    odb = store.odb
    hash_info = HashInfo("md5", md5)
    try:
        if not odb.exists(md5):
            where = "" if store.fs.exists(store.path) else " (the remote itself does not exist)"
            raise ArtifactStoreError(f"unknown md5 {md5}: DVC remote {url!r} holds no folder with this md5{where}")
        listing = load(odb, hash_info)  # reads and parses the `.dir` listing
    except ArtifactStoreError:
        raise
    except Exception as e:
        raise ArtifactStoreError(f"cannot read md5 {md5}: {_explain(e, url)}") from None

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    local_fs = LocalFileSystem()
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        cache = HashFileDB(local_fs, str(work / "odb"))
        try:
            with _progress(f"pulling {md5[:8]} from {url}") as callback:
                # No `verify` here: dvc-data drops a bad object silently; the whole folder is re-hashed below.
                result = transfer(odb, cache, {hash_info}, jobs=jobs, shallow=False, callback=callback)
        except Exception as e:
            raise ArtifactStoreError(f"cannot pull md5 {md5}: {_explain(e, url)}") from None
        if result.failed:
            raise ArtifactStoreError(f"cannot pull md5 {md5} from DVC remote {url!r}: {len(result.failed)} file(s) "
                                     f"missing or unreadable on the remote")
        out = work / "out"
        try:
            checkout(str(out), local_fs, listing, cache)  # checks each file against its md5 as it goes
        except CheckoutError as e:
            bad = sorted(os.path.relpath(p, out).replace(os.sep, "/") for p in e.paths)
            raise ArtifactStoreError(f"pulled md5 {md5} from DVC remote {url!r}, but its files do not match their "
                                     f"recorded md5s (the remote's copy is corrupt): {', '.join(bad)}") from None
        _, meta, got = build(cache, str(out), local_fs, "md5", dry_run=True)
        if got.hash_info.value != md5:
            expected = {key: hi.value for key, _, hi in listing}
            actual = {key: hi.value for key, _, hi in got}
            bad = sorted("/".join(k) for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k))
            raise ArtifactStoreError(f"pulled md5 {md5} from DVC remote {url!r}, but its files do not match their "
                                     f"recorded md5s (the remote's copy is corrupt): {', '.join(bad)}")
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        os.replace(out, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"dvc_md5": md5, "remote": redact(remote), "remote_url": url, "nfiles": meta.nfiles, "size": meta.size,
            "path": str(dest)}


def push_metadata(path: str | os.PathLike, remote: str) -> dict:
    """Push `path` when `remote` is set and return the Model artifact metadata it adds ({} when `remote` is empty):
    dvc_md5, dvc_remote (as given, without credentials), dvc_nfiles, dvc_size."""
    if not remote:
        return {}
    record = push(path, remote)
    return {"dvc_md5": record["dvc_md5"], "dvc_remote": record["remote"], "dvc_nfiles": record["nfiles"],
            "dvc_size": record["size"]}
