"""Start kfp.local's step processes as forks of one warm process instead of fresh interpreters.

kfp.local's SubprocessRunner starts every step as `sh -c '... python3 -m kfp.dsl.executor_main ...'`: a new Python
that imports kfp, torch, transformers, onnxruntime and the ONNX exporter before it does any work — 3 to 7 s of CPU
per step, about half of all the CPU that `make run` (46 steps on 2 cores) spent. Here one server process imports them
once (PRELOAD); each step is a fork of it (copy-on-write, so the imported modules are shared, not copied) that runs
the same `kfp.dsl.executor_main` with the same arguments, environment and working directory, its stdout/stderr going
to a pipe that the runner reads exactly as kfp.local reads its subprocess.

Why a separate server rather than forking the runner itself: the runner has kfp.local's thread pool running, and a
fork of a multi-threaded process can inherit held locks. The server is single-threaded Python; the native threads
of the libraries it imports (OpenBLAS, jemalloc) have fork handlers of their own, as for PyTorch's DataLoader
workers, which fork the same way. It starts no work of torch's, so each fork starts its OpenMP pool afresh.

Protocol (one Unix socket connection a step): the runner sends an 8-byte length and, with it, the write end of its
pipe (SCM_RIGHTS), then a JSON request {program, args, env, cwd}; the server forks, and the fork runs the step and
answers with its 4-byte exit code before it exits. No answer (the fork was killed) reads as a failure.
A command that is not the shape kfp 2.17 writes, or a server that has not started, runs as kfp.local runs it.

Two servers (pipelines/local.py): a light one, up in about a second, that imports kfp and the step cache only and has
every step's code fingerprint computed (xstilts.ops.stepcache.warm), so that a cached step is restored in a fork
without importing torch; and a heavy one (PRELOAD["heavy"]), started at the first step that is not cached: such a
step ends its light fork with PROBE_MISS_EXIT before computing anything (XSTILTS_STEP_PROBE=1) and runs again in a
heavy fork."""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

# What a step that computes would import anyway: kfp's executor, torch, transformers' encoder/decoder classes,
# onnxruntime, the ONNX exporter and its fusions, and the xstilts modules the components call. Not great-expectations
# (3 s, the validate step only, which runs once). The light server: kfp's executor and what every step imports
# before it knows whether it is cached.
LIGHT = ("kfp.dsl.executor_main", "xstilts.ops.stepcache", "xstilts.config", "xstilts.provenance",
         "xstilts.ops.artifact_store", "xstilts.ops.promotion", "xstilts.data.dvc", "xstilts.ops.preflight")
PRELOAD = {
    "light": LIGHT,
    "heavy": LIGHT + ("torch", "xstilts.train.finetune", "xstilts.train.distributed"),
}
# What a server imports after its first fork, while that step runs: the light steps' libraries (scipy, matplotlib,
# pandas), so that the gathers, the gate and the report do not each import them in their fork; the exporter,
# onnxruntime and evaluation, which only come after the trainings. Seconds that would otherwise delay the first step.
LATER = {
    "light": ("xstilts.evaluate.summary", "xstilts.evaluate.report", "xstilts.data.validate"),
    "heavy": ("onnxruntime", "torch.onnx._internal.exporter._core", "onnxscript.rewriter.ort_fusions",
              "xstilts.export.encoder", "xstilts.export.common:warm_exporter", "xstilts.evaluate.zero_shot",
              "xstilts.evaluate.report", "xstilts.ops.lineage"),
}
# The steps' library functions, as the components (and the library, for a cached part of a step) name them
# (`lazy("module:function")`): the light server computes their code fingerprints once, before it forks.
ROOT = Path(__file__).resolve().parent.parent
LAZY_SOURCES = ("components/*.py", "xstilts/**/*.py")
LAZY_REFERENCE = re.compile(r'lazy\("([\w.]+:[\w.]+)"(?:, light=True)?\)')
TRANSFORMERS_CLASSES = ("XLMRobertaModel", "XLMRobertaConfig", "PreTrainedTokenizerFast", "AutoTokenizer",
                        "LlamaForCausalLM", "LlamaConfig")
# The script kfp 2.17 puts before a lightweight component's code (`$0`) and its arguments (`$@`).
KFP_SCRIPT = re.compile(r'program_path=\$\(mktemp -d\)\s+printf "%s" "\$0" > "\$program_path/ephemeral_component\.py"'
                        r'\s+_KFP_RUNTIME=true (?P<python>\S+) -m kfp\.dsl\.executor_main\s+--component_module_path'
                        r'\s+"\$program_path/ephemeral_component\.py"\s+"\$@"\s*')
HEADER = struct.Struct("!Q")
EXIT_CODE = struct.Struct("!i")


def parse_command(full_command: list[str]) -> tuple[str, list[str]] | None:
    """(component source, executor arguments) of a kfp.local step command, or None if it is not one we know."""
    if len(full_command) < 4 or full_command[0] != "sh" or full_command[1] not in ("-c", "-ec"):
        return None
    if not KFP_SCRIPT.fullmatch(full_command[2]):
        return None
    return full_command[3], full_command[4:]


class ForkServer:
    """The runner's side: start the server, run steps through it, stop it."""

    def __init__(self, kind: str = "heavy"):
        if kind not in PRELOAD:
            raise ValueError(f"fork server kind must be one of {sorted(PRELOAD)}, not {kind!r}")
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"xstilts-forkserver-{kind}-")
        self.path = os.path.join(self.dir, "socket")
        # The server inherits this process's environment (OMP_NUM_THREADS is read when torch loads). Its own output
        # (import warnings) is not a step's and goes to /dev/null; "ready" comes on stdout.
        self.process = subprocess.Popen([sys.executable, "-m", "pipelines.forkserver", self.path, kind],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        cwd=Path(__file__).resolve().parent.parent)
        self._ready: bool | None = None
        self._lock = threading.Lock()  # kfp.local asks from several threads

    def ready(self, wait: bool = False) -> bool:
        """Whether the server is up. Non-blocking unless `wait` (until it is up or has failed): steps started while
        it imports run as plain subprocesses."""
        with self._lock:
            if self._ready is None and (wait or os.path.exists(self.path)):  # bound: "ready" follows at once
                self._ready = any(line.strip() == "ready" for line in iter(self.process.stdout.readline, ""))
            if self._ready is None and self.process.poll() is not None:
                self._ready = False
                print(f"[forkserver] did not start (exit {self.process.returncode}): every step runs as a fresh "
                      f"process (run `python -m pipelines.forkserver /tmp/s` to see why)", flush=True)
            return bool(self._ready) and self.process.poll() is None

    def run(self, program: str, args: list[str], env: dict[str, str], echo) -> int | None:
        """Run one step in a fork; its output lines go to `echo` as they come. Returns its exit code, or None if the
        server could not take the step (gone since `ready`): nothing of it ran."""
        read_end, write_end = os.pipe()
        request = json.dumps({"program": program, "args": args, "env": env, "cwd": os.getcwd()}).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            try:
                conn.connect(self.path)
                socket.send_fds(conn, [HEADER.pack(len(request))], [write_end])
                conn.sendall(request)
            except OSError:
                os.close(read_end)
                return None
            finally:
                os.close(write_end)
            with open(read_end, encoding="utf-8", errors="replace") as output:
                for line in output:
                    echo(line)
            answer = _receive(conn, EXIT_CODE.size)
        if len(answer) < EXIT_CODE.size:
            echo("[forkserver] the step's process ended without an exit code (killed?)\n")
            return 1
        return EXIT_CODE.unpack(answer)[0]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _receive(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def step_functions() -> list[str]:
    """The `lazy("module:function")` references in the components and the library."""
    return sorted({ref for pattern in LAZY_SOURCES for file in ROOT.glob(pattern)
                   for ref in LAZY_REFERENCE.findall(file.read_text(encoding="utf-8"))})


def _preload(kind: str) -> None:
    import importlib

    for name in PRELOAD[kind]:
        importlib.import_module(name)
    from xstilts.ops.stepcache import lazy, warm

    warm([lazy(reference) for reference in step_functions()])
    if kind == "heavy":
        import transformers

        for name in TRANSFORMERS_CLASSES:  # transformers imports lazily: touch what the steps use
            getattr(transformers, name)


def _run_step(conn: socket.socket) -> None:
    """In the fork: receive the request, become the step (stdout/stderr, environment, cwd, argv), run
    kfp.dsl.executor_main, answer the exit code, exit without returning into the server's loop."""
    code = 1
    try:
        header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 1)
        (length,) = HEADER.unpack(header + _receive(conn, HEADER.size - len(header)))
        request = json.loads(_receive(conn, length))
        os.dup2(fds[0], 1)
        os.dup2(fds[0], 2)
        os.close(fds[0])
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)
        os.environ.clear()
        os.environ.update(request["env"], _KFP_RUNTIME="true")
        os.chdir(request["cwd"])
        if "torch" in sys.modules and os.environ.get("OMP_NUM_THREADS", "").isdigit():  # as a fresh process reads it
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        program_dir = tempfile.mkdtemp()
        Path(program_dir, "ephemeral_component.py").write_text(request["program"], encoding="utf-8")
        sys.argv = ["executor_main", "--component_module_path", f"{program_dir}/ephemeral_component.py",
                    *request["args"]]
        from kfp.dsl.executor_main import executor_main

        try:
            executor_main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
        except BaseException:  # as an uncaught exception in `python -m`: traceback, exit code 1
            traceback.print_exc()
            code = 1
        _skip_exit_chores()
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(EXIT_CODE.pack(code))
        finally:
            os._exit(code)


def serve(path: str, kind: str = "heavy") -> None:
    """The server: preload, listen, fork a step per connection; exit when the runner that started it is gone."""
    import signal

    _preload(kind)
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forks are reaped by the kernel; their exit code goes by socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(64)
        server.settimeout(1.0)
        print("ready", flush=True)
        later = LATER[kind]
        while os.getppid() == parent:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            conn.settimeout(None)
            if os.fork() == 0:
                server.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the step may wait for subprocesses of its own
                _run_step(conn)
            conn.close()
            if later:
                _import_quietly(later)
                later = ()


def _import_quietly(names: tuple[str, ...]) -> None:
    """Import what steps would import anyway (a "module:function" is also called: a warm-up whose caches the forks
    inherit); a module that fails here fails in the step that needs it instead."""
    import importlib

    for name in names:
        module, _, function = name.partition(":")
        try:
            imported = importlib.import_module(module)
            if function:
                getattr(imported, function)()
        except Exception:  # noqa: BLE001 - the step reports it
            pass


def _skip_exit_chores() -> None:
    """Drop exit handlers that only cost a step's fork time: torch._dynamo's compile-time table (it imports
    tabulate to log nothing) and unregistering every torch.library registration, which the process's exit
    discards anyway. Other handlers (temporary folders, logging) still run."""
    import atexit
    import weakref

    dynamo_utils = sys.modules.get("torch._dynamo.utils")
    if dynamo_utils is not None and hasattr(dynamo_utils, "dump_compile_times"):
        atexit.unregister(dynamo_utils.dump_compile_times)
    for finalizer, info in list(weakref.finalize._registry.items()):  # noqa: SLF001 - the pending finalizers
        if getattr(info.func, "__name__", "") == "_del_library":
            finalizer.atexit = False


if __name__ == "__main__":
    serve(sys.argv[1], *sys.argv[2:3])
