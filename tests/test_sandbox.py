"""Hostile programs are contained and reported as failures while the evaluation carries on.

One evaluation runs every hostile sample between correct ones (two workers, short timeouts); each test then checks
one attack. A hostile program exits 0 only if its attack worked, so a working attack shows up as `passed`.
"""

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from xstilts import env
from xstilts.codeexec import sandbox as sandbox_module
from xstilts.codeexec.harness import Sample, evaluate
from xstilts.sampledata.code_fixtures import fixture_problems
from xstilts.codeexec.sandbox import UID_BASE, Limits, Sandbox, SandboxUnavailableError

SECRET = "xstilts-test-secret-4f9c2a"
ROOT = os.geteuid() == 0
WORKERS = 2

# A problem whose harness does nothing: the completion's top-level code is the whole program.
SHELL_PROBLEM = {"task_id": "shell/python", "language": "python", "prompt": "", "entry_point": "len",
                 "test": "def check(candidate):\n    pass\n"}


def hostile(code: str) -> str:
    return textwrap.dedent(code)


HOSTILE = {
    "fork_bomb": hostile("""
        import os
        while True:
            os.fork()
    """),
    "infinite_loop": hostile("""
        while True:
            pass
    """),
    "memory_bomb": hostile("""
        blocks = []
        while True:
            blocks.append(bytearray(64 << 20))
    """),
    "write_outside": hostile(f"""
        import os, sys
        wrote = []
        for path in ["{{outside}}/pwned", "/tmp/xstilts-pwned", "/work/xstilts-pwned", "/root/pwned",
                     "/etc/xstilts-pwned", os.path.expanduser("~/pwned"), "/sandbox/pwned"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                wrote.append(path)
            except OSError:
                pass
        # /tmp (also HOME) inside is a private tmpfs: writing there is allowed, but must not reach the host's /tmp.
        print("wrote", wrote, file=sys.stderr)
        sys.exit(0 if [p for p in wrote if not p.startswith("/tmp/")] else 1)
    """),
    "network": hostile("""
        import socket, sys
        for address in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
            try:
                socket.create_connection(address, timeout=1).close()
                sys.exit(0)
            except OSError:
                pass
        sys.exit(1)
    """),
    "read_secret": hostile(f"""
        import glob, os, sys
        found = "{SECRET}" in repr(dict(os.environ))
        for path in glob.glob("/proc/*/environ"):
            try:
                found |= "{SECRET}".encode() in open(path, "rb").read()
            except OSError:
                pass
        sys.exit(0 if found else 1)
    """),
    "kill_parent": hostile("""
        import os, signal, sys, time
        for target in (os.getppid(), -1, 0):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
        sys.exit(1)
    """),
    "escape_daemon": hostile("""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "300"])
            os._exit(0)
        sys.exit(1)
    """),
    "output_flood": hostile("""
        import sys
        while True:
            sys.stdout.write("x" * 65536)
    """),
}
def fill_tmpfs(folder: str) -> str:
    """A program writing 200 files of 8 MiB into `folder` (a tmpfs, i.e. host memory): exits 0 past 300 MiB."""
    return hostile(f"""
        import sys
        written = 0
        try:
            for j in range(200):
                with open(f"{folder}/f{{j}}", "wb") as f:
                    for _ in range(8):
                        f.write(bytes(1 << 20))
                        written += 1
        except OSError:
            pass
        sys.exit(0 if written > 300 else 1)
    """)


# Memory that RLIMIT_DATA does not count: files in the tmpfs /dev/shm and /tmp, POSIX shared memory, shared anonymous
# mappings. Each exits 0 (passes) only if it got more than the sandbox allows.
HOSTILE |= {
    "shm_files": fill_tmpfs("/dev/shm"),
    "posix_shm": hostile("""
        import sys
        from multiprocessing import shared_memory
        block = shared_memory.SharedMemory(create=True, size=1 << 30)
        for i in range(0, 1 << 30, 4096):
            block.buf[i] = 1
        sys.exit(0)
    """),
    "shared_mmap": hostile("""
        import mmap, sys
        m = mmap.mmap(-1, 1 << 30, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        for i in range(0, 1 << 30, 4096):
            m[i] = 1
        sys.exit(0)
    """),
    "tmp_files": fill_tmpfs("/tmp"),
}

EXPECTED = {"fork_bomb": {"failed", "timeout", "killed"}, "infinite_loop": {"timeout"}, "memory_bomb": {"memory"},
            "write_outside": {"failed"}, "network": {"failed"}, "read_secret": {"failed"},
            "kill_parent": {"failed", "killed"}, "escape_daemon": {"failed"},
            "output_flood": {"failed", "killed"},  # CPython ignores SIGXFSZ: its write fails with EFBIG instead
            # ENOSPC or ENOMEM (failed/memory), or SIGBUS on touching a page the full tmpfs cannot back (killed)
            "shm_files": {"failed"}, "tmp_files": {"failed"}, "posix_shm": {"failed", "memory", "killed"},
            "shared_mmap": {"failed", "memory", "killed"}}
# The same attacks in compiled languages: a C++ fork bomb, a Java memory bomb, a JavaScript busy loop.
COMPILED = {
    "cpp_fork_bomb": ({"task_id": "shell/cpp", "language": "cpp", "prompt": "#include <unistd.h>\n",
                       "entry_point": "main", "test": ""}, "int main() { while (true) fork(); }\n",
                      {"timeout", "killed", "failed"}),
    "java_memory_bomb": ({"task_id": "shell/java", "language": "java", "prompt": "import java.util.*;\n",
                          "entry_point": "main", "test": ""},
                         "public class Main { public static void main(String[] a) { List<long[]> l = new "
                         "ArrayList<>(); while (true) l.add(new long[1 << 20]); } }\n", {"memory"}),
    "js_busy_loop": ({"task_id": "shell/javascript", "language": "javascript", "prompt": "", "entry_point": "main",
                      "test": ""}, "while (true) {}\n", {"timeout"}),
}


def uid_processes(uids) -> list[str]:
    """Processes (zombies included) running as one of `uids`."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid = int(next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
        if uid in uids:
            found.append(status.parent.name)
    return found


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    """Run every hostile program between correct samples; return per-attack results and what survived."""
    outside = tmp_path_factory.mktemp("outside")
    os.chmod(outside, 0o777)  # writable by anyone on the host: only the sandbox's mount namespace stops the write
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    bystander = subprocess.Popen(["sleep", "300"])  # the evaluator's neighbour, as root
    slot_bystander = subprocess.Popen(["sleep", "300"], user=UID_BASE, group=UID_BASE) if ROOT else None
    os.environ["XSTILTS_FAKE_AWS_SECRET_ACCESS_KEY"] = SECRET

    good = fixture_problems(("python",))
    problems = {p["task_id"]: p for p in good} | {SHELL_PROBLEM["task_id"]: SHELL_PROBLEM} | \
        {p["task_id"]: p for p, _, _ in COMPILED.values()}
    samples, names = [], []
    programs = [(name, SHELL_PROBLEM["task_id"], code.replace("{outside}", str(outside)).replace("{port}", str(port)))
                for name, code in HOSTILE.items()] + \
        [(name, problem["task_id"], code) for name, (problem, code, _) in COMPILED.items()]
    for i, (name, task_id, code) in enumerate(programs):
        samples.append(Sample(task_id, code, i, 0))
        names.append(name)
        correct = good[i % len(good)]
        samples.append(Sample(correct["task_id"], correct["canonical_solution"], i, 0))
        names.append("good")
    try:
        evaluation = evaluate(problems, samples, ks=[1], workers=WORKERS, timeout_s=3.0, memory_mb=256)
        outcome = {"results": list(zip(names, evaluation.samples)), "outside": outside, "evaluation": evaluation,
                   "bystander_alive": bystander.poll() is None,
                   "slot_bystander_alive": slot_bystander.poll() is None if slot_bystander else None,
                   "leftovers": [p for p in uid_processes(evaluation.settings["isolation"]["uids"])
                                 if slot_bystander is None or p != str(slot_bystander.pid)]}
    finally:
        del os.environ["XSTILTS_FAKE_AWS_SECRET_ACCESS_KEY"]
        server.close()
        for proc in (bystander, slot_bystander):
            if proc:
                proc.kill()
                proc.wait()
    return outcome


def result_of(attack, name):
    return next(result for n, result in attack["results"] if n == name)


@pytest.mark.parametrize("name", list(HOSTILE) + list(COMPILED))
def test_hostile_program_is_contained_and_fails(attack, name):
    result = result_of(attack, name)
    expected = EXPECTED.get(name) or COMPILED[name][2]
    assert not result["passed"] and result["status"] in expected, result


def test_evaluation_carries_on_and_correct_samples_pass(attack):
    good = [result for name, result in attack["results"] if name == "good"]
    assert len(good) == len(HOSTILE) + len(COMPILED)
    assert all(r["passed"] for r in good), [r for r in good if not r["passed"]]
    isolation = attack["evaluation"].settings["isolation"]
    assert {k: isolation[k] for k in ("mode", "network", "dedicated_uids", "reason")} == {
        "mode": "bwrap", "network": True, "dedicated_uids": ROOT, "reason": ""}
    assert len(isolation["uids"]) == (WORKERS if ROOT else 0)


def test_nothing_written_outside_and_no_process_survives(attack):
    assert list(attack["outside"].iterdir()) == []
    assert not Path("/tmp/xstilts-pwned").exists() and not Path("/work/xstilts-pwned").exists()
    assert attack["bystander_alive"]
    assert attack["leftovers"] == []  # the fork bomb's children and the setsid daemon died with the sandbox
    if ROOT:
        assert attack["slot_bystander_alive"]  # same uid outside the sandbox: kill(-1) inside cannot reach it


def test_limits_and_scrubbed_environment(monkeypatch):
    monkeypatch.setenv("XSTILTS_FAKE_TOKEN", SECRET)
    box = Sandbox()
    with box.reserve_slots(1) as (slot,), box.scratch() as scratch:
        workdir = box.make_workdir(scratch, slot)
        box.write_file(workdir, "probe.py", textwrap.dedent("""
            import os, resource
            print(sorted(os.environ))
            print(resource.getrlimit(resource.RLIMIT_NPROC), resource.getrlimit(resource.RLIMIT_FSIZE))
            print(os.getcwd(), os.getuid())
        """), slot)
        result = box.run(["python3", "probe.py"], workdir, slot=slot, limits=Limits(nproc=33, file_mb=5))
    assert result.exit_code == 0, result.stderr
    env_line, limits_line, where = result.stdout.splitlines()
    assert eval(env_line) == ["HOME", "LANG", "LC_ALL", "PATH", "PWD", "TMPDIR"]  # PWD: bwrap --chdir
    assert limits_line == f"(33, 33) ({5 << 20}, {5 << 20})"
    assert where.split()[0] == "/sandbox" and (not ROOT or where.split()[1] == str(UID_BASE + slot))


def test_refuses_without_isolation_unless_overridden(monkeypatch, tmp_path):
    # As where the kernel or a container's seccomp profile forbids namespaces: detection reports a reason.
    bwrap, prlimit, _ = sandbox_module.detect_isolation()
    monkeypatch.setattr(sandbox_module, "detect_isolation", lambda: (bwrap, prlimit, "namespaces not permitted"))
    with pytest.raises(SandboxUnavailableError, match="refusing to run untrusted code without isolation.*"
                                                      "--allow-no-isolation"):
        Sandbox()
    # Overridden: no namespaces, but limits, the scrubbed environment and the tree kill still hold.
    problems = {SHELL_PROBLEM["task_id"]: SHELL_PROBLEM}
    samples = [Sample("shell/python", HOSTILE["infinite_loop"], 0, 0),
               Sample("shell/python", "import os, sys\nsys.exit(0 if sorted(os.environ) == "
                      "['HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR'] else 1)\n", 1, 0)]
    evaluation = evaluate(problems, samples, ks=[1], workers=1, timeout_s=1.0, allow_no_isolation=True)
    assert evaluation.settings["isolation"]["mode"] == "none"
    assert [r["status"] for r in evaluation.samples] == ["timeout", "passed"]


def test_timeout_kills_the_whole_tree_before_returning():
    box = Sandbox()
    with box.reserve_slots(1) as (slot,), box.scratch() as scratch:
        workdir = box.make_workdir(scratch, slot)
        result = box.run(["sh", "-c", "sleep 300 & setsid sleep 300 & wait"], workdir, slot=slot,
                         limits=Limits(wall_s=0.5))
        assert result.timed_out and result.exit_code is None
        assert uid_processes([UID_BASE + slot]) == []  # no waiting: the namespace is empty when run() returns


def test_a_delegated_cgroup_caps_each_program(monkeypatch, tmp_path):
    """With XSTILTS_SANDBOX_CGROUP (a delegated cgroup v2 folder) each program runs in a cgroup of its own whose
    memory.max counts everything (shared memory, tmpfs pages, kernel memory); here a folder stands in for cgroupfs."""
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    monkeypatch.setenv(env.SANDBOX_CGROUP, str(root))
    limits = Limits(memory_mb=256, tmp_mb=64, shm_mb=16, nproc=20)
    with sandbox_module.program_cgroup(limits) as group:
        assert group.parent == root
        assert (group / "memory.max").read_text() == f"{(256 + 64 + 16) << 20}\n"
        for file in group.iterdir():  # cgroupfs's interface files do not keep rmdir from removing a cgroup
            file.unlink()
    assert not group.exists()  # removed once the program is gone
    (root / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(SandboxUnavailableError, match="not a writable cgroup v2 folder with the memory controller"):
        with sandbox_module.program_cgroup(limits):
            pass
    monkeypatch.delenv(env.SANDBOX_CGROUP)
    with sandbox_module.program_cgroup(limits) as group:
        assert group is None  # rlimits and size-capped tmpfs only
