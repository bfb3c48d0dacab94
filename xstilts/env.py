"""Every XSTILTS_* environment variable, read in one place: one accessor per variable (name, meaning, default).

The library reads these variables only through this module. Each accessor reads os.environ when called (nothing is
cached at import), so a variable set by a test, by `xstilts run --local` for its steps, or by a parent process for
its children takes effect at once. An empty value counts as unset.

    XSTILTS_CACHE               cache_dir(): model and data cache. Default $HF_HOME/xstilts, else ~/.cache/xstilts.
    XSTILTS_CHECKPOINTS         checkpoints_dir(): step checkpoints, so a killed step resumes. Default
                                ~/.cache/xstilts/checkpoints; the image sets <cache mount>/checkpoints (the PVC),
                                `xstilts run --local` <workdir>/checkpoints.
    XSTILTS_STEP_CACHE          step_cache_dir(): the local step cache (xstilts.ops.stepcache); unset or empty: off.
                                `xstilts run --local` sets <cache_dir>/steps unless given (or --no-cache).
    XSTILTS_GRAPH_CACHE         graph_cache_dir(): ONNX export graphs reused across models of one architecture
                                (xstilts.export.graphs); unset or empty: off (each export traces). `xstilts run
                                --local` sets <cache_dir>/graphs unless given (--no-cache: a store of the run's own).
    XSTILTS_NO_PROGRESS         progress_enabled(): "1" turns progress bars off (tests, benchmark children).
    XSTILTS_PROGRESS_LINES      progress_lines_enabled(): "1" reports progress as `::progress` lines instead of bars
                                (xstilts.progress); `xstilts run --local` sets it for its steps unless --verbose.
    XSTILTS_FORKSERVER          forkserver_enabled(): "0" starts every local step as a fresh interpreter, as
                                kfp.local does; anything else forks them from a warm process (pipelines/forkserver.py).
    XSTILTS_STEP_PROBE          step_probe(): "1" (set by the local runner in its light fork) makes a step whose
                                cached entry cannot be reused exit with PROBE_MISS_EXIT before computing anything,
                                so that the runner runs it again where the model libraries are loaded.
    XSTILTS_DVC_REMOTE_ENDPOINT dvc_remote_endpoint(): S3-compatible endpoint (MinIO) for a URL remote; falls back to
                                AWS_ENDPOINT_URL. Default: none (AWS itself).
    XSTILTS_GIT_TOKEN           git_token(): token for pushing model-registry tags, given to git through GIT_ASKPASS
                                (never in a URL). Default: none.
    XSTILTS_GIT_USER            the user name that askpass script answers (read by the script, not here).
                                Default x-access-token.
    XSTILTS_COMMIT              code_commit(): the code's commit, set by the image build. Default: none (then the
                                git HEAD of the package, else xstilts.__version__).
    XSTILTS_IMAGE               image(): the container image the steps run in, recorded in provenance. Default: none.
    XSTILTS_SANDBOX_UID_BASE    sandbox_uid_base(): first of the dedicated uids for sandbox slots when the code
                                evaluator runs as root. Default 2000000.
    XSTILTS_SANDBOX_CGROUP      sandbox_cgroup(): a delegated cgroup v2 folder; each sandboxed program then runs in a
                                cgroup of its own whose memory.max counts all its memory. Default: none.
    XSTILTS_<TOOL>              tool_override(tool): path of a code-execution toolchain executable (XSTILTS_PYTHON3,
                                XSTILTS_NODE, XSTILTS_TSC, XSTILTS_JAVAC, XSTILTS_JAVA, XSTILTS_GXX, XSTILTS_GO)
                                instead of looking in the system directories.

Set for the cluster but not read by the library: XSTILTS_CACHE_PVC and XSTILTS_CACHE_MOUNT (the xstilts-defaults
ConfigMap, k8s/base/configmap.yaml), XSTILTS_WARM_MODEL and XSTILTS_WARM_REVISION (k8s/overlays/gpu/
cache-warmup-job.yaml).
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE = "XSTILTS_CACHE"
CHECKPOINTS = "XSTILTS_CHECKPOINTS"
STEP_CACHE = "XSTILTS_STEP_CACHE"
GRAPH_CACHE = "XSTILTS_GRAPH_CACHE"
NO_PROGRESS = "XSTILTS_NO_PROGRESS"
PROGRESS_LINES = "XSTILTS_PROGRESS_LINES"
FORKSERVER = "XSTILTS_FORKSERVER"
STEP_PROBE = "XSTILTS_STEP_PROBE"
DVC_REMOTE_ENDPOINT = "XSTILTS_DVC_REMOTE_ENDPOINT"
GIT_TOKEN = "XSTILTS_GIT_TOKEN"
GIT_USER = "XSTILTS_GIT_USER"
COMMIT = "XSTILTS_COMMIT"
IMAGE = "XSTILTS_IMAGE"
SANDBOX_UID_BASE = "XSTILTS_SANDBOX_UID_BASE"
SANDBOX_CGROUP = "XSTILTS_SANDBOX_CGROUP"


def cache_dir() -> Path:
    """Model and step cache: XSTILTS_CACHE, else HF_HOME/xstilts (a PVC on the cluster), else ~/.cache/xstilts."""
    if os.environ.get(CACHE):
        return Path(os.environ[CACHE])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "xstilts"
    return Path.home() / ".cache" / "xstilts"


def checkpoints_dir(default: Path | None = None) -> Path:
    """Where step checkpoints live: XSTILTS_CHECKPOINTS (the model-cache PVC on the cluster), else `default`, else
    ~/.cache/xstilts/checkpoints."""
    if os.environ.get(CHECKPOINTS):
        return Path(os.environ[CHECKPOINTS])
    return default or Path.home() / ".cache" / "xstilts" / "checkpoints"


def step_cache_dir() -> Path | None:
    """The step cache directory (XSTILTS_STEP_CACHE), or None when the cache is off (unset or blank)."""
    root = os.environ.get(STEP_CACHE, "").strip()
    return Path(root) if root else None


def graph_cache_dir() -> Path | None:
    """The store of exported ONNX graphs (XSTILTS_GRAPH_CACHE), or None when it is off (unset or blank)."""
    root = os.environ.get(GRAPH_CACHE, "").strip()
    return Path(root) if root else None


def progress_enabled() -> bool:
    """Progress bars are shown unless XSTILTS_NO_PROGRESS=1 or progress goes as lines (XSTILTS_PROGRESS_LINES=1)."""
    return os.environ.get(NO_PROGRESS) != "1" and not progress_lines_enabled()


def progress_lines_enabled() -> bool:
    """Progress is printed as `::progress` lines for a reader of the output (XSTILTS_PROGRESS_LINES=1)."""
    return os.environ.get(PROGRESS_LINES) == "1"


def disable_progress() -> None:
    """Turn progress bars off for this process and the processes it starts (XSTILTS_NO_PROGRESS=1)."""
    os.environ[NO_PROGRESS] = "1"


def forkserver_enabled() -> bool:
    """Local runs fork steps from a warm process unless XSTILTS_FORKSERVER=0."""
    return os.environ.get(FORKSERVER) != "0"


def step_probe() -> bool:
    """Whether a cache miss should end the step with PROBE_MISS_EXIT instead of computing it (XSTILTS_STEP_PROBE=1)."""
    return os.environ.get(STEP_PROBE) == "1"


# The exit code of a probed step that is not cached (EX_TEMPFAIL: "try again", here in a fork with torch loaded).
PROBE_MISS_EXIT = 75


def dvc_remote_endpoint() -> str | None:
    """The S3-compatible endpoint for a URL remote: XSTILTS_DVC_REMOTE_ENDPOINT, else AWS_ENDPOINT_URL, else None."""
    return next((os.environ[v] for v in (DVC_REMOTE_ENDPOINT, "AWS_ENDPOINT_URL") if os.environ.get(v)), None)


def git_token() -> str | None:
    """The model registry's git token (XSTILTS_GIT_TOKEN), or None."""
    return os.environ.get(GIT_TOKEN) or None


def code_commit() -> str | None:
    """The code's commit as the image build recorded it (XSTILTS_COMMIT), or None."""
    return os.environ.get(COMMIT) or None


def image() -> str | None:
    """The container image the steps run in (XSTILTS_IMAGE), or None."""
    return os.environ.get(IMAGE) or None


def sandbox_uid_base() -> int:
    """First dedicated uid for sandbox slots when running as root (XSTILTS_SANDBOX_UID_BASE, default 2000000)."""
    return int(os.environ.get(SANDBOX_UID_BASE, "2000000"))


def sandbox_cgroup() -> Path | None:
    """A delegated cgroup v2 folder under which each sandboxed program gets a memory cgroup of its own
    (XSTILTS_SANDBOX_CGROUP). Default: none (rlimits and size-capped tmpfs only)."""
    value = os.environ.get(SANDBOX_CGROUP, "").strip()
    return Path(value) if value else None


def tool_variable(tool: str) -> str:
    """The variable that overrides where a toolchain executable is: XSTILTS_ + its name, `+` as X (g++: XSTILTS_GXX)."""
    return "XSTILTS_" + tool.upper().replace("+", "X").replace("-", "_")


def tool_override(tool: str) -> str | None:
    """The path XSTILTS_<TOOL> gives for a toolchain executable, or None."""
    return os.environ.get(tool_variable(tool)) or None
