"""Code tasks: the sample problems are working programs in every language, and code search trains contrastively."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import torch

from xstilts.kinds import base as kinds
from xstilts.sampledata import generate as sd
from xstilts.codeexec.harness import Sample, evaluate
from xstilts.codeexec.languages import ToolchainMissingError, find_toolchain, get_language
from xstilts.data.load import canonicalize
from xstilts.models.encoder import MeanPooledEncoder, load_encoder
from xstilts.kinds.base import GENERATION, RETRIEVAL
from xstilts.tasks.registry import condition_tasks, get_task
from xstilts.config import Settings, TrainConfig
from xstilts.train.finetune import finetune
from xstilts.data.load import read_split
from xstilts.data.validate import validate_tasks

GENERATION_TASKS = [name for name in sd.code_tasks() if get_task(name).kind == GENERATION]


def canonical_problems() -> list[dict]:
    """Every sample generation problem, as the validate step's canonical rows."""
    rows = []
    for name, splits in sd.code_tasks().items():
        task = get_task(name)
        if task.kind != GENERATION:
            continue
        for split, native in splits.items():
            df = canonicalize(native, task, split, f"{name}/{split}", default_language=task.train_language)
            rows += [dict(r, task=name) for r in df.to_dict("records")]
    return rows


PROBLEMS = canonical_problems()
OTHER_LANGUAGES = [lang for lang in get_task("mbxp").languages if lang != "python"]


def require_toolchain(language: str) -> None:
    """Skip, with code_exec's own message, where code_exec finds no toolchain for `language` (`make toolchains`
    installs them; tsc lives under .tools/node)."""
    try:
        find_toolchain(get_language(language))
    except ToolchainMissingError as e:
        pytest.skip(str(e))


def execute(language: str, runs: list[tuple[dict, str]]) -> list[dict]:
    """Each (sample problem, completion) run as `xstilts code-eval` runs it; its result rows, in order."""
    problems = {p["id"]: {"task_id": p["id"], "language": language, "prompt": p["prompt"], "test": p["test"],
                          "entry_point": p["entry_point"]} for p, _ in runs}
    seen: Counter = Counter()
    samples = []
    for p, completion in runs:
        samples.append(Sample(p["id"], completion, seen[p["id"]], len(samples) + 1))
        seen[p["id"]] += 1
    # Our own sample code: where bwrap cannot isolate, the resource limits alone will do.
    return evaluate(problems, samples, ks=[1], workers=2, allow_no_isolation=True, desc=f"sample {language}").samples


def program(problem: dict, completion: str | None = None) -> str:
    return problem["prompt"] + (problem["completion"] if completion is None else completion) + "\n" + problem["test"]


def test_every_sample_problem_has_what_execution_needs():
    assert {p["task"] for p in PROBLEMS} == set(GENERATION_TASKS)
    for p in PROBLEMS:
        assert p["prompt"] and p["completion"] and p["test"] and p["entry_point"], p["id"]
    assert {p["program_language"] for p in PROBLEMS if p["task"] == "mbxp"} == set(get_task("mbxp").languages)
    assert {p["language"] for p in PROBLEMS if p["task"] == "humaneval_xl"} == set(sd.NATURAL_LANGUAGE_NAMES)


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if p["program_language"] == "python"],
                         ids=lambda p: f"{p['task']}:{p['id']}:{p['language']}")
def test_python_canonical_solutions_pass_and_wrong_ones_fail(problem):
    exec(compile(program(problem), problem["id"], "exec"), {})  # our own sample code
    # HumanEval-style prompts end inside the function; MBPP's is a docstring above it
    wrong = (f"def {problem['entry_point']}(*args):\n    return None\n" if problem["task"] == "mbpp"
             else "    return None\n")
    with pytest.raises(AssertionError):
        exec(compile(program(problem, wrong), problem["id"], "exec"), {})


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_other_languages_canonical_solutions_pass(language):
    require_toolchain(language)
    problems = [p for p in PROBLEMS if p["program_language"] == language]
    assert problems
    results = execute(language, [(p, p["completion"]) for p in problems])
    assert [(r["task_id"], r["status"], r["stderr"]) for r in results if not r["passed"]] == []


def go_wrong_and_unused(problems: list[dict]) -> tuple[list[tuple[dict, str]], tuple[dict, str]]:
    """For each Go problem a completion returning the zero value of its result type (wrong for at least one case of
    every problem here), and one completion with an unused variable (a compile error)."""
    result_types = [re.search(r"\)\s*([^(){}]+?)\s*\{\s*\Z", p["prompt"]).group(1) for p in problems]
    wrong = [(p, f"\tvar zero {result}\n\treturn zero\n}}\n") for p, result in zip(problems, result_types)]
    return wrong, (problems[0], "\tunused := 1\n" + problems[0]["completion"])


def test_go_sample_problems_are_mbgp_programs_and_wrong_solutions_fail():
    """The sample's Go rows follow mxeval's MBGP release: a `package main` program whose `func main` compares each
    answer with `deepCompare` (JSON + reflect.DeepEqual) and panics on a wrong one. They build and run as programs;
    a wrong answer fails with the test case's panic message and an unused variable does not compile."""
    require_toolchain("go")
    problems = [p for p in PROBLEMS if p["program_language"] == "go"]
    assert problems and all(get_language("go").for_problem(p).source == "main.go" for p in problems)
    for p in problems:
        assert p["prompt"].startswith('package main\n\nimport (\n\t"encoding/json"\n\t"reflect"\n)\n'), p["id"]
        assert "func deepCompare(a interface{}, b interface{}, msg string) bool {" in p["test"], p["id"]
        assert "\nfunc main() {\n\tactual_1 := " in p["test"] and "testing" not in p["test"], p["id"]
        assert re.search(rf"^func {p['entry_point']} \(", p["prompt"], re.M), p["id"]
    wrong, unused = go_wrong_and_unused(problems)
    results = execute("go", [(p, p["completion"]) for p in problems] + wrong + [unused])
    canonical, failed, broken = results[:len(problems)], results[len(problems):-1], results[-1]
    assert [r["status"] for r in canonical] == ["passed"] * len(problems), canonical
    assert [r["status"] for r in failed] == ["failed"] * len(problems), failed
    assert all(re.search(r"panic: Exception --- test case \d failed to pass", r["stderr"]) for r in failed), failed
    assert broken["status"] == "compile_error" and "not used" in broken["stderr"], broken


# A MultiPL-E-style Go problem (its humaneval_to_go layout): the test is a `go test` function over a table of cases.
GO_TEST_PROBLEM = {
    "id": "multipl-e/sum_list", "entry_point": "sum_list",
    "prompt": "package sum_list_test\n\nimport (\n    \"testing\"\n    \"fmt\"\n)\n\n"
              "// Return the sum of all elements in the list.\n// >>> sum_list([]int{1, 2, 3})\n// 6\n"
              "func sum_list(nums []int) int {\n",
    "completion": "\ttotal := 0\n\tfor _, x := range nums {\n\t\ttotal += x\n\t}\n\treturn total\n}\n",
    "test": "func TestSum_List(t *testing.T) {\n  candidate := sum_list\n\ttype test struct {\n"
            "\t\tactual   interface{}\n\t\texpected interface{}\n\t}\n   tests := []test{\n"
            "     { actual: candidate([]int{1, 2, 3}), expected: 6 },\n"
            "     { actual: candidate([]int{}), expected: 0 },\n"
            "     { actual: candidate([]int{-4, 10}), expected: 6 },\n   }\n\n"
            "\tfor i, tc := range tests {\n\t\tt.Run(fmt.Sprintf(\"test num % d\", i), func(t *testing.T) {\n"
            "\t\t\tif fmt.Sprintf(\"%v\", tc.actual) != fmt.Sprintf(\"%v\", tc.expected) {\n"
            "\t\t\t\tt.Errorf(\"expected '%s', got '%s'\", tc.expected, tc.actual)\n\t\t\t}\n\t\t})\n\t}\n}\n",
}


def test_go_test_style_problems_run_under_go_test_and_wrong_solutions_fail():
    """A Go test that is a `func TestXxx(t *testing.T)` (MultiPL-E, HumanEval-X) runs under `go test`: the correct
    solution passes, a wrong answer fails with go test's report and an unused variable does not compile."""
    require_toolchain("go")
    assert get_language("go").for_problem(GO_TEST_PROBLEM).source == "main_test.go"
    wrong, unused = go_wrong_and_unused([GO_TEST_PROBLEM])
    results = execute("go", [(GO_TEST_PROBLEM, GO_TEST_PROBLEM["completion"])] + wrong + [unused])
    assert [r["status"] for r in results] == ["passed", "failed", "compile_error"], results
    assert "--- FAIL: TestSum_List/test_num__0" in results[1]["stderr"], results[1]  # MultiPL-E's "% d" subtest names
    assert "not used" in results[2]["stderr"], results[2]


def test_codesearch_trains_and_retrieval_targets_do_not():
    assert [t.name for t in condition_tasks("codexglue_codesearch+mbpp")] == ["codexglue_codesearch", "mbpp"]
    assert get_task("codexglue_codesearch").trains and not get_task("tatoeba").trains
    with pytest.raises(Exception, match="tatoeba cannot be trained on"):
        condition_tasks("tatoeba")


def test_contrastive_code_search_training_raises_dev_mrr(tmp_path, sample_root, monkeypatch):
    monkeypatch.setenv("XSTILTS_CHECKPOINTS", str(tmp_path / "ckpt"))
    dataset = tmp_path / "ds"
    validate_tasks([], str(sample_root), dataset, tmp_path / "r.html", tmp_path / "r.md",
                   intermediates=["codexglue_codesearch"])
    dev = read_split(dataset, "codexglue_codesearch", "validation")
    settings = Settings(max_length=64)

    def dev_mrr(encoder_path: str) -> float:
        encoder, tokenizer = load_encoder(encoder_path)
        run = kinds.torch_runner(MeanPooledEncoder(encoder, 0).eval(), None, RETRIEVAL, torch.device("cpu"))
        return kinds.retrieval_dev_score(run, dev, tokenizer, settings, 64)["mrr"]

    before = dev_mrr("tiny")
    config = TrainConfig.from_dict({"epochs": 2, "batch_size": 32, "learning_rate": 1e-3, "max_length": 64,
                                    "patience": 0})
    result = finetune(["codexglue_codesearch"], dataset, "tiny", tmp_path / "model", config)
    after = dev_mrr(str(tmp_path / "model" / "encoder"))
    print(f"code search dev MRR: {before:.3f} before, {after:.3f} after {result['steps']} steps")
    assert result["losses"][-1] < result["losses"][0]
    assert after > before + 0.2
    assert result["best_dev_score"] == pytest.approx(after, abs=1e-6)  # the dev score is the same MRR
    info = (tmp_path / "model" / "heads.json").read_text()
    assert '"contrastive"' in info and not (tmp_path / "model" / "heads" / "codexglue_codesearch.safetensors").exists()
