"""Exported graphs reused across models of one architecture.

Tracing a module with torch.onnx (dynamo) takes seconds; models that differ only in their weights trace to the
same graph. So every export goes one way: trace unoptimized (each parameter and buffer it uses is then an initializer
named by its state_dict name) → a template, the serialized graph with those initializers' data left out → instantiate
the template with this module's weights → the onnxscript optimizer (what `torch.onnx.export(optimize=True)` runs)
→ the caller's fusions → save (a small model skips the optimizer and the fusions: encoder.worth_optimizing). A
template traced from another model of the same architecture gives the same bytes as one traced from this model, so
an export is byte-identical whether or not its template was reused.

With XSTILTS_GRAPH_CACHE set (env.graph_cache_dir()), templates are stored there, keyed by everything that decides
the traced graph besides weight values (graph_key); unset, each export traces for itself. Per key, a file lock
makes concurrent exports of one architecture trace once; entries are written atomically with an md5 beside them,
and an unreadable entry is dropped (with a warning) and traced again. Before a reused template is used, every
parameter of the module must have been found in it with its shape and dtype; otherwise the module is traced afresh.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import json
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from xstilts import env
from xstilts.export.common import export_program
from xstilts.io import atomic_write_bytes, fingerprint

# Placeholder location of the weights a template leaves out: they are always replaced before use.
ABSENT_WEIGHTS = "weights-left-out-of-template"
VERSIONED = ("torch", "onnx", "onnxscript", "onnx_ir", "transformers")
CODE_PACKAGES = ("export", "models", "kinds")  # xstilts code that decides the traced graph
PACKAGE_DIR = Path(__file__).resolve().parents[1]
EVAL_WITH_KEY = re.compile(r"<eval_with_key>\.\d+")


class TemplateMismatch(Exception):
    """A template does not fit the module (a parameter missing, of another shape or dtype, a weight left unset)."""


def state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers by state_dict name, every name of a tied one: the initializer names of an
    unoptimized export."""
    return {**dict(module.named_parameters(remove_duplicate=False)),
            **dict(module.named_buffers(remove_duplicate=False))}


UNUSED_PARAMETERS = "xstilts.unused_parameters"  # a template's metadata: the parameters its graph does not use


def _parameter_names(module: torch.nn.Module) -> list[list[str]]:
    """The names of each parameter (several where tied: the export names it by one of them)."""
    names: dict[int, list[str]] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    return list(names.values())


@lru_cache(maxsize=None)
def _files_digest(files: tuple[Path, ...]) -> str:
    """Paths count too: a template's stack traces name them, so another installation keeps its own entries."""
    h = hashlib.sha256()
    for file in files:
        h.update(str(file).encode() + b"\0" + file.read_bytes())
    return h.hexdigest()


def code_fingerprint(module: torch.nn.Module) -> str:
    """A hash of the code that decides the graph: xstilts' export, models and kinds sources, and the source file
    of every module class in `module` (transformers' modeling files). Read from the files, not imported."""
    files = {p for package in CODE_PACKAGES for p in (PACKAGE_DIR / package).rglob("*.py")}
    for sub in module.modules():
        with contextlib.suppress(TypeError, OSError):
            files.add(Path(inspect.getsourcefile(type(sub))).resolve())
    return _files_digest(tuple(sorted(files)))[:16]


def _describe(spec):
    """The dynamic shapes spec as JSON (torch.export.Dim objects by name and range)."""
    if isinstance(spec, dict):
        return {str(k): _describe(v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_describe(v) for v in spec]
    if isinstance(spec, type) and hasattr(spec, "min"):
        return {"dim": spec.__name__, "min": spec.min, "max": spec.max}
    return repr(spec)


def graph_key(module: torch.nn.Module, args: tuple, input_names: list[str], output_names: list[str],
              dynamic_shapes, opset: int, label: str, architecture: dict) -> tuple[str, dict]:
    """(key, what it hashes): the module's class, `architecture` (what the caller knows decides the graph: the
    encoder config, task kind, labels, pooled layer), the names, shapes and dtypes of its parameters and buffers,
    the example inputs' shapes, input/output names, dynamic axes, opset, library versions and code. The key is
    `label` (for people) and a hash."""
    parts = {
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        "architecture": architecture,
        "state": [[name, list(t.shape), str(t.dtype)] for name, t in state_tensors(module).items()],
        "args": [[list(a.shape), str(a.dtype)] for a in args],
        "input_names": list(input_names), "output_names": list(output_names),
        "dynamic_shapes": _describe(dynamic_shapes), "opset": opset,
        "versions": {name: metadata.version(name) for name in VERSIONED},
        "code": code_fingerprint(module),
    }
    parts = json.loads(json.dumps(parts, sort_keys=True, default=str))
    return f"{label}-{fingerprint(parts)}", parts


def template_of(program, module: torch.nn.Module) -> bytes:
    """An unoptimized ONNXProgram's model as bytes, the data of the module's weights left out (shape and dtype
    kept): the template is small, and the same whichever model of the architecture was traced."""
    import onnx_ir as ir

    state = state_tensors(module)
    for name, value in program.model.graph.initializers.items():
        if name in state and value.const_value is not None:
            tensor = value.const_value
            value.const_value = ir.ExternalTensor(ABSENT_WEIGHTS, 0, tensor.nbytes, tensor.dtype, shape=tensor.shape,
                                                  name=name)
    _drop_process_counters(program.model)
    # Parameters the forward does not use (a retrieval encoder pooled below its last layer) are not in the graph:
    # recorded, so that a reuse tells them from a parameter missing for another reason.
    unused = [names[0] for names in _parameter_names(module)
              if not any(name in program.model.graph.initializers for name in names)]
    program.model.metadata_props[UNUSED_PARAMETERS] = json.dumps(unused)
    return ir.to_proto(program.model).SerializeToString()


def _drop_process_counters(model) -> None:
    """Stack traces in node metadata name fx's generated code `<eval_with_key>.N`, N counting the graphs this
    process has generated: drop N so a template does not depend on what was traced before it."""
    import onnx_ir as ir

    graphs = [model.graph, *model.functions.values()]
    for graph in graphs:
        for node in ir.traversal.RecursiveGraphIterator(graph):
            for name, text in node.metadata_props.items():
                if EVAL_WITH_KEY.search(text):
                    node.metadata_props[name] = EVAL_WITH_KEY.sub("<eval_with_key>", text)


def load_template(template: bytes):
    """The template's onnx_ir.Model (its weights left out). Raises when the bytes are not a model."""
    import onnx
    import onnx_ir as ir

    return ir.serde.deserialize_model(onnx.load_from_string(template))


def instantiate(model, module: torch.nn.Module, require_every_parameter: bool):
    """Give a loaded template (in place) the module's weights. Raises TemplateMismatch where a weight initializer
    differs in shape or dtype, one is left without data, or (require_every_parameter) a parameter is not among the
    initializers."""
    import onnx_ir as ir

    state = state_tensors(module)
    initializers = model.graph.initializers
    unused = set(json.loads(model.metadata_props.pop(UNUSED_PARAMETERS, "[]")))  # not in the saved model
    problems = []
    for name, value in initializers.items():
        if name in state:
            array = np.ascontiguousarray(state[name].detach().cpu().numpy())
            old = value.const_value
            if old is None or tuple(old.shape) != array.shape or old.dtype != ir.DataType.from_numpy(array.dtype):
                problems.append(f"{name} is {old.dtype.name}{list(old.shape)} in the template, the module's "
                                f"{array.dtype}{list(array.shape)}" if old is not None else f"{name} has no data")
            value.const_value = ir.Tensor(array, name=name)
        elif isinstance(value.const_value, ir.ExternalTensor):
            problems.append(f"{name} is not a tensor of the module")
    if require_every_parameter:
        problems += [f"parameter {names[0]} is not in the graph" for names in _parameter_names(module)
                     if not any(name in initializers or name in unused for name in names)]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise TemplateMismatch("; ".join(problems[:3]) + more)
    return model


class GraphStore:
    """Templates in a folder: <key>.onnx, its md5 in <key>.md5, what the key hashes in <key>.json."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / f"{key}{suffix}"

    @contextlib.contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Hold the key's lock: a second export of the architecture waits, then finds the entry."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self._path(key, ".lock"), "a")
        except OSError as e:  # an unwritable store must not fail the export: it just goes unlocked
            print(f"[export] graph store {self.root} not lockable ({e}); going on without the lock", flush=True)
            yield
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"[export] another export is tracing {key}; waiting for it", flush=True)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self, key: str) -> bytes | None:
        """The entry's bytes; None when there is none. Raises ValueError when it is corrupt."""
        path = self._path(key, ".onnx")
        if not path.exists():
            return None
        blob = path.read_bytes()
        try:
            expected = self._path(key, ".md5").read_text().strip()
        except OSError as e:
            raise ValueError(f"no md5 ({e.strerror})") from None
        if hashlib.md5(blob).hexdigest() != expected:
            raise ValueError("md5 mismatch")
        return blob

    def write(self, key: str, blob: bytes, parts: dict) -> None:
        """Write the entry, each file atomically, the .onnx last: a crash in between leaves no .onnx or one whose
        md5 does not match (dropped and traced again)."""
        atomic_write_bytes(self._path(key, ".json"), (json.dumps(parts, indent=2, sort_keys=True) + "\n").encode())
        atomic_write_bytes(self._path(key, ".md5"), hashlib.md5(blob).hexdigest().encode() + b"\n")
        atomic_write_bytes(self._path(key, ".onnx"), blob)

    def drop(self, key: str) -> None:
        for suffix in (".onnx", ".md5", ".json"):
            with contextlib.suppress(OSError):
                self._path(key, suffix).unlink()



def _template_from_store(store: GraphStore, key: str, parts: dict, trace: Callable[[], bytes]):
    """(loaded template, reused) for `key`: the stored entry, else a fresh trace, stored. Call holding the key's
    lock."""
    try:
        blob = store.read(key)
        if blob is not None:
            return load_template(blob), True
    except Exception as e:  # noqa: BLE001 - whatever makes an entry unreadable, it is traced again
        print(f"[export] warning: graph cache entry {key} is unreadable ({type(e).__name__}: {e}); dropped, tracing",
              flush=True)
        store.drop(key)
    blob = trace()
    try:
        store.write(key, blob, parts)
    except OSError as e:  # a full disk must not fail an export that has its graph
        print(f"[export] graph {key} not stored ({e})", flush=True)
    return load_template(blob), False


def exported_model(module: torch.nn.Module, args: tuple, input_names: list[str], output_names: list[str],
                   dynamic_shapes, opset: int, label: str, architecture: dict, optimize: bool = True,
                   transform: Callable | None = None):
    """An ONNXProgram of `module`, optimized unless `optimize` is False (then the graph as traced), and what
    `transform(program.model)` returned (onnxruntime fusions, run after the optimizer; None without one). See the
    module docstring."""
    key, parts = graph_key(module, args, input_names, output_names, dynamic_shapes, opset, label, architecture)

    def fresh() -> bytes:
        program = export_program(module, args, input_names, output_names, dynamic_shapes, opset, optimize=False)
        return template_of(program, module)

    root = env.graph_cache_dir()
    if root is None:
        model, reused = load_template(fresh()), False
    else:
        store = GraphStore(root)
        with store.locked(key):
            model, reused = _template_from_store(store, key, parts, fresh)
    print(f"[export] graph {'reused' if reused else 'traced'} {key}", flush=True)
    try:
        # Only a reused template must hold every parameter: a fresh one comes from this very module.
        model = instantiate(model, module, require_every_parameter=reused)
    except TemplateMismatch as e:
        if not reused:
            raise
        print(f"[export] graph {key} does not fit this model ({e}); tracing it afresh", flush=True)
        model = instantiate(load_template(fresh()), module, require_every_parameter=False)
    program = torch.onnx.ONNXProgram(model, None)
    if optimize:
        program.optimize()  # what torch.onnx.export(optimize=True) runs after translation
    result = transform(program.model) if transform is not None else None
    return program, result
