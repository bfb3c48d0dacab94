"""How each programming language turns a problem and a completion into a program, compiles and runs it.

Programs are assembled as MBXP (amazon-science/mxeval) and HumanEval do: Python is prompt + completion + test +
`check(entry_point)`; the other languages are prompt + completion + test, where the test holds the `main`. Go follows
the problem's test: a test with `func main` is built and run as a program (mxeval's MBXP files), a test with
`func TestXxx(t *testing.T)` (MultiPL-E, HumanEval-X) runs as `go test` on a `main_test.go` in a module folder. A
program passes when it exits 0. Toolchains are found when a language is first used; a missing one is an error naming
the language and the executable.

TypeScript is compiled with the lib and target of the node that runs it (`node --version` at toolchain discovery) and
type-checked as `typescript_mode` says: `strict` (the default) makes type errors compile errors; `mxeval-compatible`
runs the JavaScript tsc emitted despite type errors, as mxeval does (it runs the program only when tsc exits 2,
"errors, output generated"). Non-relative imports (lodash, mathjs, heap-js) resolve in the node_modules beside tsc:
NODE_PATH for node, --baseUrl for tsc.

Compiled languages also compile in batches (batch.py): Java and TypeScript through a driver (drivers/) that runs
javac or tsc on each program's folder in turn, with that program's arguments, in one JVM or node process; Go as one
sandboxed loop of `go build`s sharing a build cache. `batch` gives the batch's command; `prepare` builds the drivers
once per evaluation, like C++'s precompiled header.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from signal import SIGABRT, SIGXCPU
from typing import Callable, Mapping
from xstilts.config import TYPESCRIPT_MODES
from xstilts.env import tool_override, tool_variable
from xstilts.errors import XstiltsError
from xstilts.codeexec.sandbox import SANDBOX_PATH, SYSTEM_DIRS, Limits, RunResult, Sandbox, with_wall


REPO_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node" / "node_modules"  # `make toolchains`
# toolchain_error: the language's toolchain failed its self-test (selftest.py), so its samples were not run.
STATUSES = ("passed", "failed", "timeout", "memory", "compile_error", "killed", "toolchain_error")
# Out-of-memory as each runtime reports it under RLIMIT_DATA (CPython, V8, the JVM, libstdc++, the Go runtime, libc).
MEMORY_MARKERS = ("MemoryError", "heap out of memory", "Fatal process out of memory", "OutOfMemoryError",
                  "std::bad_alloc", "runtime: out of memory", "Cannot allocate memory")
STDERR_KEEP = 2000  # characters of stderr kept per result


class ToolchainMissingError(XstiltsError):
    pass


class ToolchainUnavailableError(XstiltsError):
    """A toolchain that is installed but failed its self-test (selftest.py)."""


class UnknownTypescriptModeError(XstiltsError):
    pass


class UnknownLanguageError(XstiltsError):
    pass


@dataclass(frozen=True)
class Toolchain:
    paths: Mapping[str, str]  # executable name → absolute path
    node_modules: str = ""  # where tsc's @types and JavaScript test helpers (lodash) live
    extra_binds: tuple[str, ...] = ()  # directories outside the system dirs the sandbox must see
    compile_flags: tuple[str, ...] = ()  # from `prepare`, e.g. the precompiled-header directory
    es_version: str = ""  # node's ECMAScript level (tsc's --lib and --target), from `node --version`
    node_version: str = ""
    typescript_mode: str = "strict"  # TYPESCRIPT_MODES
    batch_driver: tuple[str, ...] = ()  # from `prepare`: the batch compiler's files (Java, TypeScript), if built


@dataclass(frozen=True)
class Language:
    name: str
    source: str  # file name of the program
    tools: tuple[str, ...]  # executables, found on PATH (or XSTILTS_<NAME>) at run time
    run: Callable[[Toolchain, Limits], list[str]]
    compile: Callable[[Toolchain], list[str]] | None = None
    # Once per evaluation, before any program: e.g. C++'s precompiled <bits/stdc++.h>.
    prepare: Callable[[Toolchain, Sandbox, Path, int], Toolchain] | None = None  # (…, scratch, slot)
    env: Callable[[Toolchain], dict[str, str]] = lambda tc: {}
    python_harness: bool = False  # append check(entry_point), as HumanEval/MBPP tests only define check()
    run_memory_extra_mb: int = 0  # runtimes whose own heap limit sits inside RLIMIT_DATA (JVM, V8) need headroom
    # Address space the runtime reserves beyond its data (code, thread stacks, V8's and the JVM's reservations,
    # Go's arenas): RLIMIT_AS is the data limit plus this, so shared mappings stay bounded too (measured: a hello
    # world fails below about 1 GB for node, Go and the JVM with the flags below, and 256 MB for Python and C++).
    address_space_extra_mb: int = 768
    compile_limits: Limits = field(default_factory=lambda: Limits(memory_mb=2048, nproc=256, tmp_mb=256,
                                                                  file_mb=256))
    files: Callable[[Toolchain], dict[str, str]] = lambda tc: {}  # written beside the program, e.g. Go's go.mod
    # The convention a problem's test follows, when a language has more than one (Go: `func main` or `go test`).
    variant: Callable[[Mapping], Language | None] | None = None
    reports_on_stdout: bool = False  # test runners that print failures on stdout (go test): keep it with stderr
    # Whether a compile that exited non-zero still produced a runnable program (typescript_mode mxeval-compatible).
    compiled_despite_errors: Callable[[Toolchain, Path], bool] = lambda tc, workdir: False
    # The command that compiles a batch of programs, each in its own folder, as `compile` would one by one:
    # (toolchain, batch.py's arguments: RESULTS TIMEOUT_S N DIR... --) → argv, or None where it cannot (no driver).
    batch: Callable[[Toolchain, list[str]], list[str] | None] | None = None

    def for_problem(self, problem: Mapping) -> Language:
        return (self.variant(problem) if self.variant is not None else None) or self

    def assemble(self, problem: Mapping, completion: str) -> str:
        program = problem["prompt"] + completion + "\n" + problem["test"] + "\n"
        if self.python_harness:
            program += f"check({problem['entry_point']})\n"
        return program


def _node_env(tc: Toolchain) -> dict[str, str]:
    return {"NODE_PATH": tc.node_modules} if tc.node_modules else {}


# Node's major version → the ECMAScript level its V8 implements fully (tsc's --lib and --target): node 16 has ES2021
# (String.prototype.replaceAll), 18 and later ES2022 (Array.prototype.at, Object.hasOwn, class fields).
NODE_ES_VERSIONS = ((18, "es2022"), (16, "es2021"), (14, "es2020"), (12, "es2019"))


@functools.lru_cache(maxsize=None)
def node_version(node: str) -> str:
    """`node --version` (`v20.19.2`), or empty if it does not answer."""
    try:
        text = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60,
                              env={"PATH": SANDBOX_PATH}).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return text if re.fullmatch(r"v\d+\.\d+\.\d+\S*", text) else ""


def es_version(version: str) -> str:
    """The ECMAScript level for tsc's --lib/--target that node `version` (`v20.19.2`) runs."""
    found = re.match(r"v(\d+)\.", version)
    major = int(found.group(1)) if found else 0
    return next((es for least, es in NODE_ES_VERSIONS if major >= least), "es2018")


def _tsc(tc: Toolchain) -> list[str]:
    es = tc.es_version or "es2020"
    return [tc.paths["tsc"], "--target", es, "--module", "commonjs", "--lib", es, "--types", "node",
            "--typeRoots", f"{tc.node_modules}/@types", *(["--baseUrl", tc.node_modules] if tc.node_modules else []),
            "--skipLibCheck", "--pretty", "false",
            "--noEmitOnError", "true" if tc.typescript_mode == "strict" else "false", "main.ts"]


def _ts_emitted(tc: Toolchain, workdir: Path) -> bool:
    # mxeval-compatible: tsc exits 2 ("diagnostics present, output generated") on type errors; run what it emitted.
    return tc.typescript_mode == "mxeval-compatible" and (workdir / "main.js").is_file()


DRIVERS = Path(__file__).resolve().parent / "drivers"  # the batch compilers (batch.py)


def _driver_root(sandbox: Sandbox, scratch: Path, slot: int, files: Mapping[str, str]) -> Path:
    """A folder for one evaluation's prepared files, written by `slot`'s uid, later bound read-only for every slot."""
    root = sandbox.make_workdir(scratch, slot)
    os.chmod(root, 0o755)
    for name, text in files.items():
        sandbox.write_file(root, name, text, slot)
    return root


def _share(root: Path) -> None:
    """Make what a prepare step built readable by every slot's uid (it is bound read-only)."""
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def _install_tsc_driver(toolchain: Toolchain, sandbox: Sandbox, scratch: Path, slot: int) -> Toolchain:
    """drivers/batch_tsc.js, beside the TypeScript compiler API of this tsc (typescript/lib/typescript.js)."""
    api = Path(os.path.realpath(toolchain.paths["tsc"])).parents[1] / "lib" / "typescript.js"
    if not api.is_file():  # not an npm typescript package: no batches, one tsc per program
        return toolchain
    root = _driver_root(sandbox, scratch, slot, {"batch_tsc.js": (DRIVERS / "batch_tsc.js").read_text("utf-8")})
    _share(root)
    return replace(toolchain, extra_binds=(*toolchain.extra_binds, str(root)),
                   batch_driver=(str(root / "batch_tsc.js"), str(api)))


def _tsc_batch(tc: Toolchain, protocol: list[str]) -> list[str] | None:
    if not tc.batch_driver:
        return None
    driver, api = tc.batch_driver
    # A heap cap below the compile's RLIMIT_DATA, so that V8 collects the garbage of earlier programs in time.
    return [tc.paths["node"], "--max-old-space-size=1536", driver, api, *protocol, *_tsc(tc)[1:]]


# A batch of compiles in one sandbox: each program's own compile command in its folder, in turn, under a timeout of its
# own (`timeout` kills its process group), sharing the batch's private /tmp (Go's build cache: the standard library
# is compiled once per batch, not once per program).
LOOP_BATCH = r"""
results=$1 limit=$2 count=$3
shift 3
dirs=
while [ "$count" -gt 0 ]; do dirs="$dirs $1"; shift; count=$((count - 1)); done
[ "$1" = -- ] || exit 2
shift
command -v timeout >/dev/null || exit 3
for dir in $dirs; do
    (cd "$dir" && exec timeout -s KILL "$limit" "$@") >"$results/$dir.out" 2>"$results/$dir.err"
    status=$?
    if [ "$status" -lt 124 ]; then echo "$status" >"$results/$dir.exit"; fi
done
"""


def _loop_batch(compile: Callable[[Toolchain], list[str]]) -> Callable[[Toolchain, list[str]], list[str]]:
    return lambda tc, protocol: ["/bin/sh", "-c", LOOP_BATCH, "sh", *protocol, *compile(tc)]


def _go_env(tc: Toolchain) -> dict[str, str]:
    # No cgo (no C toolchain in the loop), no module downloads or toolchain switches (standard library only), build
    # cache and GOPATH on the private /tmp. GO111MODULE=auto: a `func main` program builds as a file, a `go test`
    # folder (with its go.mod) as a module.
    return {"GOCACHE": "/tmp/go-cache", "GOPATH": "/tmp/go", "CGO_ENABLED": "0", "GOPROXY": "off", "GOSUMDB": "off",
            "GOTOOLCHAIN": "local", "GOWORK": "off", "GO111MODULE": "auto", "GOTELEMETRY": "off"}


@functools.lru_cache(maxsize=None)
def _go_version(go: str) -> str:
    """The toolchain's language version (`1.19`) for go.mod's `go` line, which sets the language the module is
    compiled as (none means 1.16: no generics): GOROOT/VERSION, else `go version`; empty if neither tells."""
    text = ""
    try:
        text = (Path(os.path.realpath(go)).parents[1] / "VERSION").read_text(encoding="utf-8")
    except (OSError, IndexError):
        pass
    if not re.match(r"go\d+\.\d+", text):
        try:
            text = subprocess.run([go, "version"], capture_output=True, text=True, timeout=60,
                                  env={"PATH": SANDBOX_PATH, "GOTOOLCHAIN": "local", "GOTELEMETRY": "off"}).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
    found = re.search(r"\bgo(\d+\.\d+)", text)
    return found.group(1) if found else ""


def _go_mod(tc: Toolchain) -> str:
    version = _go_version(tc.paths["go"])
    return "module xstilts/sandbox\n" + (f"\ngo {version}\n" if version else "")


# A `go test` test function, as MultiPL-E's and HumanEval-X's Go tests are: `func TestXxx(t *testing.T)`.
GO_TEST_FUNCTION = re.compile(r"^\s*func\s+Test\w*\s*\(\s*\w+\s+\*\s*testing\.T\s*\)", re.MULTILINE)

def _go_test_compile(tc: Toolchain) -> list[str]:
    return [tc.paths["go"], "test", "-c", "-o", "main.test"]


# `go test`, in two sandboxed steps as the compiled languages: `go test -c` builds the test binary (and runs go test's
# `go vet` checks, as `go test` does), the binary runs the tests; -test.paniconexit0 as go test passes it, so a
# completion's os.Exit(0) fails. Failures are printed on stdout.
GO_TEST = Language("go", "main_test.go", ("go",), env=_go_env, files=lambda tc: {"go.mod": _go_mod(tc)},
                   compile=_go_test_compile, batch=_loop_batch(_go_test_compile),
                   run=lambda tc, lim: ["./main.test", "-test.paniconexit0"], reports_on_stdout=True)


def _go_convention(problem: Mapping) -> Language | None:
    return GO_TEST if GO_TEST_FUNCTION.search(problem["test"]) else None


CPP_FLAGS = ["-std=gnu++17", "-O0"]


def _precompile_cpp_header(toolchain: Toolchain, sandbox: Sandbox, scratch: Path, slot: int) -> Toolchain:
    """Precompile <bits/stdc++.h> (MBXP's C++ include; about 2 s of every compile) into a read-only directory that
    every compile searches first: g++ uses `<dir>/bits/stdc++.h.gch` when a program includes it first with the same
    flags, and ignores it otherwise. A failed build only costs the speed-up."""
    root = sandbox.make_workdir(scratch, slot)
    os.chmod(root, 0o755)  # every slot's uid reads it (bound read-only)
    sandbox.write_file(root, "stdcxx.h", "#include <bits/stdc++.h>\n", slot)
    os.makedirs(root / "bits", exist_ok=True)
    uid = sandbox.uid(slot)
    if uid is not None:
        os.chown(root / "bits", uid, uid)
    built = sandbox.run([toolchain.paths["g++"], *CPP_FLAGS, "-x", "c++-header", "stdcxx.h", "-o",
                         "bits/stdc++.h.gch"], root, slot=slot, limits=Limits(wall_s=120, cpu_s=120, memory_mb=2048,
                                                                    file_mb=1024, nproc=64, tmp_mb=64))
    if built.exit_code != 0:
        return toolchain
    return replace(toolchain, extra_binds=(*toolchain.extra_binds, str(root)), compile_flags=("-I", str(root)))


JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-XX:-UsePerfData"]
# The JVM reserves 1 GB of compressed class space and 240 MB of code cache up front: small programs need far less,
# and RLIMIT_AS must not be spent on reservations.
JVM_RUN_FLAGS = [*JVM_FLAGS, "-XX:CompressedClassSpaceSize=64m", "-XX:ReservedCodeCacheSize=64m"]
JAVAC_JVM_FLAGS = [*JVM_FLAGS, "-Xmx512m"]  # javac's own JVM (its -J flags)


def _javac(tc: Toolchain) -> list[str]:
    return [tc.paths["javac"], *(f"-J{flag}" for flag in JAVAC_JVM_FLAGS), "-encoding", "UTF-8", "-nowarn",
            "Main.java"]


def _build_javac_driver(toolchain: Toolchain, sandbox: Sandbox, scratch: Path, slot: int) -> Toolchain:
    """drivers/BatchJavac.java, compiled once per evaluation. A failed build only costs the speed-up."""
    root = _driver_root(sandbox, scratch, slot, {"BatchJavac.java": (DRIVERS / "BatchJavac.java").read_text("utf-8")})
    built = sandbox.run([toolchain.paths["javac"], *(f"-J{flag}" for flag in JAVAC_JVM_FLAGS), "-encoding", "UTF-8",
                         "BatchJavac.java"], root, slot=slot, extra_binds=toolchain.extra_binds,
                        limits=with_wall(Limits(memory_mb=2048, nproc=256, tmp_mb=64, file_mb=16), 120))
    if built.exit_code != 0 or not (root / "BatchJavac.class").is_file():
        return toolchain
    _share(root)
    return replace(toolchain, extra_binds=(*toolchain.extra_binds, str(root)), batch_driver=(str(root),))


def _javac_batch(tc: Toolchain, protocol: list[str]) -> list[str] | None:
    if not tc.batch_driver:
        return None
    args = _javac(tc)[1:]
    return [tc.paths["java"], *(a[2:] for a in args if a.startswith("-J")), "-cp", tc.batch_driver[0], "BatchJavac",
            *protocol, *(a for a in args if not a.startswith("-J"))]


def _go_build(tc: Toolchain) -> list[str]:
    return [tc.paths["go"], "build", "-o", "main", "main.go"]


LANGUAGES: dict[str, Language] = {lang.name: lang for lang in (
    Language("python", "main.py", ("python3",), python_harness=True, address_space_extra_mb=256,
             run=lambda tc, lim: [tc.paths["python3"], "-I", "-B", "main.py"]),
    Language("javascript", "main.js", ("node",), env=_node_env, run_memory_extra_mb=512,
             run=lambda tc, lim: [tc.paths["node"], f"--max-old-space-size={lim.memory_mb}", "main.js"]),
    Language("typescript", "main.ts", ("node", "tsc"), env=_node_env, run_memory_extra_mb=512, compile=_tsc,
             compiled_despite_errors=_ts_emitted, prepare=_install_tsc_driver, batch=_tsc_batch,
             run=lambda tc, lim: [tc.paths["node"], f"--max-old-space-size={lim.memory_mb}", "main.js"]),
    Language("java", "Main.java", ("javac", "java"), run_memory_extra_mb=512, compile=_javac,
             prepare=_build_javac_driver, batch=_javac_batch,
             run=lambda tc, lim: [tc.paths["java"], *JVM_RUN_FLAGS, f"-Xmx{lim.memory_mb}m", "-ea", "-cp", ".", "Main"]),
    Language("cpp", "main.cpp", ("g++",), prepare=_precompile_cpp_header, address_space_extra_mb=256,
             compile=lambda tc: [tc.paths["g++"], *CPP_FLAGS, *tc.compile_flags, "-o", "main", "main.cpp"],
             run=lambda tc, lim: ["./main"]),
    Language("go", "main.go", ("go",), env=_go_env, variant=_go_convention, compile=_go_build,
             batch=_loop_batch(_go_build),
             run=lambda tc, lim: ["./main"]),
)}


def get_language(name: str) -> Language:
    try:
        return LANGUAGES[name]
    except KeyError:
        raise UnknownLanguageError(f"unknown language {name!r}; known: {', '.join(LANGUAGES)}") from None


def _find_tool(name: str) -> str | None:
    override = tool_override(name)
    if override:
        return override if os.access(override, os.X_OK) else None
    # The sandbox sees the system dirs only, so look there (not in the evaluator's PATH, e.g. a venv or pyenv).
    return shutil.which(name, path=SANDBOX_PATH) or (shutil.which(name, path=str(REPO_TOOLS / ".bin"))
                                                    if name == "tsc" else None)


def _outside_system_dirs(path: str) -> bool:
    return not any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS)


def check_typescript_mode(mode: str) -> str:
    if mode not in TYPESCRIPT_MODES:
        raise UnknownTypescriptModeError(f"unknown typescript_mode {mode!r}; known: {', '.join(TYPESCRIPT_MODES)}")
    return mode


def find_toolchain(language: Language, *, typescript_mode: str = "strict") -> Toolchain:
    """Every executable `language` needs, or ToolchainMissingError naming the language and the executable."""
    check_typescript_mode(typescript_mode)
    paths: dict[str, str] = {}
    binds: set[str] = set()
    for tool in language.tools:
        path = _find_tool(tool)
        if path is None:
            var = tool_variable(tool)
            raise ToolchainMissingError(
                f"{language.name}: toolchain executable `{tool}` not found (searched {SANDBOX_PATH}"
                + (f" and {REPO_TOOLS / '.bin'}" if tool == "tsc" else "") + f", or set {var}); `make toolchains` "
                "installs the missing ones")
        real = os.path.realpath(path)
        if _outside_system_dirs(real):  # e.g. a JDK under /home or tsc under .tools: the sandbox must see it
            binds.add(str(Path(real).parent.parent))
        # A link outside the system dirs (e.g. through a symlinked .tools) is not in the sandbox: run its target.
        paths[tool] = real if _outside_system_dirs(path) else path
    node_modules = ""
    if "node" in language.tools:
        tsc = _find_tool("tsc")
        if tsc:  # tsc lives at <node_modules>/typescript/bin/tsc; @types/node and lodash sit beside it
            node_modules = str(Path(os.path.realpath(tsc)).parents[2])
            if _outside_system_dirs(node_modules):
                binds.add(node_modules)
    outermost = {b for b in binds if not any(b != o and b.startswith(o + "/") for o in binds)}
    version = node_version(paths["node"]) if "node" in paths else ""
    return Toolchain(paths, node_modules, tuple(sorted(outermost)), es_version=es_version(version) if version else "",
                     node_version=version, typescript_mode=typescript_mode if language.name == "typescript" else "")


@dataclass
class Execution:
    status: str
    duration_s: float  # the program's wall time (0 when it did not compile)
    compile_s: float
    exit_code: int | None
    stderr: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _shorten(text: str) -> str:
    if len(text) <= STDERR_KEEP:
        return text
    half = STDERR_KEEP // 2
    return text[:half] + "\n…\n" + text[-half:]


def classify(result: RunResult) -> str:
    if result.timed_out or result.signal == SIGXCPU:  # the CPU-time limit
        return "timeout"
    if result.exit_code == 0:
        return "passed"
    if any(marker in result.stderr for marker in MEMORY_MARKERS):
        return "memory"
    # SIGABRT is how a failed C/C++ assert() or an uncaught exception ends: a failed test, not a kill.
    return "killed" if result.signal not in (None, SIGABRT) else "failed"


def write_program(language: Language, toolchain: Toolchain, problem: Mapping, completion: str, sandbox: Sandbox,
                  workdir: Path, slot: int) -> None:
    """The program's source and the files beside it (Go's go.mod), as its compiler and runtime expect them."""
    for name, text in language.files(toolchain).items():
        sandbox.write_file(workdir, name, text, slot)
    sandbox.write_file(workdir, language.source, language.assemble(problem, completion), slot)


def execute(problem: Mapping, completion: str, sandbox: Sandbox, toolchain: Toolchain, *, timeout_s: float = 10.0,
            compile_timeout_s: float = 60.0, memory_mb: int = 512, slot: int = 0,
            scratch: Path) -> Execution:
    """Assemble, compile (if the language compiles: one compiler process for this program) and run one program in
    the sandbox; classify the outcome."""
    language = get_language(problem["language"]).for_problem(problem)
    workdir = sandbox.make_workdir(scratch, slot)
    try:
        write_program(language, toolchain, problem, completion, sandbox, workdir, slot)
        built = None
        if language.compile is not None:
            built = sandbox.run(language.compile(toolchain), workdir, slot=slot, writable=True,
                                env=language.env(toolchain), limits=with_wall(language.compile_limits,
                                                                              compile_timeout_s),
                                extra_binds=toolchain.extra_binds)
        return run_built(language, toolchain, built, sandbox, workdir, timeout_s=timeout_s,
                         compile_timeout_s=compile_timeout_s, memory_mb=memory_mb, slot=slot)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_built(language: Language, toolchain: Toolchain, built: RunResult | None, sandbox: Sandbox, workdir: Path, *,
              timeout_s: float, compile_timeout_s: float, memory_mb: int, slot: int) -> Execution:
    """The outcome of a program whose compiler ran (`built`: its exit status and output; None for an interpreted
    language) in `workdir`: a compile error, or the program's run there, in the sandbox."""
    data_mb = memory_mb + language.run_memory_extra_mb
    run_limits = with_wall(Limits(memory_mb=data_mb, address_space_mb=data_mb + language.address_space_extra_mb),
                           timeout_s)
    # The runtime's own heap cap (-Xmx, --max-old-space-size) is the user's budget; RLIMIT_DATA adds headroom.
    runtime_limits = replace(run_limits, memory_mb=memory_mb)
    compile_s, ignored = 0.0, ""
    if built is not None:
        compile_s = built.duration_s
        if built.exit_code != 0 and (built.timed_out or not language.compiled_despite_errors(toolchain, workdir)):
            why = f"compilation timed out after {compile_timeout_s:g} s\n" if built.timed_out else ""
            return Execution("compile_error", 0.0, compile_s, built.exit_code,
                             _shorten(why + (built.stderr or built.stdout)))
        if built.exit_code != 0:  # errors the mode ignores (TypeScript mxeval-compatible): kept in the report
            ignored = f"compile errors ignored ({language.name} {toolchain.typescript_mode}):\n" + \
                _shorten(built.stderr or built.stdout) + "\n"
    # The program's directory is read-only while it runs: it writes only to its size-capped /tmp.
    ran = sandbox.run(language.run(toolchain, runtime_limits), workdir, slot=slot, writable=False,
                      env=language.env(toolchain), limits=run_limits, extra_binds=toolchain.extra_binds)
    report = ran.stdout + ran.stderr if language.reports_on_stdout else ran.stderr
    return Execution(classify(ran), ran.duration_s, compile_s, ran.exit_code, _shorten(ignored + report))
