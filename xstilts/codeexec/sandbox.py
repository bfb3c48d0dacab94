"""Run one untrusted program with limits and isolation.

Isolation comes from bubblewrap (`bwrap`): new user, PID, network, IPC, UTS and mount namespaces, a read-only view of
the system directories only (no /home, /root, /work, /run, host /tmp), a private size-capped tmpfs /tmp, the program's
own work dir (read-only while a compiled program runs), a scrubbed environment and `--die-with-parent`. Limits come
from util-linux `prlimit` (CPU time, writable memory as RLIMIT_DATA, file size, process count, open files, no core
dumps), applied before bwrap so they bind everything inside. When the evaluator runs as root each concurrent slot runs
as its own unprivileged uid, so programs cannot touch the evaluator's files or each other.

Killing: the program's PID namespace dies with bwrap, and bwrap with its process group, so one killpg on timeout
ends the whole tree, including processes that double-forked or called setsid.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping, Sequence
from xstilts import env
from xstilts.env import sandbox_uid_base
from xstilts.errors import XstiltsError


# The system directories a sandboxed program sees (read-only); symlinks (merged /usr) are recreated as symlinks.
SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
WORKDIR = "/sandbox"  # where the program's own directory appears inside the sandbox
# Dedicated uids for sandbox slots when the evaluator is root: far above any distribution's user range.
UID_BASE = sandbox_uid_base()
BWRAP_MARK = "<info-fd>"  # replaced by `--info-fd N` once the pipe exists
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
OUTPUT_KEEP = 4096  # bytes of stdout/stderr kept in a result (head and tail)


class SandboxUnavailableError(XstiltsError):
    """Isolation cannot be had here (no bwrap, or the kernel refuses namespaces) and no override was given."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0  # wall clock; the whole tree is killed when it runs out
    cpu_s: int = 11  # RLIMIT_CPU, per process (SIGXCPU)
    memory_mb: int = 512  # RLIMIT_DATA: heap + private writable mappings (address-space reservations do not count)
    file_mb: int = 16  # RLIMIT_FSIZE: any one file written, stdout and stderr included (SIGXFSZ)
    nproc: int = 64  # RLIMIT_NPROC: processes and threads of the sandbox's uid
    nofile: int = 256  # RLIMIT_NOFILE
    tmp_mb: int = 64  # size of the private tmpfs /tmp (counted in the host's memory, so kept small)
    shm_mb: int = 16  # size of the private tmpfs /dev/shm (POSIX shared memory, shm_open): the same
    # RLIMIT_AS, 0 = none. RLIMIT_DATA does not count shared mappings (MAP_SHARED|MAP_ANONYMOUS, shm): the address
    # space does, so a program's run also gets memory_mb plus its runtime's own reservations (see Language).
    address_space_mb: int = 0

    def prlimit_argv(self, prlimit: str) -> list[str]:
        mb = 1 << 20
        address_space = [f"--as={self.address_space_mb * mb}"] if self.address_space_mb else []
        return [prlimit, f"--cpu={self.cpu_s}", f"--data={self.memory_mb * mb}", *address_space,
                f"--fsize={self.file_mb * mb}", f"--nproc={self.nproc}", f"--nofile={self.nofile}", "--core=0", "--"]


@dataclass
class RunResult:
    exit_code: int | None  # None when killed on the wall-clock timeout
    timed_out: bool
    duration_s: float
    stdout: str
    stderr: str
    output_truncated: bool = False

    @property
    def signal(self) -> int | None:
        """The signal that ended the program: bwrap reports a signalled child as 128 + signal, as a shell does."""
        if self.exit_code is not None and 128 < self.exit_code < 128 + 65:
            return self.exit_code - 128
        return None


@dataclass(frozen=True)
class Isolation:
    """What the sandbox provides here, recorded with every evaluation."""
    mode: str  # "bwrap" or "none" (only with allow_no_isolation)
    dedicated_uids: bool
    reason: str = ""  # why isolation is off, when it is

    def as_dict(self) -> dict:
        return {"mode": self.mode, "network": self.mode == "bwrap", "dedicated_uids": self.dedicated_uids,
                "reason": self.reason}


def _bwrap_probe(bwrap: str, prlimit: str, uid: int | None) -> str:
    """Empty string when a namespaced `true` runs here, else why not."""
    _become_subreaper()
    with tempfile.TemporaryDirectory(prefix="xstilts-probe-") as tmp, tempfile.TemporaryFile() as err:
        os.chmod(tmp, 0o755)
        argv = Limits().prlimit_argv(prlimit) + _bwrap_argv(bwrap, Path(tmp), writable=False, tmp_mb=1,
                                                            env={"PATH": SANDBOX_PATH}, extra_binds=()) + ["true"]
        try:
            code = _spawn(argv, cwd=Path(tmp), env={}, uid=uid, wall_s=30, stdout=subprocess.DEVNULL, stderr=err,
                          bwrap=True)
        except OSError as e:
            return str(e)
        err.seek(0)
        return "" if code == 0 else (err.read().decode(errors="replace").strip() or f"exit code {code}")


@functools.lru_cache(maxsize=None)
def detect_isolation() -> tuple[str, str, str]:
    """(bwrap path, prlimit path, failure reason or ""), probed once per process."""
    prlimit = shutil.which("prlimit", path=SANDBOX_PATH) or ""
    bwrap = shutil.which("bwrap", path=SANDBOX_PATH) or ""
    if not prlimit:
        return bwrap, prlimit, "`prlimit` (util-linux) not found"
    if not bwrap:
        return bwrap, prlimit, "`bwrap` (bubblewrap) not found: install it (`make toolchains`, apt `bubblewrap`)"
    reason = _bwrap_probe(bwrap, prlimit, UID_BASE if os.geteuid() == 0 else None)
    return bwrap, prlimit, (f"bwrap cannot create namespaces here: {reason}" if reason else "")


def _user_kwargs(uid: int | None) -> dict:
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _bwrap_argv(bwrap: str, workdir: Path, *, writable: bool, tmp_mb: int, env: Mapping[str, str],
                extra_binds: Sequence[str], shm_mb: int = 16) -> list[str]:
    argv = [bwrap, BWRAP_MARK, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--hostname", "sandbox", *_system_binds()]
    # /tmp and /dev/shm are tmpfs, i.e. host memory: both size-capped (bwrap's own /dev/shm would have no cap).
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb << 20), "--tmpfs", "/tmp",
             "--size", str(shm_mb << 20), "--tmpfs", "/dev/shm"]
    for path in extra_binds:  # e.g. tools under .tools/node; after the tmpfs, so that paths below /tmp work too
        argv += ["--ro-bind", path, path]
    argv += ["--bind" if writable else "--ro-bind", str(workdir), WORKDIR, "--chdir", WORKDIR, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv + ["--"]


def read_capped(path: Path) -> tuple[str, bool]:
    """The head and tail of an output file (the file itself is capped by RLIMIT_FSIZE)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= OUTPUT_KEEP:
            return f.read().decode("utf-8", "replace"), False
        head = f.read(OUTPUT_KEEP // 2)
        f.seek(size - OUTPUT_KEEP // 2)
        tail = f.read()
    return head.decode("utf-8", "replace") + f"\n…[{size - OUTPUT_KEEP} bytes cut]…\n" + \
        tail.decode("utf-8", "replace"), True


@dataclass
class Sandbox:
    """Runs commands in `workdir`s under `limits`. One program at a time per slot; slots differ in uid as root."""
    allow_no_isolation: bool = False
    isolation: Isolation = field(init=False)

    def __post_init__(self):
        self.bwrap, self.prlimit, reason = detect_isolation()
        if not self.prlimit:
            raise SandboxUnavailableError(f"sandbox: {reason}; it is needed for limits even without isolation")
        if reason and not self.allow_no_isolation:
            raise SandboxUnavailableError(
                f"sandbox: refusing to run untrusted code without isolation: {reason}. Pass --allow-no-isolation "
                "(allow_no_isolation=True) to run with resource limits only, e.g. inside a pod that is already "
                "isolated (no network, no credentials)")
        root = os.geteuid() == 0
        self.isolation = Isolation("none" if reason else "bwrap", dedicated_uids=root, reason=reason)

    def uid(self, slot: int) -> int | None:
        return UID_BASE + slot if self.isolation.dedicated_uids else None

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A temporary parent for work dirs, removed afterwards: slot uids may enter it but not list it."""
        path = Path(tempfile.mkdtemp(prefix="xstilts-sandbox-"))
        try:
            os.chmod(path, 0o711)
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def reserve_slots(self, count: int) -> Iterator[list[int]]:
        """`count` slot numbers that no other evaluation on this machine uses meanwhile: concurrent evaluations
        (e.g. two pipeline steps) must not share a uid, whose process count RLIMIT_NPROC limits as a whole."""
        if not self.isolation.dedicated_uids:
            yield list(range(count))
            return
        held: list[tuple[int, object]] = []
        try:
            slot = 0
            while len(held) < count:
                lock = open(Path(tempfile.gettempdir()) / f"xstilts-sandbox-uid-{UID_BASE + slot}.lock", "a")
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held.append((slot, lock))
                except BlockingIOError:
                    lock.close()
                slot += 1
            yield [slot for slot, _ in held]
        finally:
            for _, lock in held:
                lock.close()

    def make_workdir(self, parent: Path, slot: int) -> Path:
        """A fresh directory only this slot's uid can use."""
        path = Path(tempfile.mkdtemp(prefix=f"s{slot}-", dir=parent))
        uid = self.uid(slot)
        if uid is not None:
            os.chown(path, uid, uid)
        return path

    def write_file(self, workdir: Path, name: str, text: str, slot: int) -> None:
        path = workdir / name
        path.write_text(text, encoding="utf-8")
        uid = self.uid(slot)
        if uid is not None:
            os.chown(path, uid, uid)

    def run(self, argv: Sequence[str], workdir: Path, *, slot: int = 0, limits: Limits = Limits(),
            env: Mapping[str, str] | None = None, writable: bool = True, extra_binds: Sequence[str] = ()) -> RunResult:
        """Run `argv` with `workdir` as its working directory (seen as /sandbox inside the sandbox)."""
        full_env = {"PATH": SANDBOX_PATH, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                    **(env or {})}
        uid = self.uid(slot)
        if uid is None:
            # RLIMIT_NPROC counts every process of the real uid, the evaluator's own included: allow nproc more.
            limits = replace(limits, nproc=_processes_of(os.getuid()) + limits.nproc)
        bwrap = self.isolation.mode == "bwrap"
        if bwrap:
            command = limits.prlimit_argv(self.prlimit) + _bwrap_argv(
                self.bwrap, workdir, writable=writable, tmp_mb=limits.tmp_mb, env=full_env,
                extra_binds=extra_binds, shm_mb=limits.shm_mb) + list(argv)
            popen_env: dict = {}
        else:
            command = limits.prlimit_argv(self.prlimit) + list(argv)
            # No private /tmp or /sandbox without a mount namespace: both become the work dir.
            popen_env = {k: re.sub(rf"^({WORKDIR}|/tmp)(?=/|$)", str(workdir), v) for k, v in full_env.items()}
        with tempfile.TemporaryDirectory(prefix="xstilts-out-") as out_dir:
            out_path, err_path = Path(out_dir) / "stdout", Path(out_dir) / "stderr"
            with open(out_path, "wb") as out, open(err_path, "wb") as err, program_cgroup(limits) as cgroup:
                start = time.monotonic()
                exit_code = _spawn(command, cwd=workdir, env=popen_env, uid=uid, wall_s=limits.wall_s,
                                   stdout=out, stderr=err, bwrap=bwrap, cgroup=cgroup)
                duration = time.monotonic() - start
            stdout, cut_out = read_capped(out_path)
            stderr, cut_err = read_capped(err_path)
        timed_out = exit_code is None
        if exit_code is not None and exit_code < 0:  # prlimit itself signalled (only without bwrap)
            exit_code = 128 - exit_code
        return RunResult(exit_code, timed_out, duration, stdout, stderr, cut_out or cut_err)


_CGROUP_SERIAL = itertools.count()


def cgroup_root() -> Path | None:
    """A delegated cgroup v2 folder (XSTILTS_SANDBOX_CGROUP) where each program gets a memory cgroup of its own:
    memory.max then counts everything the program uses — shared memory, tmpfs pages, kernel memory of its files —
    which rlimits cannot. None (rlimits only) where unset; an unusable folder is an error, not a silent fallback."""
    root = env.sandbox_cgroup()
    if root is None:
        return None
    controllers = root / "cgroup.controllers"
    if not controllers.is_file() or "memory" not in controllers.read_text().split() or not os.access(root, os.W_OK):
        raise SandboxUnavailableError(f"{env.SANDBOX_CGROUP}={root}: not a writable cgroup v2 folder with the memory "
                                      "controller (delegate one, e.g. systemd's Delegate=yes, or unset it)")
    return root


@contextlib.contextmanager
def program_cgroup(limits: Limits) -> Iterator[Path | None]:
    """A fresh cgroup under cgroup_root() capping memory (data + both tmpfs), swap (none) and processes; removed
    once the program's processes are gone. None where no cgroup root is configured."""
    root = cgroup_root()
    if root is None:
        yield None
        return
    group = root / f"xstilts-{os.getpid()}-{next(_CGROUP_SERIAL)}"
    group.mkdir()
    try:
        caps = {"memory.max": (limits.memory_mb + limits.tmp_mb + limits.shm_mb) << 20, "memory.swap.max": 0,
                "pids.max": limits.nproc}
        for name, value in caps.items():
            if (group / name).exists() or name == "memory.max":
                (group / name).write_text(f"{value}\n")
        yield group
    finally:
        for _ in range(50):  # the kernel refuses to remove a cgroup until its last process has exited
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def _spawn(command: list[str], *, cwd: Path, env: dict, uid: int | None, wall_s: float, stdout, stderr,
           bwrap: bool, cgroup: Path | None = None) -> int | None:
    """Run `command` (prlimit [+ bwrap] + program) to its end or the wall-clock limit; None when it timed out.
    Returns only once every process of the sandbox is gone."""
    info_read, info_write = os.pipe() if bwrap else (-1, -1)
    if bwrap:  # bwrap reports its namespace init's pid here
        command = [*command[:command.index(BWRAP_MARK)], "--info-fd", str(info_write),
                   *command[command.index(BWRAP_MARK) + 1:]]
    try:
        start = time.monotonic()
        # A session of its own, so that killpg reaches every process left in the group.
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                start_new_session=True, pass_fds=(info_write,) if bwrap else (), **_user_kwargs(uid))
        if cgroup is not None:  # at once, before prlimit has exec'd bwrap and the program
            (cgroup / "cgroup.procs").write_text(f"{proc.pid}\n")
        if bwrap:
            os.close(info_write)
            info_write = -1
        init = _NamespaceInit(info_read, start + wall_s)
        exit_code: int | None = None
        try:
            exit_code = proc.wait(timeout=max(0.0, start + wall_s - time.monotonic()))
        except subprocess.TimeoutExpired:
            init.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)  # bwrap exits as soon as its namespace is empty
        finally:
            # Without namespaces, background processes may outlive the program in its group.
            _kill_group(proc, leftovers=not bwrap)
            init.reap()
    finally:
        for fd in (info_read, info_write):
            if fd >= 0:
                os.close(fd)
    return exit_code


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:  # exited meanwhile
                pass
    return count


class _NamespaceInit:
    """bwrap's PID-namespace init, held by a pidfd (its pid comes on bwrap's --info-fd), so it is never mistaken
    for a recycled pid. Killing it empties the namespace: the kernel kills every process inside, and the init exits
    only once they are all gone. bwrap exits without reaping it; the evaluator, a child subreaper, reaps it here, since
    a zombie left to a container init that does not reap would count against the slot uid's process limit."""

    def __init__(self, info_fd: int, deadline: float):
        self.pidfd = -1
        if info_fd < 0:
            return
        info = b""
        while select.select([info_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(info_fd, 65536)  # bwrap writes the JSON, then closes the fd (the program never has it)
            if not chunk:
                break
            info += chunk
        try:
            child = json.loads(info.decode() or "{}").get("child-pid")
            if isinstance(child, int) and child > 1:
                self.pidfd = os.pidfd_open(child)
        except (OSError, ValueError):  # bwrap failed before starting the namespace, or it is already gone
            pass

    def kill(self) -> None:
        if self.pidfd >= 0:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def reap(self) -> None:
        if self.pidfd < 0:
            return
        if _subreaper:  # bwrap has exited, so the init is now our child (or was reaped by bwrap: ECHILD)
            with contextlib.suppress(ChildProcessError):
                os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
        os.close(self.pidfd)
        self.pidfd = -1


_subreaper = False


def _become_subreaper() -> None:
    """Orphaned descendants (bwrap's namespace inits) become this process's children instead of pid 1's, which in
    a container may never reap them. Process-wide: other orphans of this process stay zombies until it exits."""
    global _subreaper
    if not _subreaper:
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _kill_group(proc: subprocess.Popen, leftovers: bool) -> None:
    """SIGKILL the process group if its leader still runs (bwrap: its --die-with-parent init takes the namespace
    down with it) or, with `leftovers`, if members may remain after the leader exited."""
    if proc.poll() is None or leftovers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def with_wall(limits: Limits, wall_s: float) -> Limits:
    """`limits` with a wall-clock timeout and a CPU limit just above it (CPU time is per process)."""
    return replace(limits, wall_s=wall_s, cpu_s=int(wall_s) + 1)
