"""A local step cache: a re-run with unchanged inputs reuses a step's outputs instead of recomputing them.

Kubeflow caches steps itself; `kfp.local` has no cache that survives a run (its own keys on artifact URIs, which are
new in every run). A component calls its library function through `run_cached`:

    result = run_cached("export", export_onnx, inputs={"model_dir": model.path},
                        outputs={"out_dir": onnx_model.path, "md_path": report.path}, params={"tolerance": 1e-4})

which calls `export_onnx(**inputs, **outputs, **params)`, so everything the function is given is in exactly one of
the three: `inputs` are artifact paths (a file, a folder, or a list of them) keyed by their content, `outputs` the
paths the function writes, `params` everything else (JSON-able values or dataclasses). The key is the step name,
the content md5 of every input (content_md5: the artifact's bytes without its lineage.json, JSON files without
their timings and run paths, so identical runs share entries), the params, a hash of the code the step runs (its
function's module and the xstilts modules it imports, see code_fingerprint: editing a benchmark or the CLI keeps the
entries) and the versions of the packages that compute the results.

The cache is on only where XSTILTS_STEP_CACHE names a directory; `xstilts run --local` sets it (default
<cache_dir>/steps, see pipelines/local.py), nothing sets it on the cluster, where KFP's caching applies. Steps that
must always run (resolve data, the promotion gate) do not call it.

  miss: run the function; then its outputs, its return value (result.json) and the key's parts (entry.json) are
        copied into <XSTILTS_STEP_CACHE>/<step>-<key>/ through a temp folder and a rename, so an entry is whole or
        absent; the line `[cache] <step>: stored <key>` is printed.
  hit:  every stored output and the stored result are first checked against the fingerprints taken when they were
        stored (a corrupt entry is dropped with a warning and the step runs again); then every cached output is
        copied to its output path atomically (io.atomic_dir and atomic_copy) and the cached return value is
        returned; the line `[cache] <step>: reused <key>` is printed.
        The component then sets its KFP metadata from the return value and the restored lineage.json as on a miss.
        The restored lineage.json is the cached run's: its md5s are right (the bytes are the same), but its input
        paths, started_at and seconds are those of the run that computed it.

A component names its function lazily, `lazy("xstilts.train.finetune:target_finetune")`, so that a hit never imports
what only computing needs (torch, transformers, onnxruntime: seconds a step): the key reads the code from the source
files, and the function is imported when it is called. With XSTILTS_STEP_PROBE=1 (the local runner's light fork,
pipelines/forkserver.py) a miss ends the step with exit code PROBE_MISS_EXIT before anything is computed or written,
and the runner runs it again in a process that has those libraries loaded.

With the cache on, the return value is JSON round-tripped on a miss too, so a hit and a miss return the same thing.
A run computing a step holds a lock on its entry (<XSTILTS_STEP_CACHE>/locks/): a concurrent run with the same key
waits for it and then reuses the entry instead of computing the step twice.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import fcntl
import functools
import gc
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from xstilts import env
from xstilts.io import (OUTPUT_MARKER, atomic_copy, atomic_dir, dir_fingerprint, fingerprint, jsonable, read_json,
                        replacing_foreign_outputs, write_json)
from xstilts.ops.failfast import failing_fast
from xstilts.progress import process_seconds, report_phase
from xstilts.provenance import LINEAGE_FILE


ENV = env.STEP_CACHE
RESULT_FILE = "result.json"
NOT_CACHED = "not cached"  # what a probed miss prints; the local runner starts its heavy fork server on it
ENTRY_FILE = "entry.json"
# The packages whose versions change what the steps compute (a different torch can train different weights).
KEY_PACKAGES = ("torch", "transformers", "tokenizers", "onnx", "onnxscript", "onnxruntime", "numpy", "pandas")


def cache_root() -> Path | None:
    """The cache directory ($XSTILTS_STEP_CACHE), or None when the cache is off."""
    return env.step_cache_dir()


PACKAGE = "xstilts"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Rooms no step runs: the command line, the benchmarks and the sample-data generator. An import of one of them
# (a benchmark helper beside a step's code imports sample data lazily) does not bring it into a step's code.
NOT_STEP_CODE = ("xstilts.cli", "xstilts.bench", "xstilts.sampledata")


def code_fingerprint(func: Callable[..., Any]) -> str:
    """A hash of the code `func` runs: the source of its module and of every xstilts module that module imports,
    transitively, with the data files of the packages among them (names and bytes, in name order).

    The closure is static, read from the source files rather than from what a process happens to have imported, so
    the same files give the same key in any process: the `import xstilts...` and `from xstilts... import ...`
    statements anywhere in a module (lazy ones inside functions too) are resolved to files below the package folder,
    with the packages' __init__.py files that importing them runs and their data files (neither .py nor .md,
    outside a subpackage: the tiny models' corpora). A functools.partial counts its function and the callables among its
    arguments (run_data_parallel(finetune) runs finetune's module). Modules in NOT_STEP_CODE are left out. So editing
    a benchmark, a CLI help text or the sample generator keeps every cached step; editing a module a step imports
    (or the step's own module, wherever it is) is a miss for that step. Dynamic imports (importlib) are not seen."""
    return _closure_fingerprint(tuple(sorted({_module_name(f) for f in _callables(func)} - {None})))


class lazy:
    """A module-level function named "module:name", imported when it is called (see the module docstring). Its
    __module__ and __qualname__ are the function's, so code_fingerprint and run_data_parallel's workers (which import
    it by those names) see it as the function itself; it pickles as its name. `light=True`: it computes without
    torch, transformers or onnxruntime (validation, gathering, the report), so a probed miss computes it at once
    instead of waiting for the heavy fork server."""

    def __init__(self, reference: str, light: bool = False):
        module, _, name = reference.partition(":")
        if not module or not name:
            raise ValueError(f"lazy function reference must be 'module:name', not {reference!r}")
        self.__module__, self.__qualname__, self.reference, self.light = module, name, reference, light

    def resolve(self) -> Callable[..., Any]:
        target = importlib.import_module(self.__module__)
        for part in self.__qualname__.split("."):
            target = getattr(target, part)
        return target

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __reduce__(self):
        return lazy, (self.reference, self.light)

    def __repr__(self) -> str:
        return f"lazy({self.reference!r})"


def _callables(func: Any) -> list[Any]:
    """`func` and, for a partial, its function and the callables among its arguments."""
    if isinstance(func, functools.partial):
        return [c for f in (func.func, *func.args, *func.keywords.values()) if callable(f) for c in _callables(f)]
    return [getattr(func, "__func__", func)]  # a bound method: its function


def _module_name(func: Any) -> str | None:
    """The module defining `func` (a callable instance: its class's)."""
    return getattr(func, "__module__", None) or getattr(type(func), "__module__", None)


def _module_file(name: str) -> Path | None:
    """The source file of module `name`: below the package folder for xstilts modules, else as imported."""
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
        for file in (base.with_suffix(".py"), base / "__init__.py") if name != PACKAGE else (base / "__init__.py",):
            if file.is_file():
                return file
        return None
    file = getattr(sys.modules.get(name), "__file__", None)
    return Path(file) if file and file.endswith(".py") and Path(file).is_file() else None


def _is_step_code(name: str) -> bool:
    return ((name == PACKAGE or name.startswith(PACKAGE + "."))
            and not any(name == room or name.startswith(room + ".") for room in NOT_STEP_CODE))


@functools.lru_cache(maxsize=None)
def _imports(name: str) -> frozenset[str]:
    """The xstilts modules (and their packages) that a module's source imports, wherever the statement stands (parsed
    once a process: the local runner's fork server parses them before it forks steps, see warm)."""
    file = _module_file(name)
    if file is None:
        return frozenset()
    source = file.read_text(encoding="utf-8")
    found = set()
    package = name if file is not None and file.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, `level` dots up
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}"))
    packages = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return frozenset(m for m in found | packages if _is_step_code(m) and _module_file(m))


@functools.lru_cache(maxsize=None)
def _closure_fingerprint(modules: tuple[str, ...]) -> str:
    """code_fingerprint of these modules (once a process: a step's process does not see its code change)."""
    seen, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports(name) - seen)
    files = {name: _module_file(name) for name in seen}
    for name in seen:  # a package's data files (xstilts/models/corpus/), which its modules read
        if files[name] is not None and files[name].name == "__init__.py" and _is_step_code(name):
            files.update(_package_data(name, files[name].parent))
    h = hashlib.sha256()
    for name, file in sorted(files.items()):
        h.update(name.encode() + b"\0" + (file.read_bytes() if file else b"") + b"\0")
    return h.hexdigest()[:16]


def warm(functions: list[Any]) -> None:
    """Compute, once, what every step's key needs that does not depend on its inputs: the code fingerprints of
    `functions` (lazy references do not import anything) and the package versions. A fork server calls this before
    it forks steps, which then inherit the results."""
    for func in functions:
        code_fingerprint(func)
    environment()


def _package_data(package: str, folder: Path) -> dict[str, Path]:
    """The files below a package's folder that are neither Python nor docs (.md) and not in a subpackage."""
    data = {}
    for file in folder.rglob("*"):
        relative = file.relative_to(folder)
        if (file.is_file() and file.suffix not in (".py", ".pyc", ".md") and "__pycache__" not in relative.parts
                and not any((folder / Path(*relative.parts[:i]) / "__init__.py").is_file()
                            for i in range(1, len(relative.parts)))):
            data[f"{package}/{relative.as_posix()}"] = file
    return data


@functools.lru_cache(maxsize=None)
def environment() -> dict[str, str | None]:
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"python": sys.version.split()[0], **{name: version(name) for name in KEY_PACKAGES}}


# Fields of the steps' JSON outputs that differ between two runs of the same step on the same inputs: timings and
# where the run kept its files. An input's key ignores them, so identical runs share cache entries.
RUN_SPECIFIC_KEYS = frozenset({"seconds", "started_at", "train_seconds", "warmup_seconds", "eval_seconds",
                               "export_seconds", "samples_per_second", "tokens_per_second",
                               "steady_samples_per_second", "steady_tokens_per_second", "init", "model_dir"})


def _without_run_specific(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_run_specific(v) for k, v in value.items() if k not in RUN_SPECIFIC_KEYS}
    if isinstance(value, list):
        return [_without_run_specific(v) for v in value]
    return value


def content_md5(path: str | os.PathLike) -> str:
    """An input artifact's md5 for the key: every file's name and bytes (as lineage's artifact_md5, without
    lineage.json and the output marker), except that JSON files count without their RUN_SPECIFIC_KEYS."""
    root = Path(path)
    files = [root] if root.is_file() else sorted((p for p in root.rglob("*") if p.is_file()),
                                                 key=lambda p: p.relative_to(root).as_posix())
    h = hashlib.md5()
    for file in files:
        rel = file.name if file == root else file.relative_to(root).as_posix()
        if file != root and rel in (LINEAGE_FILE, OUTPUT_MARKER):
            continue
        data = file.read_bytes()
        if file.suffix == ".json":
            try:
                data = json.dumps(_without_run_specific(json.loads(data)), sort_keys=True).encode()
            except (ValueError, RecursionError):
                pass  # not JSON after all: its bytes count
        h.update(rel.encode() + b"\0" + hashlib.md5(data).digest())
    return h.hexdigest()


def _content(value: Any) -> Any:
    """An input's content md5 (a list of them for a list of paths; None stays None)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_content(v) for v in value]
    return content_md5(value)


def step_key(step: str, func: Callable[..., Any], inputs: dict[str, Any], outputs: dict[str, Any],
             params: dict[str, Any]) -> tuple[str, dict]:
    """(key, its parts): what decides whether a cached entry answers this call of `func`. Of the outputs only which
    ones are asked for counts (a call without md_path writes no Markdown), not where they go."""
    parts = {"step": step, "inputs": {name: _content(value) for name, value in inputs.items()},
             "outputs": sorted(name for name, path in outputs.items() if path is not None),
             "params": {name: jsonable(value, sort_keys=True) for name, value in params.items()},
             "code": code_fingerprint(func), "environment": environment()}
    return fingerprint(parts), parts


def _entry_dir(root: Path, step: str, key: str) -> Path:
    return root / f"{step}-{key}"


class CorruptEntryError(Exception):
    """A cache entry whose stored bytes differ from what was stored: never reused."""


def _output_fingerprint(path: Path) -> str:
    """Every byte of a stored output (names and contents of all files of a folder), lineage.json included."""
    return dir_fingerprint(path) if path.is_dir() else fingerprint(path.read_bytes().hex())


def _restore(entry: Path, outputs: dict[str, Any]) -> bool:
    """Copy the entry's outputs to their paths; False (nothing copied) if the entry lacks one it recorded. Every
    stored output and the stored result are checked against the fingerprints taken when they were stored first:
    CorruptEntryError (nothing copied) if one differs, e.g. a truncated model or an edited results.json."""
    recorded = read_json(entry / ENTRY_FILE)
    stored, fingerprints = recorded["stored"], recorded.get("fingerprints")
    sources = {name: entry / "outputs" / name for name in stored}
    if any(outputs.get(name) is None for name in stored) or not all(p.exists() for p in sources.values()):
        return False
    if fingerprints is None:
        raise CorruptEntryError("written by an older xstilts without fingerprints")
    for name, src in {**sources, RESULT_FILE: entry / RESULT_FILE}.items():
        if _output_fingerprint(src) != fingerprints.get(name):
            raise CorruptEntryError(f"{src} differs from what was stored")
    for name, src in sources.items():
        if src.is_dir():
            # The step's output paths are the pipeline's (KFP creates them): whatever is there is replaced.
            with replacing_foreign_outputs(), atomic_dir(outputs[name]) as tmp:
                shutil.copytree(src, tmp, dirs_exist_ok=True)
        else:
            atomic_copy(src, outputs[name])
    return True


def _store(root: Path, step: str, key: str, parts: dict, outputs: dict[str, Any], result: Any, seconds: float) -> None:
    """Write the entry through a temp folder and a rename; a concurrent identical entry that got there first wins."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{step}-{key}.tmp-", dir=root))
    try:
        stored = []
        for name, path in outputs.items():
            if path is None or not Path(path).exists():
                continue
            dest = tmp / "outputs" / name
            dest.parent.mkdir(exist_ok=True)
            shutil.copytree(path, dest) if Path(path).is_dir() else shutil.copyfile(path, dest)
            stored.append(name)
        write_json(tmp / RESULT_FILE, result)
        fingerprints = {name: _output_fingerprint(tmp / "outputs" / name) for name in stored}
        fingerprints[RESULT_FILE] = _output_fingerprint(tmp / RESULT_FILE)
        write_json(tmp / ENTRY_FILE, {**parts, "key": key, "stored": stored, "fingerprints": fingerprints,
                                      "seconds": round(seconds, 3), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        try:
            os.rename(tmp, _entry_dir(root, step, key))
        except OSError:
            if not (_entry_dir(root, step, key) / ENTRY_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_cached(step: str, func: Callable[..., Any], inputs: dict[str, Any], outputs: dict[str, Any],
               params: dict[str, Any] | None = None, whole_step: bool = True) -> Any:
    """`func(**inputs, **outputs, **params)`, or its cached outputs and return value (see the module docstring).
    `whole_step=False`: a part of a step that does more (the promotion gate's summary); its `[cache]` lines say so,
    so that the local run's view does not show the step as cached."""
    if whole_step:
        report_phase("import", process_seconds())
    _freeze_gc_at_exit()
    params = dict(params or {})
    label = step if whole_step else f"{step} (part of the step)"
    root = cache_root()
    if root is None:
        return _call(step, func, inputs, outputs, params)
    key, parts = step_key(step, func, inputs, outputs, params)
    entry = _entry_dir(root, step, key)
    with _computing(root, step, key):  # another run computing the same entry: wait for it, then reuse it
        if (entry / ENTRY_FILE).is_file() and (entry / RESULT_FILE).is_file():
            try:
                if _restore(entry, outputs):
                    print(f"[cache] {label}: reused {key} ({entry})", flush=True)
                    return read_json(entry / RESULT_FILE)
            except CorruptEntryError as e:
                print(f"[cache] warning: {step}: entry {entry} is corrupt ({e}); dropped, running the step",
                      flush=True)
                shutil.rmtree(entry, ignore_errors=True)
            except (OSError, ValueError, KeyError) as e:
                print(f"[cache] {label}: entry {entry} unusable ({e}); running the step", flush=True)
        if env.step_probe():
            print(f"[cache] {label}: {NOT_CACHED} ({key}); computing it", flush=True)
            if not all(getattr(f, "light", False) for f in _callables(func)):
                raise SystemExit(env.PROBE_MISS_EXIT)  # the runner runs it again where torch & co. are loaded
        started = time.perf_counter()
        result = _call(step, func, inputs, outputs, params)
        seconds = time.perf_counter() - started
        try:
            result = json.loads(json.dumps(result))
        except (TypeError, ValueError) as e:  # not JSON: run as usual, uncached
            print(f"[cache] {label}: not stored, its result is not JSON ({e})", flush=True)
            return result
        try:
            _store(root, step, key, parts, outputs, result, seconds)
            print(f"[cache] {label}: stored {key} ({entry})", flush=True)
        except OSError as e:  # a full disk must not fail a step that has produced its outputs
            print(f"[cache] {label}: not stored ({e})", flush=True)
        return result


def _call(step: str, func: Callable[..., Any], inputs: dict[str, Any], outputs: dict[str, Any],
          params: dict[str, Any]) -> Any:
    """`func(**inputs, **outputs, **params)`, unless this very call (the same input contents, output paths,
    parameters and code: a retry of the same pipeline task) already failed deterministically; see
    xstilts.ops.failfast."""
    identity = {"inputs": {name: _content(value) for name, value in inputs.items()},
                "outputs": jsonable(outputs, sort_keys=True), "params": jsonable(params, sort_keys=True),
                "code": code_fingerprint(func)}
    with failing_fast(step, identity):
        return func(**inputs, **outputs, **params)


@contextlib.contextmanager
def _computing(root: Path, step: str, key: str) -> Iterator[None]:
    """Hold an exclusive lock on the entry while it is looked up and computed, so two concurrent runs compute a step
    once: the second waits (and says so), then finds the entry. The lock goes with the process that holds it."""
    locks = root / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{step}-{key}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[cache] {step}: another run is computing {key}; waiting for it", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_GC_FROZEN_AT_EXIT = False


def _freeze_gc_at_exit() -> None:
    """A pipeline step runs in a process of its own that ends when the step does. At exit, the interpreter's final
    garbage collection walks every object torch, transformers and the ONNX exporter have created: about 1.5 s of
    CPU per step, for nothing. Freezing the collector at exit skips that walk (objects are not collected, which is
    what exiting does to them anyway; files are closed and outputs written before). Registered once per process."""
    global _GC_FROZEN_AT_EXIT
    if not _GC_FROZEN_AT_EXIT:
        atexit.register(gc.freeze)
        _GC_FROZEN_AT_EXIT = True
