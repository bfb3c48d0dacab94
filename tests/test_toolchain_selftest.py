"""The code-eval toolchain self-test (a broken toolchain is unavailable, never a score of 0), the benchmarks' test
dependencies (mathjs, heap-js), TypeScript's lib/target from node's version, and `typescript_mode`."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from xstilts.codeexec import harness
from xstilts.codeexec.harness import Sample, evaluate, markdown_table
from xstilts.codeexec.languages import es_version, find_toolchain, get_language, node_version
from xstilts.errors import ConfigError
from xstilts.config import generation_settings
from xstilts.sampledata.code_fixtures import canonical_samples, fixture_problems

XSTILTS = str(Path(sys.executable).parent / "xstilts")


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def write_jsonl(path, rows):
    Path(path).write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def test_broken_toolchain_is_unavailable_and_not_scored(tmp_path):
    """Go's `go` is /bin/false: it exists, so the run starts, but Go fails its self-test; its samples are
    toolchain_error and Go gets no pass@k, while Python is scored as usual."""
    rows = fixture_problems(("python", "go"))
    write_jsonl(tmp_path / "problems.jsonl", rows)
    write_jsonl(tmp_path / "samples.jsonl", canonical_samples(rows))
    out = tmp_path / "out"
    run = subprocess.run([XSTILTS, "code-eval", "--problems", str(tmp_path / "problems.jsonl"), "--samples",
                          str(tmp_path / "samples.jsonl"), "--k", "1", "--workers", "2", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "XSTILTS_GO": "/bin/false"})
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "pass_at_k.json").read_text())
    go, python = summary["languages"]["go"], summary["languages"]["python"]
    assert not go["available"] and go["unavailable"].startswith("go toolchain failed its self-test"), go
    assert go["pass@1"] is None and "toolchain unavailable" in go["skipped_k"]["1"]
    assert go["status_counts"]["toolchain_error"] == 3 and go["status_counts"]["passed"] == 0
    assert python["available"] and python["pass@1"] == 1.0 and python["status_counts"]["passed"] == 3
    assert not summary["self_test"]["go"]["available"] and summary["self_test"]["python"]["available"]
    assert {c["check"]: c["status"] for c in summary["self_test"]["go"]["checks"]}["passes"] == "compile_error"
    samples = [r for r in read_jsonl(out / "samples.jsonl") if r["language"] == "go"]
    assert len(samples) == 3 and all(r["status"] == "toolchain_error" and not r["passed"] for r in samples)
    assert all("self-test" in r["stderr"] for r in samples)
    problems = [r for r in read_jsonl(out / "problems.jsonl") if r["language"] == "go"]
    assert all(r["pass@1"] is None and r["toolchain_error"] for r in problems)
    table = (out / "pass_at_k.md").read_text()
    assert "| go | 3 | 3 | — | 0 | 0 | 0 | 0 | 0 | 0 | 3 |" in table and "| python | 3 | 3 | 100.0 |" in table
    assert "- go: **unavailable**, not scored: go toolchain failed its self-test" in table
    assert "Toolchain self-test: go FAILED, python ok." in table


def test_node_version_sets_typescript_lib_and_target():
    assert [es_version(v) for v in ("v22.1.0", "v20.19.2", "v18.19.1", "v16.10.0", "v14.21.3")] == [
        "es2022", "es2022", "es2022", "es2021", "es2020"]
    tc = find_toolchain(get_language("typescript"))
    assert tc.node_version == node_version(tc.paths["node"]) and tc.es_version == es_version(tc.node_version)
    argv = get_language("typescript").compile(tc)
    assert argv[argv.index("--lib") + 1] == argv[argv.index("--target") + 1] == tc.es_version
    assert argv[argv.index("--noEmitOnError") + 1] == "true"
    compatible = get_language("typescript").compile(replace(tc, typescript_mode="mxeval-compatible"))
    assert compatible[compatible.index("--noEmitOnError") + 1] == "false"


def _ts(task: str, prompt: str, test: str, entry_point: str) -> dict:
    return {"task_id": f"ts/{task}", "language": "typescript", "prompt": prompt, "entry_point": entry_point,
            "test": "\nimport * as assert from 'assert'\n\n" + test}


TS_PROBLEMS = [
    _ts("mathjs", "import * as math from 'mathjs'\n\n/** Hypotenuse. */\n"
        "const hypot = function (a: number, b: number) : number  {\n",
        "assert.deepEqual(hypot(3, 4), 5);\nassert.deepEqual(hypot(5, 12), 13);\n", "hypot"),
    _ts("heap-js", "import {Heap} from 'heap-js'\n\n/** Ascending, with a heap. */\n"
        "const heap_sort = function (xs: Array<number>) : Array<number>  {\n",
        "assert.deepEqual(heap_sort([3, 1, 2]), [1, 2, 3]);\n", "heap_sort"),
    _ts("replaceAll", "/** Without dashes. */\nconst strip = function (s: string) : string  {\n",
        "assert.deepEqual(strip('a-b-c'), 'abc');\n", "strip"),
    _ts("double", "/** Twice x. */\nconst double = function (x: number) : number  {\n",
        "assert.deepEqual(double(2), 4);\nassert.deepEqual(double(-3), -6);\n", "double"),
]
TS_SAMPLES = [  # (task, completion, status in strict mode, status in mxeval-compatible mode)
    ("mathjs", "    return math.sqrt(a * a + b * b) as number;\n};\n", "passed", "passed"),
    ("heap-js", "    const heap = new Heap<number>();\n    heap.init(xs);\n    const out: number[] = [];\n"
                "    while (heap.length) out.push(heap.pop() as number);\n    return out;\n};\n", "passed", "passed"),
    ("replaceAll", "    return s.replaceAll('-', '');\n};\n", "passed", "passed"),
    # A type error in a program whose tests pass, and in one whose tests fail.
    ("double", "    const y: string = x * 2;\n    return y as any;\n};\n", "compile_error", "passed"),
    ("double", "    const y: string = x * 3;\n    return y as any;\n};\n", "compile_error", "failed"),
    ("double", "    return x + x;\n};\n", "passed", "passed"),
]


def require_node_dependencies() -> None:
    node_modules = Path(find_toolchain(get_language("typescript")).node_modules)
    missing = [m for m in ("mathjs", "heap-js") if not (node_modules / m / "package.json").is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed in {node_modules}: `make toolchains` installs them")


@pytest.mark.parametrize("mode", ["strict", "mxeval-compatible"])
def test_typescript_dependencies_es2021_and_typescript_mode(mode):
    require_node_dependencies()
    problems = {p["task_id"]: p for p in TS_PROBLEMS}
    samples = [Sample(f"ts/{task}", completion, i, i + 1) for i, (task, completion, *_) in enumerate(TS_SAMPLES)]
    evaluation = evaluate(problems, samples, ks=[1], workers=2, typescript_mode=mode)
    expected = [strict if mode == "strict" else compatible for _, _, strict, compatible in TS_SAMPLES]
    assert [r["status"] for r in evaluation.samples] == expected, evaluation.samples
    assert evaluation.settings["typescript_mode"] == mode
    assert evaluation.settings["toolchains"]["typescript"]["typescript_mode"] == mode
    record = evaluation.settings["self_test"]["typescript"]
    assert record["available"] and record["missing_dependencies"] == [], record
    type_error = evaluation.samples[3]
    if mode == "strict":
        assert "TS2322" in type_error["stderr"], type_error
    else:  # the ignored type errors are kept with the run's report
        assert "compile errors ignored (typescript mxeval-compatible)" in type_error["stderr"] and \
            "TS2322" in type_error["stderr"], type_error
    assert f"TypeScript: typescript_mode {mode}" in markdown_table(evaluation)


@pytest.fixture
def public_tmp():
    """A scratch folder the sandbox's own uids can reach (pytest's tmp_path sits below a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="xstilts-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_missing_test_dependencies_are_a_note_not_unavailability(public_tmp, monkeypatch):
    """A node_modules with tsc and @types but without mathjs and heap-js: TypeScript stays available (only the
    problems importing them would fail), and the self-test names what is missing."""
    real = find_toolchain(get_language("typescript"))
    fake = public_tmp / "node_modules"
    fake.mkdir()
    for name in ("typescript", "@types", "undici-types"):
        if (Path(real.node_modules) / name).exists():
            (fake / name).symlink_to(Path(real.node_modules) / name)

    def without_dependencies(language, **options):
        tc = find_toolchain(language, **options)
        return replace(tc, node_modules=str(fake), extra_binds=(*tc.extra_binds, str(fake)))

    monkeypatch.setattr(harness, "find_toolchain", without_dependencies)
    problem = fixture_problems(("typescript",))[0]
    evaluation = evaluate({problem["task_id"]: problem}, [Sample(problem["task_id"], problem["canonical_solution"],
                                                                 0, 1)], ks=[1], workers=2)
    record = evaluation.settings["self_test"]["typescript"]
    assert record["available"] and record["missing_dependencies"] == ["mathjs", "heap-js"], record
    assert evaluation.samples[0]["status"] == "passed"
    assert "typescript: test dependencies missing (mathjs, heap-js)" in markdown_table(evaluation)


def test_typescript_mode_is_a_checked_generation_setting():
    assert generation_settings(None)["typescript_mode"] == "strict"
    assert generation_settings({"typescript_mode": "mxeval-compatible"})["typescript_mode"] == "mxeval-compatible"
    with pytest.raises(ConfigError, match="typescript_mode.*strict, mxeval-compatible"):
        generation_settings({"typescript_mode": "loose"})


def test_cli_typescript_mode_option():
    from typer.testing import CliRunner

    from xstilts.cli.main import app

    help_text = " ".join(CliRunner().invoke(app, ["code-eval", "--help"]).output.split())
    assert "--typescript-mode" in help_text
    run = CliRunner().invoke(app, ["code-eval", "--typescript-mode", "loose", "--problems", "p", "--samples", "s",
                                   "--out", "o"])
    assert run.exit_code == 2 and "mxeval-compatible" in run.output, run.output
