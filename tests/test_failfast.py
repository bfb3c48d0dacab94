"""Retries only for what can be transient: a deterministic failure of a step is recorded and its retry fails at once
with the same message; network errors and kills are retried as before (xstilts.ops.failfast)."""

from __future__ import annotations

import errno
import json

import pytest

from xstilts import env
from xstilts.errors import ConfigError
from xstilts.ops.failfast import DeterministicFailure, failure_record, is_transient
from xstilts.ops.stepcache import run_cached


@pytest.fixture
def checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv(env.CHECKPOINTS, str(tmp_path / "ckpt"))
    monkeypatch.delenv(env.STEP_CACHE, raising=False)  # as on the cluster
    return tmp_path / "ckpt"


class Step:
    def __init__(self, error):
        self.error, self.calls = error, 0

    def __call__(self, out_dir, rate=1):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return {"ok": True}


@pytest.mark.parametrize("error", [ConfigError("training parameter 'seed': -1"), ZeroDivisionError("division by zero"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_a_deterministic_failure_is_not_run_again(checkpoints, tmp_path, error):
    step = Step(error)
    with pytest.raises(type(error)):
        run_cached("target", step, inputs={}, outputs={"out_dir": tmp_path / "out"}, params={"rate": 2})
    with pytest.raises(DeterministicFailure) as again:  # the retry: seconds, not a recomputation
        run_cached("target", step, inputs={}, outputs={"out_dir": tmp_path / "out"}, params={"rate": 2})
    assert step.calls == 1
    assert f"{type(error).__name__}: " in str(again.value) and "not run again" in str(again.value)
    record = next((checkpoints / "failures").glob("target-*.json"))
    assert json.loads(record.read_text())["type"] == type(error).__name__
    step.error = None  # other parameters (or inputs, or code) are another call: it runs
    assert run_cached("target", step, inputs={}, outputs={"out_dir": tmp_path / "out"}, params={"rate": 3}) == {"ok": True}


@pytest.mark.parametrize("error", [ConnectionResetError(errno.ECONNRESET, "reset"), TimeoutError("read timed out"),
                                   OSError(errno.ETIMEDOUT, "timed out")])
def test_a_transient_failure_is_retried(checkpoints, tmp_path, error):
    step = Step(error)
    for _ in range(2):
        with pytest.raises(type(error)):
            run_cached("intermediate", step, inputs={}, outputs={"out_dir": tmp_path / "o"})
    assert step.calls == 2 and not (checkpoints / "failures").exists()


def test_what_counts_as_transient():
    class Response:
        status_code = 503

    class HTTPError(Exception):
        response = Response()

    class ReadTimeout(Exception):
        pass

    assert is_transient(HTTPError()) and is_transient(ReadTimeout())
    Response.status_code = 404
    assert not is_transient(HTTPError())  # a missing repo stays missing
    try:
        try:
            raise ConnectionError("peer gone")
        except ConnectionError as cause:
            raise RuntimeError("download failed") from cause
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(ValueError("bad")) and not is_transient(MemoryError())


def test_the_record_names_the_call(checkpoints):
    assert failure_record("target", {"a": 1}) != failure_record("target", {"a": 2})
    assert failure_record("target", {"a": 1}).parent == checkpoints / "failures"
