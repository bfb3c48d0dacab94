"""Restarts as a grid dimension: gather over seeds, the report's statistics (mean ± std, intervals, paired tests,
Holm), significance-gated verdicts, `xstilts compare`, and the promotion gate's interval."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from xstilts.errors import ConfigError, DataError
from xstilts.evaluate.compare import compare_runs
from xstilts.evaluate.report import build_report
from xstilts.evaluate.summary import gather_results, summarize, load_results

from grid_results import write_result

SEEDS = (1, 2, 3)
# target → condition → seed → score of each language (100 examples each)
BASE = {"xnli": {"none": 0.60, "mnli": 0.75, "sst2": 0.61}, "tatoeba": {"none": 0.50, "mnli": 0.50, "sst2": 0.52}}
JITTER = {1: 0.0, 2: 0.02, 3: -0.01}


def run_folder(root: Path, seeds=SEEDS, base=BASE, languages=("en", "de"), skip=None) -> list[Path]:
    """A run laid out as the pipeline gathers it: per condition × seed, per condition; returns the condition folders."""
    gathered = []
    for condition in base["xnli"]:
        per_seed = []
        for seed in seeds:
            files = []
            for target, per_condition in base.items():
                if skip == (target, condition, seed):
                    continue
                score = round(per_condition[condition] + JITTER[seed], 2)
                files.append(write_result(root / f"{condition}-{seed}-{target}", target, condition,
                                          {lang: score for lang in languages}, seed=seed))
            per_seed.append(root / f"gather-{condition}-{seed}")
            gather_results(files, per_seed[-1])
        gathered.append(root / f"gather-{condition}")
        gather_results(per_seed, gathered[-1])
    return gathered


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    summary = build_report(run_folder(root / "run"), root / "report", md_path=root / "report.md")
    return root, summary


def test_gathered_folders_carry_every_seed_and_their_predictions(report):
    root, _ = report
    data = json.loads((root / "run" / "gather-mnli" / "gathered.json").read_text())
    assert data["seeds"] == [1, 2, 3] and len(data["results"]) == 6
    for r in data["results"]:
        assert (root / "run" / "gather-mnli" / r["predictions"] / "en.jsonl").is_file()
    assert r["predictions"] == f"predictions/mnli/seed-{r['seed']}/{r['task']}"
    assert (root / "report" / "predictions" / "sst2" / "seed-3" / "tatoeba" / "de.jsonl").is_file()


def test_summary_has_mean_std_intervals_and_adjusted_tests(report):
    _, summary = report
    assert summary["format"] == 2 and summary["seeds"] == [1, 2, 3]
    per_seed = [0.75 + JITTER[s] for s in SEEDS]
    assert summary["scores"]["xnli"]["mnli"]["en"] == pytest.approx(np.mean(per_seed))
    cell = summary["statistics"]["cells"]["xnli"]["mnli"]["en"]
    assert cell["std"] == pytest.approx(np.std(per_seed, ddof=1))
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(per_seed), scale=scipy_stats.sem(per_seed))
    assert cell["ci95"] == pytest.approx([low, high])
    for key in ("p_value", "p_adjusted", "significant", "delta", "delta_ci95", "method"):
        assert key in cell
    assert "paired bootstrap" in cell["method"] and "seeds" in cell["method"]
    assert summary["statistics"]["method"]["correction"] == "holm"
    # +15 points on every seed, identical examples otherwise: significant; sst2's +1 on xnli is not
    assert summary["statistics"]["task_average"]["xnli"]["mnli"]["significant"]
    assert not summary["statistics"]["task_average"]["xnli"]["sst2"]["significant"]
    assert summary["best_intermediate"]["xnli"]["condition"] == "mnli"
    # tatoeba: sst2 has the highest mean (+2) but the gain is not significant → no best intermediate declared
    best = summary["best_intermediate"]["tatoeba"]
    assert best["candidate"] == "sst2" and best["condition"] is None and not best["significant"]
    # identical predictions: δ = 0, p = 1
    same = summary["statistics"]["cells"]["tatoeba"]["mnli"]["en"]
    assert same["delta"] == 0 and same["p_value"] == 1 and same["p_adjusted"] == 1


def test_report_shows_mean_std_marks_and_a_forest_plot(report):
    root, _ = report
    md = (root / "report.md").read_text()
    assert "3 seeds (1, 2, 3): cells show mean ± std over seeds" in md
    assert "| xnli | accuracy | 60.3 ± 1.5 | 75.3 ± 1.5 | 61.3 ± 1.5 | +15.0* | +1.0 | mnli |" in md
    assert "**xnli**: best intermediate **mnli**" in md
    assert "**tatoeba**: no condition differs significantly from `none`" in md
    assert "## Significance" in md and "Holm-adjusted" in md
    assert (root / "report" / "forest.png").stat().st_size > 1000


def test_one_seed_has_no_std_and_an_example_bootstrap_interval(tmp_path):
    summary = build_report(run_folder(tmp_path / "run", seeds=(1,)), tmp_path / "report")
    cell = summary["statistics"]["cells"]["xnli"]["none"]["en"]
    assert cell["std"] is None and cell["n_seeds"] == 1 and "bootstrap over test examples" in cell["ci95_method"]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "1 seed (1): no std" in md and "| xnli | accuracy | 60.0 | 75.0 | 61.0 |" in md


def test_a_condition_that_wins_on_every_example(tmp_path):
    base = {"xnli": {"none": 0.0, "mnli": 1.0}}
    summary = summarize(load_results(run_folder(tmp_path, seeds=(1,), base=base)), n_resamples=2000)
    entry = summary["statistics"]["cells"]["xnli"]["mnli"]["en"]
    assert entry["delta"] == 1 and entry["p_value"] == pytest.approx(1 / 2001) and entry["significant"]


def test_holes_and_mismatched_predictions_are_named(tmp_path):
    with pytest.raises(ConfigError, match="target task 'tatoeba', condition 'mnli': no results for seed 2"):
        summarize(load_results(run_folder(tmp_path / "a", skip=("tatoeba", "mnli", 2))))
    folders = run_folder(tmp_path / "b", seeds=(1,))
    # one example id replaced: the test sets of none and mnli no longer match
    path = tmp_path / "b" / "gather-mnli" / "predictions" / "mnli" / "seed-1" / "xnli" / "en.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[-1]["id"] = "other"
    path.unlink()  # a hard link to the eval step's file: replace, do not edit in place
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="other"):
        summarize(load_results(folders))
    rows[-1]["id"] = "xnli-99"
    rows[0]["score"] = 1 - rows[0]["score"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="the per-example records give .* results.json says"):
        summarize(load_results(folders))
    rows[0]["score"] = 1 - rows[0]["score"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path.parent / "de.jsonl").unlink()
    with pytest.raises(DataError, match="de.jsonl: missing"):
        summarize(load_results(folders))


def test_compare_two_runs(tmp_path):
    a = build_report(run_folder(tmp_path / "ra"), tmp_path / "A")
    assert a["seeds"] == [1, 2, 3]
    same = compare_runs(tmp_path / "A", tmp_path / "A", tmp_path / "cmp")
    assert all(e["p_value"] == 1 and e["delta"] == 0 for e in same["xtreme_average"].values())
    better = {t: {c: (s + 0.1 if c == "mnli" else s) for c, s in per.items()} for t, per in BASE.items()}
    build_report(run_folder(tmp_path / "rb", base=better), tmp_path / "B")
    result = compare_runs(tmp_path / "A", tmp_path / "B")
    assert result["xtreme_average"]["mnli"]["delta"] == pytest.approx(0.1)
    assert result["xtreme_average"]["mnli"]["significant"] and not result["xtreme_average"]["none"]["significant"]
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["method"]["correction"] == "holm"
    build_report(run_folder(tmp_path / "rc", seeds=(1, 2)), tmp_path / "C")
    with pytest.raises(ConfigError, match=r"seeds differ between the runs: A \[1, 2, 3\], B \[1, 2\]"):
        compare_runs(tmp_path / "A", tmp_path / "C")
    build_report(run_folder(tmp_path / "rd", languages=("en",)), tmp_path / "D")
    with pytest.raises(DataError, match="languages differ: de only in A"):
        compare_runs(tmp_path / "A", tmp_path / "D")
    old = tmp_path / "old"
    old.mkdir()
    summary = json.loads((tmp_path / "A" / "summary.json").read_text())
    for key in ("format", "statistics"):
        summary.pop(key)
    (old / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(DataError, match="an older summary format"):
        compare_runs(old, tmp_path / "A")


def test_compare_command_prints_and_writes(tmp_path):
    build_report(run_folder(tmp_path / "ra", seeds=(1,)), tmp_path / "A")
    done = subprocess.run([sys.executable, "-m", "xstilts.cli.main", "compare", str(tmp_path / "A"),
                           str(tmp_path / "A"), "--out", str(tmp_path / "cmp"), "--resamples", "500"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "XTREME average" in done.stdout and (tmp_path / "cmp" / "compare.md").is_file()
    bad = subprocess.run([sys.executable, "-m", "xstilts.cli.main", "compare", str(tmp_path / "A"),
                          str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "nowhere: no summary.json" in bad.stderr and "Traceback" not in bad.stderr


def test_promotion_gate_uses_the_candidates_interval(tmp_path):
    from xstilts.ops.promotion import load_candidate

    build_report(run_folder(tmp_path / "r"), tmp_path / "report")
    candidate = load_candidate(tmp_path / "report" / "summary.json", "xnli", "mnli")
    assert candidate["ci95"][0] < candidate["score"] < candidate["ci95"][1]
    assert "t interval over seeds" in candidate["ci95_method"]


def test_seeds_parameter_and_presets():
    from xstilts.config import load_params, preset, split_seeds

    assert preset("tiny")["seeds"] == [1] and preset("tiny-seeds")["seeds"] == [1, 2, 3]
    assert preset("xtreme-grid")["seeds"] == [1, 2, 3]
    assert split_seeds("1, 2,3") == [1, 2, 3]
    with pytest.raises(ConfigError, match="--seeds: expected comma-separated whole numbers"):
        split_seeds("1,two")
    with pytest.raises(ConfigError, match="seeds: value error, seeds must differ.*1 is given twice"):
        load_params(overrides={"seeds": [1, 1]})
    with pytest.raises(ConfigError, match="seeds: list should have at least 1 item"):
        load_params(overrides={"seeds": []})


def test_readme_worked_example():
    from xstilts.evaluate import statistics as st

    none = {1: [1, 1, 1, 1, 1, 0, 0, 0], 2: [1, 1, 1, 1, 0, 0, 0, 0], 3: [1, 1, 1, 1, 1, 0, 0, 0]}
    mnli = {1: [1, 1, 1, 1, 1, 1, 0, 0], 2: [1, 1, 1, 1, 1, 1, 0, 0], 3: [1, 1, 1, 1, 1, 1, 1, 0]}
    rounded = lambda values: [round(100 * v, 1) for v in values]  # noqa: E731
    a, b = st.seed_summary(none), st.seed_summary(mnli)
    assert rounded([a["mean"], a["std"], *a["ci95"]]) == [58.3, 7.2, 40.4, 76.3]
    assert rounded([b["mean"], b["std"], *b["ci95"]]) == [79.2, 7.2, 61.2, 97.1]
    test = st.paired_test(none, mnli)
    assert rounded([test["delta"], *test["delta_ci95"]]) == [20.8, 0.0, 50.0] and round(test["p_value"], 3) == 0.154
    assert round(st.paired_test(none, mnli, method="permutation")["p_value"], 3) == 0.251


def test_the_report_takes_the_gates_summary_only_for_the_same_results(tmp_path):
    """The promotion gate's decision folder holds the summary of exactly its results (summary-inputs.json): the
    report reuses it for the same results (the same summary.json as computing it), and not for other results."""
    from xstilts.evaluate.summary import SUMMARY_INPUTS, results_fingerprint, summary_for
    from xstilts.io import write_json
    from xstilts.ops.promotion import gate_run

    folders = run_folder(tmp_path / "run")
    decision = tmp_path / "decision"
    gate_run(folders, decision)
    assert json.loads((decision / SUMMARY_INPUTS).read_text()) == results_fingerprint(folders)
    assert summary_for(folders, decision) == json.loads(json.dumps(summarize(load_results(folders))))
    build_report(folders, tmp_path / "with", decision=decision)
    build_report(folders, tmp_path / "without")
    with_gate = json.loads((tmp_path / "with" / "summary.json").read_text())
    with_gate.pop("promotion", None)
    assert with_gate == json.loads((tmp_path / "without" / "summary.json").read_text())
    assert summary_for(folders[:2], decision) is None  # other results: computed afresh
    write_json(decision / SUMMARY_INPUTS, ["0" * 16] * len(folders))
    assert summary_for(folders, decision) is None
