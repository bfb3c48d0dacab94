"""Retries only for what can be transient. On the cluster a training step is retried after a failure (a preempted
node, an OOM-killed pod, a network error: the step resumes from its checkpoint). A deterministic failure — a
configuration error, a ZeroDivisionError, a full disk — would only fail again, after minutes of back-off each time.

So a step remembers its deterministic failures: `failing_fast(step, identity)` records the error (a JSON file under
<XSTILTS_CHECKPOINTS>/failures/, the cache PVC on the cluster, which retries share) and re-raises it; the retry of
the same step with the same identity (inputs, parameters, code) then fails within a second with the recorded
message as its last line, instead of recomputing. Transient errors are not recorded, and a process killed by a
signal (preemption, the OOM killer) records nothing, so those retries resume as before.
"""

from __future__ import annotations

import contextlib
import errno
import json
import time
from pathlib import Path
from typing import Any, Iterator

from xstilts import env
from xstilts.errors import XstiltsError
from xstilts.io import atomic_write_text, fingerprint, shorten

# Network and service errors by class name, so that no HTTP library needs importing here (requests, urllib3,
# httpx, aiohttp, huggingface_hub): a retry may well succeed.
TRANSIENT_NAMES = frozenset({"ConnectTimeout", "ReadTimeout", "ConnectError", "ConnectionError", "Timeout",
                             "ChunkedEncodingError", "ProtocolError", "RemoteDisconnected", "IncompleteRead",
                             "ServerDisconnectedError", "ClientConnectorError", "ClientOSError", "NetworkError",
                             "RemoteProtocolError", "ReadError", "WriteError", "PoolTimeout"})
TRANSIENT_ERRNOS = frozenset({errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT,
                              errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EPIPE, errno.EAGAIN})


class DeterministicFailure(XstiltsError):
    """This step failed the same way in an earlier attempt: retrying would only fail again."""


def is_transient(error: BaseException) -> bool:
    """Whether a retry of the step could succeed: network and service errors (HTTP 429 and 5xx included)."""
    for e in _chain(error):
        if isinstance(e, (ConnectionError, TimeoutError)) or type(e).__name__ in TRANSIENT_NAMES:
            return True
        if isinstance(e, OSError) and e.errno in TRANSIENT_ERRNOS:
            return True
        status = getattr(getattr(e, "response", None), "status_code", None)
        if isinstance(status, int) and (status == 429 or 500 <= status < 600):
            return True
    return False


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def failure_record(step: str, identity: Any) -> Path:
    return env.checkpoints_dir() / "failures" / f"{step}-{fingerprint(step, identity)}.json"


@contextlib.contextmanager
def failing_fast(step: str, identity: Any) -> Iterator[None]:
    """Run the block unless this step already failed deterministically with this `identity` (raise
    DeterministicFailure with the recorded message then); record a deterministic failure of the block."""
    record = failure_record(step, identity)
    if record.is_file():
        try:
            failed = json.loads(record.read_text(encoding="utf-8"))
            message = f"{failed['type']}: {failed['message']}"
        except (OSError, ValueError, KeyError, TypeError):
            message = "(unreadable record)"
        raise DeterministicFailure(f"{step} failed the same way in an earlier attempt, so it is not run again: "
                                   f"{message} (remove {record} to retry)")
    try:
        yield
    except Exception as e:
        if not is_transient(e):
            with contextlib.suppress(OSError):  # a full disk must not hide the step's own error
                atomic_write_text(record, json.dumps({"step": step, "type": type(e).__name__,
                                                      "message": shorten(str(e), 2000),
                                                      "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        raise
