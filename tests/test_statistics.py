"""xstilts.evaluate.statistics against independent computations: scipy.stats.bootstrap (percentile intervals),
scipy.stats.permutation_test (paired, permutation_type='samples'), scipy.stats.false_discovery_control (BH), Holm's
procedure from its definition, Student's t from scipy.stats.t; the vectorised paths against the looped corpus-metric
path; edge cases (one seed, identical predictions, a condition that wins on every example) and bad input."""

import json
import time

import numpy as np
import pytest
from scipy import stats

from xstilts.errors import ConfigError, DataError
from xstilts.evaluate.statistics import (
    adjust,
    grid_statistics,
    micro_f1,
    paired_test,
    paired_test_average,
    seed_summary,
    summary_average,
    xtreme_weights,
)
from xstilts.kinds.metrics import xtreme_average


def runs(matrix, ids=None, seeds=None):
    """{seed: {id: value}} from a seeds × examples matrix (or records per seed)."""
    ids = [f"q{i}" for i in range(len(matrix[0]))] if ids is None else ids
    seeds = range(1, len(matrix) + 1) if seeds is None else seeds
    return {s: dict(zip(ids, row)) for s, row in zip(seeds, matrix)}


def pair(n=400, k=1, p_a=0.70, p_b=0.74, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((k, n)) < p_a).astype(float), (rng.random((k, n)) < p_b).astype(float)


# -------------------------------------------------------------------------------------- against scipy.stats


def test_one_seed_ci_is_scipy_percentile_bootstrap_over_examples():
    a, _ = pair(n=500)
    ours = seed_summary(runs(a), n_resamples=10_000, seed=1)
    ref = stats.bootstrap((a[0],), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(7))
    assert ours["mean"] == pytest.approx(a.mean())
    assert ours["ci95"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], abs=0.004)
    assert ours["std"] is None and ours["n_seeds"] == 1 and "bootstrap" in ours["ci95_method"]


def test_delta_ci_is_scipy_paired_percentile_bootstrap():
    a, b = pair(n=600, p_a=0.6, p_b=0.65)
    ours = paired_test(runs(a), runs(b), n_resamples=10_000, seed=3)
    ref = stats.bootstrap((a[0], b[0]), lambda x, y, axis=-1: y.mean(axis) - x.mean(axis), paired=True,
                          n_resamples=10_000, method="percentile", rng=np.random.default_rng(11))
    assert ours["delta"] == pytest.approx(b.mean() - a.mean())
    assert ours["delta_ci95"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], abs=0.004)


@pytest.mark.parametrize("k", [1, 3])
def test_permutation_p_value_matches_scipy_paired_permutation_test(k):
    a, b = pair(n=300, k=k, p_a=0.70, p_b=0.75, seed={1: 1, 3: 2}[k])
    ours = paired_test(runs(a), runs(b), method="permutation", n_resamples=10_000, seed=5)
    # The permutation swaps an example's records between the systems in every seed at once: the same as scipy's
    # paired permutation of the per-example seed means.
    x, y = a.mean(axis=0), b.mean(axis=0)
    ref = stats.permutation_test((x, y), lambda u, v, axis=-1: v.mean(axis) - u.mean(axis), vectorized=True,
                                 permutation_type="samples", n_resamples=10_000, alternative="two-sided",
                                 rng=np.random.default_rng(13))
    assert 0.01 < ref.pvalue < 0.5  # a p-value where the Monte-Carlo comparison means something
    assert ours["p_value"] == pytest.approx(ref.pvalue, abs=0.02)
    assert ours["delta"] == pytest.approx(ref.statistic)
    assert "permutation" in ours["method"]


def test_bootstrap_p_value_agrees_with_the_paired_t_test_on_a_large_sample():
    rng = np.random.default_rng(2)
    a = rng.normal(0.5, 0.2, (1, 3000))
    b = a + rng.normal(-0.004, 0.2, (1, 3000))
    ours = paired_test(runs(a), runs(b), n_resamples=10_000, seed=0)
    ref = stats.ttest_rel(b[0], a[0])
    assert 0.01 < ref.pvalue < 0.5
    assert ours["p_value"] == pytest.approx(ref.pvalue, abs=0.03)


def test_t_interval_over_seeds_matches_scipy():
    rng = np.random.default_rng(4)
    per_seed_accuracy = [0.61, 0.66, 0.58, 0.64]
    matrix = np.array([(rng.random(200) < p).astype(float) for p in per_seed_accuracy])
    ours = seed_summary(runs(matrix))
    scores = matrix.mean(axis=1)
    lo, hi = stats.t.interval(0.95, len(scores) - 1, loc=scores.mean(), scale=stats.sem(scores))
    assert ours["mean"] == pytest.approx(scores.mean())
    assert ours["std"] == pytest.approx(np.std(scores, ddof=1))
    assert ours["ci95"] == pytest.approx([lo, hi]) and ours["ci95_method"] == "t interval over seeds"
    assert ours["per_seed"] == pytest.approx(scores.tolist()) and ours["n_seeds"] == 4


def test_bh_equals_scipy_false_discovery_control():
    rng = np.random.default_rng(5)
    for m in (1, 2, 7, 50):
        p = np.concatenate([rng.random(m // 2) * 0.01, rng.random(m - m // 2)])
        p[-1:] = p[:1]  # a tie
        assert adjust(p, "bh") == pytest.approx(stats.false_discovery_control(p, method="bh"))


def step_down_holm(p, alpha):
    """Holm 1979 from its definition: order the p-values; reject H_(1), H_(2), … while p_(i) ≤ α / (m − i + 1)."""
    order = np.argsort(p)
    rejected = np.zeros(len(p), bool)
    for i, j in enumerate(order):
        if p[j] > alpha / (len(p) - i):
            break
        rejected[j] = True
    return rejected


def step_up_bh(p, alpha):
    """Benjamini–Hochberg from its definition: reject the k smallest, k the largest i with p_(i) ≤ i·α / m."""
    order = np.argsort(p)
    passing = [i + 1 for i, j in enumerate(order) if p[j] <= (i + 1) * alpha / len(p)]
    rejected = np.zeros(len(p), bool)
    rejected[order[:max(passing, default=0)]] = True
    return rejected


def test_adjusted_p_values_reject_exactly_what_the_procedures_reject():
    """An adjusted p-value is the smallest α at which the procedure rejects that hypothesis."""
    rng = np.random.default_rng(6)
    p = np.concatenate([rng.random(6) * 0.02, rng.random(14), [0.004, 0.004]])
    holm, bh = adjust(p, "holm"), adjust(p, "bh")
    # α on a grid and just either side of every adjusted value (exactly at one, rounding decides)
    for alpha in np.concatenate([np.linspace(0.001, 0.2, 400), holm * (1 - 1e-9), holm * (1 + 1e-9),
                                 bh * (1 - 1e-9), bh * (1 + 1e-9)]).clip(0, 0.999):
        assert np.array_equal(holm <= alpha, step_down_holm(p, alpha)), alpha
        assert np.array_equal(bh <= alpha, step_up_bh(p, alpha)), alpha
    assert np.all(holm >= bh) and np.all(holm <= 1) and np.all(holm >= p)


def test_adjust_keeps_the_keys_and_rejects_bad_input():
    assert adjust({"x": 0.01, "y": 0.04}) == pytest.approx({"x": 0.02, "y": 0.04})
    assert adjust([]).shape == (0,)
    with pytest.raises(ConfigError, match="unknown correction 'bonferroni'"):
        adjust([0.1], "bonferroni")
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        adjust([0.1, 1.5])


# -------------------------------------------------------------------------------------- corpus metrics


def f1_of(records):
    """A corpus metric, looped: micro F1 from per-sentence [tp, predicted, gold]."""
    tp, predicted, gold = np.sum(records, axis=0)
    return 2 * tp / (predicted + gold) if predicted + gold else 0.0


def tagging(n, k, recall, seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, (k, n))
    tp = rng.binomial(gold, recall)
    predicted = tp + rng.binomial(1, 0.2, (k, n))
    return np.stack([tp, predicted, gold], axis=-1)  # k × n × 3


@pytest.mark.parametrize("method", ["bootstrap", "permutation"])
def test_corpus_metric_loop_and_vectorised_paths_agree(method):
    a, b = tagging(60, 2, 0.6, 1), tagging(60, 2, 0.7, 2)
    looped = paired_test(runs(a), runs(b), f1_of, method=method, n_resamples=300, seed=9)
    summed = paired_test(runs(a), runs(b), micro_f1, method=method, n_resamples=300, seed=9)
    assert looped["delta"] == pytest.approx(np.mean([f1_of(b[s]) - f1_of(a[s]) for s in range(2)]))
    assert summed["delta"] == pytest.approx(looped["delta"])
    assert summed["delta_ci95"] == pytest.approx(looped["delta_ci95"])
    assert summed["p_value"] == pytest.approx(looped["p_value"])
    # and the mean metric's vectorised path against the same metric as a looped callable
    x, y = pair(n=80, k=3, seed=3)
    for resample_seeds in (True, False):
        kw = {"method": method, "n_resamples": 300, "seed": 2, "resample_seeds": resample_seeds}
        fast, slow = paired_test(runs(x), runs(y), **kw), paired_test(runs(x), runs(y), lambda r: np.mean(r), **kw)
        assert (fast["delta"], fast["p_value"]) == pytest.approx((slow["delta"], slow["p_value"]))
        assert fast["delta_ci95"] == pytest.approx(slow["delta_ci95"])
    one = seed_summary(runs(a[:1]), f1_of, n_resamples=200, seed=1)
    assert one["ci95"] == pytest.approx(seed_summary(runs(a[:1]), micro_f1, n_resamples=200, seed=1)["ci95"])


def test_corpus_f1_delta_ci_matches_scipy_bootstrap():
    a, b = tagging(800, 1, 0.6, 3), tagging(800, 1, 0.66, 4)
    ours = paired_test(runs(a), runs(b), micro_f1, n_resamples=5000, seed=1)

    def delta(ra, rb, axis=-1):
        def f1(r):
            totals = r.sum(axis=-2)
            return 2 * totals[..., 0] / (totals[..., 1] + totals[..., 2])
        return f1(rb) - f1(ra)

    # scipy resamples the first axis of each sample: pass the count vectors as samples of 3-vectors.
    index = np.arange(800)
    ref = stats.bootstrap((index,), lambda i, axis=-1: delta(a[0][i], b[0][i]), vectorized=True,
                          n_resamples=5000, method="percentile", rng=np.random.default_rng(3))
    assert ours["delta"] == pytest.approx(delta(a[0], b[0]))
    assert ours["delta_ci95"] == pytest.approx([ref.confidence_interval.low, ref.confidence_interval.high], abs=0.004)


# -------------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("method", ["bootstrap", "permutation"])
@pytest.mark.parametrize("k", [1, 3])
def test_identical_predictions_give_p_one_and_delta_zero(method, k):
    a, _ = pair(n=200, k=k)
    result = paired_test(runs(a), runs(a.copy()), method=method, n_resamples=2000)
    assert result["p_value"] == 1.0 and result["delta"] == 0.0 and result["delta_ci95"] == [0.0, 0.0]
    tagged = tagging(50, k, 0.5, 0)
    assert paired_test(runs(tagged), runs(tagged), f1_of, method=method, n_resamples=50)["p_value"] == 1.0
    average = paired_test_average({"de": runs(a), "fr": runs(a)}, {"de": runs(a), "fr": runs(a)}, method=method,
                                  n_resamples=500)
    assert average["p_value"] == 1.0 and average["delta"] == 0.0


@pytest.mark.parametrize("method", ["bootstrap", "permutation"])
def test_a_condition_that_wins_on_every_example_has_the_smallest_p(method):
    n, R = 100, 2000
    result = paired_test(runs(np.zeros((2, n))), runs(np.ones((2, n))), method=method, n_resamples=R)
    assert result["delta"] == 1.0 and result["p_value"] == 1 / (R + 1)
    rng = np.random.default_rng(0)
    base = rng.random((3, n)) * 0.5
    better = base + 0.1 + rng.random((3, n)) * 0.3  # better on every example, by varying margins
    result = paired_test(runs(base), runs(better), method=method, n_resamples=R)
    assert 1 / (R + 1) <= result["p_value"] < 0.01 and result["delta_ci95"][0] > 0


def test_one_seed_has_no_std_and_says_so():
    a, b = pair(n=100)
    summary = seed_summary(runs(a), n_resamples=500)
    assert summary["std"] is None and summary["n_seeds"] == 1
    json.dumps(summary)  # None → null, not 0
    test = paired_test(runs(a), runs(b), n_resamples=500)
    assert "seeds" not in test["method"] and test["seeds"] == [1]


def test_deterministic_given_the_seed():
    a, b = pair(n=300, k=2)
    first = paired_test(runs(a), runs(b), n_resamples=1000, seed=4)
    assert paired_test(runs(a), runs(b), n_resamples=1000, seed=4) == first
    assert paired_test(runs(a), runs(b), n_resamples=1000, seed=5)["delta_ci95"] != first["delta_ci95"]


def test_records_are_aligned_by_id_not_by_position():
    a, b = pair(n=50)
    ids = [f"q{i}" for i in range(50)]
    shuffled = {1: dict(reversed(list(runs(b, ids)[1].items())))}
    assert paired_test(runs(a, ids), shuffled, n_resamples=500) == paired_test(runs(a, ids), runs(b, ids),
                                                                                n_resamples=500)


def test_seeds_resampled_widen_the_interval_when_restarts_disagree():
    rng = np.random.default_rng(1)
    a = (rng.random((4, 2000)) < 0.7).astype(float)
    b = np.stack([(rng.random(2000) < p).astype(float) for p in (0.66, 0.78, 0.69, 0.80)])
    with_seeds = paired_test(runs(a), runs(b), n_resamples=2000)
    examples_only = paired_test(runs(a), runs(b), n_resamples=2000, resample_seeds=False)
    width = lambda r: r["delta_ci95"][1] - r["delta_ci95"][0]
    assert width(with_seeds) > 1.5 * width(examples_only)
    assert with_seeds["p_value"] > examples_only["p_value"]
    assert "test examples and seeds" in with_seeds["method"]


# -------------------------------------------------------------------------------------- averages


def test_task_average_is_paired_and_averages_within_each_resample():
    langs = {"de": pair(n=200, seed=1), "fr": pair(n=300, seed=2), "sw": pair(n=150, seed=3)}
    base = {lang: runs(a, [f"{lang}{i}" for i in range(a.shape[1])]) for lang, (a, _) in langs.items()}
    cond = {lang: runs(b, [f"{lang}{i}" for i in range(b.shape[1])]) for lang, (_, b) in langs.items()}
    average = paired_test_average(base, cond, n_resamples=2000)
    deltas = {lang: paired_test(base[lang], cond[lang], n_resamples=2000) for lang in langs}
    assert average["delta"] == pytest.approx(np.mean([d["delta"] for d in deltas.values()]))
    # independent test sets: the variance of the average is the mean of the variances / L (normal approximation)
    half = lambda r: (r["delta_ci95"][1] - r["delta_ci95"][0]) / 2
    expected = np.sqrt(sum(half(d) ** 2 for d in deltas.values())) / 3
    assert half(average) == pytest.approx(expected, rel=0.1)
    summary = summary_average(cond, n_resamples=500)
    assert summary["mean"] == pytest.approx(np.mean([b.mean() for _, b in langs.values()]))
    # a single cell's average is the cell
    assert paired_test_average({"de": base["de"]}, {"de": cond["de"]}, n_resamples=500) == \
        paired_test(base["de"], cond["de"], n_resamples=500)


def test_translated_test_sets_share_their_draws():
    """Languages with the same example ids (translations of one test set) are resampled together: an average of
    identical languages has the single language's interval, not one √L narrower."""
    a, b = pair(n=300, k=2)
    one = paired_test(runs(a), runs(b), n_resamples=1000, seed=3)
    same = paired_test_average({"de": runs(a), "fr": runs(a)}, {"de": runs(b), "fr": runs(b)}, n_resamples=1000,
                               seed=3)
    assert same["delta"] == pytest.approx(one["delta"])
    assert same["delta_ci95"][1] - same["delta_ci95"][0] == pytest.approx(one["delta_ci95"][1] - one["delta_ci95"][0],
                                                                          rel=0.1)


def test_xtreme_weights_give_the_xtreme_average():
    scores = {"xnli": {"de": 0.7, "fr": 0.8, "sw": 0.5}, "panx": {"de": 0.6}}
    weights = xtreme_weights([(t, lang) for t in scores for lang in scores[t]])
    assert sum(weights[(t, lang)] * v for t in scores for lang, v in scores[t].items()) == \
        pytest.approx(xtreme_average(scores))


def test_grid_statistics():
    rng = np.random.default_rng(0)
    targets = {"xnli": ["de", "sw"], "panx": ["de"]}
    metric = {"xnli": None, "panx": micro_f1}
    grid = {}
    for target, languages in targets.items():
        for condition, shift in (("none", 0.0), ("mnli", 0.08), ("sst2", 0.0)):
            for language in languages:
                if target == "panx":
                    grid[(target, condition, language)] = runs(tagging(120, 2, 0.5 + shift, rng.integers(1000)))
                else:
                    grid[(target, condition, language)] = runs((rng.random((2, 200)) < 0.6 + shift).astype(float))
    out = grid_statistics(grid, metric, n_resamples=400, correction="bh")
    json.dumps(out)
    cell = out["cells"]["xnli"]["mnli"]["de"]
    assert {"mean", "std", "n_seeds", "ci95", "delta", "delta_ci95", "p_value", "p_adjusted", "significant"} <= set(cell)
    assert "p_value" not in out["cells"]["xnli"]["none"]["de"] and out["cells"]["xnli"]["none"]["de"]["n_seeds"] == 2
    tests = [out["cells"][t][c][lang] for t in targets for c in ("mnli", "sst2") for lang in targets[t]] + \
            [out["task_average"][t][c] for t in targets for c in ("mnli", "sst2")] + \
            [out["xtreme_average"][c] for c in ("mnli", "sst2")]
    assert sorted(e["p_adjusted"] for e in tests) == pytest.approx(
        sorted(stats.false_discovery_control([e["p_value"] for e in tests])))
    assert all(e["significant"] == (e["p_adjusted"] < 0.05) for e in tests)
    task = out["task_average"]["xnli"]["mnli"]
    assert task["delta"] == pytest.approx(np.mean([out["cells"]["xnli"]["mnli"][lang]["delta"] for lang in ("de", "sw")]))
    assert out["xtreme_average"]["mnli"]["delta"] == pytest.approx(
        np.mean([out["task_average"][t]["mnli"]["delta"] for t in targets]))
    assert out["method"]["correction"] == "bh"
    assert "Benjamini" in out["method"]["citations"]["bh"]


# -------------------------------------------------------------------------------------- bad input


def test_ids_that_differ_are_named():
    a, b = pair(n=10)
    left, right = runs(a), runs(b)
    del right[1]["q3"]
    right[1]["zz"] = 1.0
    with pytest.raises(DataError, match=r"xnli/mnli/de: example ids differ between none seed 1 and mnli seed 1: "
                                        r"1 missing from mnli seed 1 \('q3'\), 1 extra in mnli seed 1 \('zz'\)"):
        paired_test(left, right, names=("none", "mnli"), where=("xnli", "mnli", "de"))
    with pytest.raises(DataError, match=r"between the test set and runs seed 1: 2 extra in runs seed 1 \('q8', 'q9'\)"):
        seed_summary(left, test_ids=[f"q{i}" for i in range(8)])
    uneven = {1: runs(a)[1], 2: dict(list(runs(a)[1].items())[:-1])}
    with pytest.raises(DataError, match=r"between runs seed 1 and runs seed 2: 1 missing from runs seed 2 \('q9'\)"):
        seed_summary(uneven)


def test_seeds_that_differ_are_a_config_error():
    a, b = pair(n=10, k=3)
    with pytest.raises(ConfigError, match=r"seeds differ between none \[1, 2, 3\] and mnli \[1, 2, 4\]"):
        paired_test(runs(a), runs(b, seeds=[1, 2, 4]), names=("none", "mnli"))
    grid = {("xnli", c, "de"): runs(a) for c in ("none", "mnli")}
    grid[("xnli", "mnli", "de")] = runs(b[:2])
    with pytest.raises(ConfigError, match=r"seeds differ between xnli/none/de \[1, 2, 3\] and xnli/mnli/de \[1, 2\]"):
        grid_statistics(grid, n_resamples=10)


def test_a_language_absent_from_one_side_is_named():
    a, b = pair(n=10)
    with pytest.raises(DataError, match=r"cells differ: sw in mnli but not in none"):
        paired_test_average({"de": runs(a)}, {"de": runs(b), "sw": runs(b)}, names=("none", "mnli"))
    grid = {("xnli", "none", "de"): runs(a), ("xnli", "none", "sw"): runs(a), ("xnli", "mnli", "de"): runs(b)}
    with pytest.raises(DataError, match=r"xnli: languages differ: sw in none but not in mnli"):
        grid_statistics(grid, n_resamples=10)
    with pytest.raises(ConfigError, match=r"xnli: no 'none' runs"):
        grid_statistics({("xnli", "mnli", "de"): runs(b)}, n_resamples=10)


def test_bad_records_and_options():
    with pytest.raises(DataError, match=r"runs seed 1, example 'q1': expected a finite number, got 'x'"):
        seed_summary({1: {"q0": 1.0, "q1": "x"}})
    with pytest.raises(DataError, match=r"example 'q0': expected 3 finite numbers"):
        seed_summary({1: {"q0": [1, 2]}}, micro_f1)
    with pytest.raises(DataError, match="no runs"):
        seed_summary({})
    with pytest.raises(DataError, match="no examples"):
        seed_summary({1: {}}, test_ids=[])
    a, b = pair(n=10)
    with pytest.raises(ConfigError, match="unknown test method 'ttest'"):
        paired_test(runs(a), runs(b), method="ttest")
    with pytest.raises(ConfigError, match="n_resamples must be a positive integer"):
        paired_test(runs(a), runs(b), n_resamples=0)


# -------------------------------------------------------------------------------------- speed


def test_mean_metric_bootstrap_is_vectorised():
    a, b = pair(n=5000, p_a=0.8, p_b=0.81)
    paired_test(runs(a), runs(b), n_resamples=100)  # warm up
    for method in ("bootstrap", "permutation"):
        start = time.process_time()  # CPU time: the other processes on a shared machine do not count
        result = paired_test(runs(a), runs(b), method=method, n_resamples=10_000)
        elapsed = time.process_time() - start
        assert result["n_resamples"] == 10_000
        assert elapsed < 1.5, (method, elapsed)  # ≈ 0.2 s on an idle core
