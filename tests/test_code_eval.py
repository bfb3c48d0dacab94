"""`xstilts code-eval`: fixture problems in six languages, correct and subtly wrong solutions, pass@k, bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.codeexec.harness import load_problems, load_samples, pass_at_k
from xstilts.sampledata.code_fixtures import canonical_samples, fixture_problems

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "code"
XSTILTS = str(Path(sys.executable).parent / "xstilts")
LANGUAGES = ("python", "javascript", "typescript", "java", "cpp", "go")


def cli(*args, env=None):
    return subprocess.run([XSTILTS, "code-eval", *args], capture_output=True, text=True, timeout=600, env=env)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_fixture_files_are_the_library_fixtures():
    problems = fixture_problems()
    assert read_jsonl(FIXTURES / "problems.jsonl") == problems
    assert read_jsonl(FIXTURES / "canonical_samples.jsonl") == canonical_samples(problems)
    assert {p["language"] for p in problems} == set(LANGUAGES)
    assert all(sum(p["language"] == lang for p in problems) >= 3 for lang in LANGUAGES)


def test_canonical_solutions_pass_in_every_language(tmp_path):
    out = tmp_path / "canonical"
    run = cli("--problems", str(FIXTURES / "problems.jsonl"), "--samples", str(FIXTURES / "canonical_samples.jsonl"),
              "--k", "1,10", "--workers", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "pass_at_k.json").read_text())
    assert summary["isolation"]["mode"] == "bwrap" and summary["k"] == [1, 10]
    for language in LANGUAGES:
        row = summary["languages"][language]
        assert row["pass@1"] == 1.0, (language, row)
        assert row["pass@10"] is None and "10" in row["skipped_k"]  # one sample per problem: k=10 > n
        assert row["status_counts"] == {"passed": 3, "failed": 0, "timeout": 0, "memory": 0, "compile_error": 0,
                                        "killed": 0, "toolchain_error": 0}
        # The toolchain self-test ran first, in the same sandbox and limits, and every check came out as expected.
        self_test = summary["self_test"][language]
        assert row["available"] and self_test["available"], (language, self_test)
        assert all(check["ok"] for check in self_test["checks"]) and len(self_test["checks"]) >= 2, self_test
    assert summary["typescript_mode"] == "strict"
    samples = read_jsonl(out / "samples.jsonl")
    assert len(samples) == 18 and all(s["passed"] and s["status"] == "passed" for s in samples)
    assert set(samples[0]) >= {"task_id", "language", "completion_index", "passed", "status", "duration_s", "stderr"}
    problems = read_jsonl(out / "problems.jsonl")
    assert all(p["n"] == 1 and p["correct"] == 1 and p["pass@1"] == 1.0 and p["pass@10"] is None for p in problems)
    table = (out / "pass_at_k.md").read_text()
    assert "| typescript | 3 | 3 | 100.0 | — | 3 | 0 | 0 | 0 | 0 | 0 | 0 |" in table and "pass@10 skipped" in table
    assert "Toolchain self-test: cpp ok, go ok, java ok, javascript ok, python ok, typescript ok." in table
    assert "TypeScript: typescript_mode strict" in table
    assert "| go | 3 | 3 | 100.0 |" in run.stdout


def test_subtly_wrong_solutions_fail_in_every_language(tmp_path):
    wrong = read_jsonl(FIXTURES / "wrong_samples.jsonl")
    assert {t["task_id"].split("/")[0].removeprefix("xstilts-") for t in wrong} == set(LANGUAGES)
    # Each wrong sample beside its problem's correct one: n=2, c=1 per problem.
    samples = tmp_path / "samples.jsonl"
    rows = [row for w in wrong for row in (w, {"task_id": w["task_id"], "completion": next(
        p["canonical_solution"] for p in fixture_problems() if p["task_id"] == w["task_id"])})]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = cli("--problems", str(FIXTURES / "problems.jsonl"), "--samples", str(samples), "--k", "1,2",
              "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    results = read_jsonl(tmp_path / "out" / "samples.jsonl")
    for row, result in zip(rows, results):
        assert result["task_id"] == row["task_id"]
        expected = row.get("expect", "passed")
        assert result["status"] == expected, (row.get("bug"), result)
        assert result["passed"] == (expected == "passed")
        if expected != "passed":
            assert result["stderr"], result  # the reason is kept (assertion, compiler message)
    by_task = {p["task_id"]: p for p in read_jsonl(tmp_path / "out" / "problems.jsonl")}
    for task_id, p in by_task.items():
        n = sum(r["task_id"] == task_id for r in rows)
        assert p["n"] == n and p["correct"] == n // 2 and p["pass@1"] == pytest.approx(pass_at_k(n, n // 2, 1))


@pytest.mark.parametrize("n,c,k", [(1, 1, 1), (1, 0, 1), (5, 2, 1), (5, 2, 3), (10, 3, 10), (20, 0, 5),
                                   (20, 19, 2), (200, 13, 10), (200, 1, 100)])
def test_pass_at_k_is_the_unbiased_estimator(n, c, k):
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_pass_at_k_edges():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)  # pass@1 = c/n
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)
    assert pass_at_k(5000, 1, 1) == pytest.approx(1 / 5000)  # huge n: no overflow
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_samples_are_numbered_per_problem(tmp_path):
    problems_file = tmp_path / "p.jsonl"
    problems_file.write_text("".join(json.dumps(p) + "\n" for p in fixture_problems(("python",))))
    problems = load_problems(problems_file)
    samples_file = tmp_path / "s.jsonl"
    samples_file.write_text("".join(json.dumps({"task_id": t, "completion": "pass\n"}) + "\n"
                                    for t in ["xstilts-python/0", "xstilts-python/1", "xstilts-python/0", ""][:3]))
    assert [(s.task_id, s.index, s.line) for s in load_samples(samples_file, problems)] == [
        ("xstilts-python/0", 0, 1), ("xstilts-python/1", 0, 2), ("xstilts-python/0", 1, 3)]


GOOD_PROBLEM = json.dumps(fixture_problems(("python",))[0])
GOOD_SAMPLE = json.dumps({"task_id": "xstilts-python/0", "completion": "    return 0\n"})


@pytest.mark.parametrize("problems,samples,message", [
    (GOOD_PROBLEM + "\n{not json\n", GOOD_SAMPLE, r"problems.jsonl: line 2: not valid JSON"),
    (json.dumps({"task_id": "a", "prompt": "", "test": "", "language": "python"}), GOOD_SAMPLE,
     "problems.jsonl: line 1: missing field `entry_point`"),
    (GOOD_PROBLEM.replace('"python"', '"cobol"'), GOOD_SAMPLE,
     "problems.jsonl: line 1: field `language`: unknown language 'cobol'"),
    (GOOD_PROBLEM + "\n" + GOOD_PROBLEM, GOOD_SAMPLE, "problems.jsonl: line 2: field `task_id`: duplicate"),
    ("", GOOD_SAMPLE, "problems.jsonl: empty"),
    (GOOD_PROBLEM, "\n\n", "samples.jsonl: empty"),
    (GOOD_PROBLEM, GOOD_SAMPLE + "\n" + json.dumps({"task_id": "xstilts-python/9", "completion": ""}),
     "samples.jsonl: line 2: field `task_id`: 'xstilts-python/9' is not a task id"),
    (GOOD_PROBLEM, json.dumps({"task_id": "xstilts-python/0", "completion": 3}),
     "samples.jsonl: line 1: field `completion`: expected a string, got int"),
    (GOOD_PROBLEM, json.dumps(["xstilts-python/0", "x"]), "samples.jsonl: line 1: expected a JSON object"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, problems, samples, message):
    from typer.testing import CliRunner

    from xstilts.cli.main import app

    (tmp_path / "problems.jsonl").write_text(problems)
    (tmp_path / "samples.jsonl").write_text(samples)
    run = CliRunner().invoke(app, ["code-eval", "--problems", str(tmp_path / "problems.jsonl"),
                                   "--samples", str(tmp_path / "samples.jsonl"), "--out", str(tmp_path / "out")])
    assert run.exit_code == 1, run.output
    assert "error:" in run.stderr and message in " ".join(run.stderr.split()), run.stderr
    assert not (tmp_path / "out").exists()


def test_missing_toolchain_names_language_and_executable(tmp_path):
    import os

    env = {**os.environ, "XSTILTS_GO": str(tmp_path / "no-go-here")}
    run = cli("--problems", str(FIXTURES / "problems.jsonl"), "--samples", str(FIXTURES / "canonical_samples.jsonl"),
              "--out", str(tmp_path / "out"), env=env)
    assert run.returncode == 1 and "go: toolchain executable `go` not found" in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()


def test_bench_prints_throughput_beside_the_naive_baseline():
    run = cli("--bench", "--bench-languages", "python,go", "--bench-programs", "4", "--workers", "2")
    assert run.returncode == 0, run.stderr
    assert "| language | programs | batched programs/s | naive programs/s | ratio |" in run.stdout, run.stdout
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in run.stdout.splitlines()
            if line.startswith(("| python ", "| go "))}
    assert set(rows) == {"python", "go"}, run.stdout
    for cells in rows.values():
        assert cells[1] == "4" and cells[4].endswith("×") and cells[-1] == "4 / 4 |", cells
        assert float(cells[2]) > 0 and float(cells[3]) > 0
    assert "one compiler process per program" in run.stdout


def test_bench_rejects_an_unknown_language():
    run = cli("--bench", "--bench-languages", "python,cobol")
    assert run.returncode == 1 and "unknown language 'cobol'" in run.stderr, run.stderr


# A `go test` problem, as MultiPL-E and HumanEval-X write them: an external `_test` package with subtests.
GO_TEST_PROBLEM = {"task_id": "multipl-e/add", "language": "go", "entry_point": "add",
                   "prompt": 'package add_test\n\nimport (\n\t"fmt"\n\t"testing"\n)\n\n// add(2, 3) == 5\n'
                             "func add(a int, b int) int {\n",
                   "test": "func TestAdd(t *testing.T) {\n\tcandidate := add\n\tfor i, c := range [][3]int{{2, 3, 5}, "
                           "{-1, 1, 0}} {\n\t\tt.Run(fmt.Sprintf(\"test num %d\", i), func(t *testing.T) {\n"
                           "\t\t\tif got := candidate(c[0], c[1]); got != c[2] {\n"
                           "\t\t\t\tt.Errorf(\"got %d, want %d\", got, c[2])\n\t\t\t}\n\t\t})\n\t}\n}\n"}


def test_go_follows_the_problems_test_convention(tmp_path):
    """A Go test with `func main` (mxeval's MBXP files, the fixtures) is built and run; one with
    `func TestXxx(t *testing.T)` (MultiPL-E, HumanEval-X; here in an external `_test` package with subtests) runs
    under `go test` in a module folder."""
    from xstilts.codeexec.harness import Sample, evaluate
    from xstilts.codeexec.languages import get_language

    go = get_language("go")
    assert {go.for_problem(p).source for p in fixture_problems(("go",))} == {"main.go"}
    problem = GO_TEST_PROBLEM
    assert go.for_problem(problem).source == "main_test.go"
    samples = [Sample("multipl-e/add", completion, i, i + 1)
               for i, completion in enumerate(["\treturn a + b\n}\n", "\treturn a - b\n}\n"])]
    rows = evaluate({"multipl-e/add": problem}, samples, ks=[1], workers=2).samples
    assert [r["status"] for r in rows] == ["passed", "failed"], rows
    assert "--- FAIL: TestAdd/test_num_0" in rows[1]["stderr"] and "got -1, want 5" in rows[1]["stderr"], rows[1]


# A run-time error and a program that never ends, per compiled language (bodies for each language's problem 0).
RUNTIME_ERROR = {"java": '        throw new IllegalStateException("boom");\n    }\n}\n',
                 "typescript": "    throw new Error('boom');\n};\n",
                 "go": '\tpanic("boom")\n}\n',
                 "cpp": '    throw runtime_error("boom");\n}\n'}
NEVER_ENDS = {"java": "        while (true) {}\n    }\n}\n", "typescript": "    while (true) {}\n};\n",
              "go": "\tfor {\n\t}\n}\n", "cpp": "    while (true) {}\n}\n"}


def compiled_language_samples():
    """Per compiled language: the canonical solutions, the fixtures' wrong ones (a failed test, a compile error),
    a run-time error and a timeout; TypeScript also a program that imports from another program's folder."""
    from xstilts.codeexec.harness import Sample

    wrong = read_jsonl(FIXTURES / "wrong_samples.jsonl")
    problems, rows = {}, []
    for language, runtime_error in RUNTIME_ERROR.items():
        for problem in fixture_problems((language,)):
            problems[problem["task_id"]] = problem
            rows.append((problem["task_id"], problem["canonical_solution"]))
        first = f"xstilts-{language}/0"
        rows += [(w["task_id"], w["completion"]) for w in wrong if w["task_id"].startswith(f"xstilts-{language}/")]
        rows += [(first, runtime_error), (first, NEVER_ENDS[language])]
    rows.append(("xstilts-typescript/0", "    return 0;\n};\nimport * as other from '../p0/main';\nconsole.log(other);\n"))
    seen = {}
    samples = []
    for line, (task_id, completion) in enumerate(rows, 1):
        samples.append(Sample(task_id, completion, seen.get(task_id, 0), line))
        seen[task_id] = seen.get(task_id, 0) + 1
    return problems, samples


def test_batched_compilation_gives_the_naive_results():
    """Many programs per compiler process (Java, TypeScript, Go) or a shared precompiled header (C++) against one
    compiler process per program: the same status, exit code and compiler message for every sample, the same pass@k;
    a compile error in a batch is only its own program's."""
    from xstilts.codeexec.harness import evaluate

    problems, samples = compiled_language_samples()
    runs = {mode: evaluate(problems, samples, ks=[1, 2], workers=2, timeout_s=5.0, compilation=mode)
            for mode in ("batched", "naive")}
    batched, naive = runs["batched"], runs["naive"]
    statuses = [r["status"] for r in naive.samples]
    assert {"passed", "failed", "compile_error", "timeout"} <= set(statuses), statuses
    for b, n in zip(batched.samples, naive.samples):
        assert (b["task_id"], b["status"], b["exit_code"]) == (n["task_id"], n["status"], n["exit_code"]), (b, n)
        if n["status"] == "compile_error":
            assert b["stderr"] == n["stderr"] and n["stderr"], (b, n)
    assert batched.problems == naive.problems
    for language, row in naive.languages.items():
        assert {k: v for k, v in batched.languages[language].items() if k != "available"} == \
            {k: v for k, v in row.items() if k != "available"}, language
    assert batched.settings["compilation"] == "batched" and naive.settings["batches"] == {}
    for language in ("java", "typescript", "go"):
        counts = batched.settings["batches"][language]
        assert counts["batches"] >= 2 and counts["compiled_alone"] == 0, (language, counts)
    assert "cpp" not in batched.settings["batches"]


def test_a_batch_without_results_compiles_its_programs_alone(monkeypatch):
    """A batch compiler that records nothing (here: a Java driver that is not there) costs time, not results:
    each of its programs is compiled on its own."""
    from dataclasses import replace

    from xstilts.codeexec.harness import Sample, evaluate
    from xstilts.codeexec.languages import LANGUAGES

    java = LANGUAGES["java"]
    monkeypatch.setitem(LANGUAGES, "java", replace(java, prepare=lambda tc, *args: replace(
        tc, batch_driver=("/nonexistent-xstilts-driver",))))
    problems = {p["task_id"]: p for p in fixture_problems(("java",))}
    wrong = [w for w in read_jsonl(FIXTURES / "wrong_samples.jsonl") if w["task_id"].startswith("xstilts-java/")]
    samples = [Sample(t, p["canonical_solution"], 0, i) for i, (t, p) in enumerate(problems.items())] + \
        [Sample(w["task_id"], w["completion"], 1 + i, 9 + i) for i, w in enumerate(wrong)]
    evaluation = evaluate(problems, samples, ks=[1], workers=2)
    assert [r["status"] for r in evaluation.samples] == ["passed"] * 3 + [w["expect"] for w in wrong]
    assert evaluation.settings["self_test"]["java"]["available"]
    assert evaluation.settings["batches"]["java"] == {"batches": 2, "programs": 5, "compiled_alone": 5}


def test_go_test_programs_compile_in_a_batch_with_the_naive_results():
    """`go test -c` programs (one worker: a single batch) against one `go test -c` per program."""
    from xstilts.codeexec.harness import Sample, evaluate

    completions = ["\treturn a + b\n}\n", "\treturn a - b\n}\n", '\treturn "x"\n}\n']
    samples = [Sample("multipl-e/add", c, i, i + 1) for i, c in enumerate(completions)]
    runs = {mode: evaluate({"multipl-e/add": GO_TEST_PROBLEM}, samples, ks=[1], workers=1, compilation=mode)
            for mode in ("batched", "naive")}
    for mode, evaluation in runs.items():
        assert [r["status"] for r in evaluation.samples] == ["passed", "failed", "compile_error"], mode
    assert runs["batched"].samples[2]["stderr"] == runs["naive"].samples[2]["stderr"]
    assert runs["batched"].settings["batches"]["go"] == {"batches": 1, "programs": 3, "compiled_alone": 0}
