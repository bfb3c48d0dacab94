"""Batched compilation: many programs of one language compiled by one sandboxed compiler process, each still run
in a sandbox of its own.

A compiler's start-up (a JVM and javac, node and tsc, the go command and an empty build cache) costs more than
compiling one small program, so the programs of a language are compiled in batches: each program written to a
folder of its own in the batch's work dir, then one sandboxed command (Language.batch) compiles every folder in
turn, with exactly the arguments and working directory the program's own compile would have, and records each
program's exit status and output (RESULTS/DIR.exit, .out, .err). Compilers do not run the program's code (no
annotation processors, no cgo or go generate; type checking runs nothing), so programs share a compile but never a
run: each compiled folder becomes a work dir of its own and runs alone in its sandbox, as before.

Results stay those of one compiler per program: a program the batch did not record (its compile threw, crashed the
batch, overran the per-program timeout or the batch's own), is compiled again on its own, and an error in one
program is only that program's compile error.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.codeexec.languages import Language, Toolchain, write_program
from xstilts.codeexec.sandbox import WORKDIR, RunResult, Sandbox, read_capped, with_wall

MAX_BATCH = 16  # programs per compiler process at most (more only saves another start-up per 16 programs)
RESULTS = "results"


@dataclass
class Compiled:
    """A program compiled in a batch, now in a work dir of its own; `built` is its compiler's outcome alone."""
    workdir: Path
    built: RunResult


def batch_size(programs: int, workers: int) -> int:
    """Programs per batch: enough batches to keep every worker busy, at most MAX_BATCH programs each."""
    return max(1, min(MAX_BATCH, -(-programs // max(1, workers))))


def batch_wall_s(compile_timeout_s: float, programs: int) -> float:
    """The whole batch's wall-clock limit. Each program has compile_timeout_s of its own inside; a batch that runs
    out only costs time: its unrecorded programs compile again one by one."""
    return compile_timeout_s * (1 + programs / 4)


def _exit_status(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found = re.fullmatch(r"(\d{1,3})\n", text)  # written whole, with its newline, only once the compile ended
    return int(found.group(1)) if found else None


def _adopt(root: Path, uid: int | None) -> None:
    if uid is None:
        return
    for folder, dirs, files in os.walk(root):
        os.lchown(folder, uid, uid)
        for name in (*dirs, *files):
            os.lchown(os.path.join(folder, name), uid, uid)


def adopt(workdir: Path, sandbox: Sandbox, slot: int) -> None:
    """Hand a compiled program's work dir to the slot that runs it (its uid, when slots have their own)."""
    _adopt(workdir, sandbox.uid(slot))


def compile_batch(language: Language, toolchain: Toolchain, programs: Sequence[tuple[Mapping, str]],
                  sandbox: Sandbox, scratch: Path, slot: int, compile_timeout_s: float) -> list[Compiled | None]:
    """Compile `programs` (problem, completion) of `language` in one sandboxed command; per program, its own work
    dir and compiler outcome, or None where the batch has no outcome for it (compile that one on its own)."""
    argv_for = language.batch
    root = sandbox.make_workdir(scratch, slot)
    try:
        dirs = [f"p{i}" for i in range(len(programs))]
        for name in (RESULTS, *dirs):
            (root / name).mkdir(mode=0o700)
        _adopt(root, sandbox.uid(slot))
        for name, (problem, completion) in zip(dirs, programs):
            write_program(language, toolchain, problem, completion, sandbox, root / name, slot)
        argv = argv_for(toolchain, [f"{WORKDIR}/{RESULTS}", f"{compile_timeout_s:g}", str(len(dirs)), *dirs, "--"]) \
            if argv_for is not None else None
        if argv is None:
            return [None] * len(programs)
        built = sandbox.run(argv, root, slot=slot, writable=True, env=language.env(toolchain),
                            limits=with_wall(language.compile_limits, batch_wall_s(compile_timeout_s, len(dirs))),
                            extra_binds=toolchain.extra_binds)
        share = built.duration_s / len(dirs)
        compiled: list[Compiled | None] = []
        for name in dirs:
            status = _exit_status(root / RESULTS / f"{name}.exit")
            if status is None:
                compiled.append(None)
                continue
            try:
                stdout, _ = read_capped(root / RESULTS / f"{name}.out")
                stderr, _ = read_capped(root / RESULTS / f"{name}.err")
            except OSError:
                compiled.append(None)
                continue
            workdir = scratch / f"{root.name}-{name}"
            os.rename(root / name, workdir)
            compiled.append(Compiled(workdir, RunResult(status, False, share, stdout, stderr)))
        return compiled
    finally:
        shutil.rmtree(root, ignore_errors=True)
