"""Statistics for the report: how sure is a score, and is a condition's difference from `none` more than noise?

Data model. A *cell* is one target × condition × language. Its runs are ``{seed: {example id: record}}`` (a list of
records instead of the inner mapping means ids 0..n-1): one fine-tune per seed, scored per test example. A *metric*
turns a cell's records into one score:

* ``None`` (``MEAN``): records are per-example numbers (accuracy 0/1, EM, per-example F1, pass@1 per problem) and
  the score is their mean;
* a ``SummedMetric``: records are per-example count vectors and the score is a function of their sum over the
  examples (``micro_f1``: records ``[true positives, predicted, gold]`` — seqeval's entity F1, BUCC mining F1);
* any ``Callable[[list[record]], float]``: a corpus metric recomputed from the records of a subset of examples.

The first two are bootstrapped with index matrices (no Python loop: 10 000 resamples of 5 000 examples take a fraction
of a second); the third loops, so give it fewer resamples or rewrite it as a ``SummedMetric``.

Methods (named in every result, cited in ``CITATIONS``):

* ``seed_summary``: mean and standard deviation (ddof=1) over seeds; with ≥ 2 seeds the 95 % CI is Student's t
  interval over the seed scores (restart variance); with one seed there is no std (``None``, never 0) and the CI is a
  percentile bootstrap over test examples (test-set sampling variance only — say so when reporting it).
* ``paired_test`` (condition ``b`` vs baseline ``a``): by default the paired bootstrap (Koehn 2004; Berg-Kirkpatrick
  et al. 2012; Dror et al. 2018): every replicate resamples the test examples with replacement — the same indices for
  both systems and every seed — and, with ≥ 2 seeds, also resamples the seeds with replacement (the same seeds for both
  systems, paired by seed value: a two-stage bootstrap, Davison & Hinkley 1997 §3.8), so restart variance counts too.
  The statistic is δ = mean over seeds of metric(b) − metric(a). p is two-sided, from the bootstrap distribution
  shifted to the null (Efron & Tibshirani 1993 §16.4): p = (1 + #{|δ* − δ| ≥ |δ|}) / (R + 1); the CI of δ is the
  percentile interval of δ*. ``method="permutation"``: approximate randomisation (Noreen 1989; Riezler & Maxwell
  2005): each replicate swaps the two systems' records of each example (all seeds at once) with probability ½;
  p = (1 + #{|δ_perm| ≥ |δ|}) / (R + 1), and the CI of δ comes from the paired bootstrap over examples. It holds each
  seed's fine-tune fixed (restart variance does not count), which is why the bootstrap is the default. Either way
  p ≥ 1/(R+1), identical predictions give δ = 0 and p = 1, and results are deterministic given ``seed``.
* Averages (``paired_test_average``, ``summary_average``): a task average is the mean over its languages and the
  XTREME average the mean over tasks of those (``xtreme_weights``); within each replicate the per-cell scores are
  averaged with those weights, so the test of an average is paired too. Cells whose example ids are the same set
  (translations of one test set: XNLI, XQuAD, …) share their resampling draws; other cells are drawn independently.
* ``adjust``: Holm's step-down (default; controls the family-wise error) or Benjamini–Hochberg (false discovery rate)
  adjusted p-values. ``grid_statistics`` adjusts every test of the grid (cells, task averages, XTREME averages) as one
  family and marks ``significant = p_adjusted < alpha``.

Bad input is a one-line DataError (ids or languages that differ, non-numeric records) or ConfigError (seed sets that
differ, unknown method) naming what differs.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from xstilts.errors import ConfigError, DataError

BASELINE = "none"
CONFIDENCE = 0.95  # every interval is a 95 % interval: the key is "ci95"
N_RESAMPLES = 10_000
ALPHA = 0.05
METHODS = ("bootstrap", "permutation")
CORRECTIONS = ("holm", "bh")
_BLOCK = 1 << 22  # numbers drawn per block (resamples × examples): 32 MiB of indices
_TOL = 1e-12  # relative tolerance when comparing a resampled statistic with the observed one (rounding, not ties)

CITATIONS = {
    "bootstrap": "paired bootstrap over test examples: Koehn 2004 (EMNLP), Berg-Kirkpatrick, Burkett & Klein 2012 "
                 "(EMNLP), Dror, Baumer, Shlomov & Reichart 2018 (ACL) 'The Hitchhiker's Guide to Testing Statistical "
                 "Significance in NLP'; two-sided p from the shifted bootstrap distribution: Efron & Tibshirani 1993, "
                 "An Introduction to the Bootstrap, §16.4",
    "seeds": "seeds resampled too (two-stage bootstrap of hierarchical data): Davison & Hinkley 1997, Bootstrap "
             "Methods and their Application, §3.8",
    "permutation": "approximate randomisation (paired permutation test): Noreen 1989, Computer-Intensive Methods for "
                   "Testing Hypotheses; Riezler & Maxwell 2005 (ACL workshop on MT evaluation); Dror et al. 2018",
    "holm": "Holm 1979, A simple sequentially rejective multiple test procedure, Scand. J. Statist. 6:65-70",
    "bh": "Benjamini & Hochberg 1995, Controlling the false discovery rate, J. R. Statist. Soc. B 57:289-300",
    "t": "Student's t interval over seed scores (mean ± t(0.975, k−1)·s/√k)",
}

Runs = Mapping[Any, Any]  # {seed: {example id: record}} or {seed: [record, ...]}


@dataclass(frozen=True)
class SummedMetric:
    """A corpus metric that is a function of per-example count vectors summed over the examples. ``finish`` maps
    totals of shape (..., width) to scores of shape (...), vectorised (it is called on every resample at once)."""

    finish: Callable[[np.ndarray], np.ndarray]
    width: int
    name: str = "summed"


def _f1(totals: np.ndarray) -> np.ndarray:
    tp, predicted, gold = totals[..., 0], totals[..., 1], totals[..., 2]
    denominator = predicted + gold
    return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), 0.0)


micro_f1 = SummedMetric(_f1, 3, "micro F1")
"""Micro F1 from per-example ``[true positives, predicted, gold]`` (entities for tagging as seqeval counts them,
pairs for BUCC): 2·tp / (predicted + gold), 0 when there is nothing predicted or gold."""

MEAN = None  # the default metric: the mean of per-example numbers


# ---------------------------------------------------------------------------------------------------- alignment


def _records(seed_runs: Any, what: str) -> tuple[list, list]:
    if isinstance(seed_runs, Mapping):
        return list(seed_runs.keys()), list(seed_runs.values())
    if isinstance(seed_runs, (Sequence, np.ndarray)) and not isinstance(seed_runs, (str, bytes)):
        return list(range(len(seed_runs))), list(seed_runs)
    raise DataError(f"{what}: expected {{example id: record}} or a list of records, got {type(seed_runs).__name__}")


def _examples(ids: Iterable) -> str:
    ids = list(ids)
    try:
        ids = sorted(ids)
    except TypeError:
        pass
    shown = ", ".join(repr(i) for i in ids[:3])
    return f"{shown}{', …' if len(ids) > 3 else ''}"


def _names(keys: Iterable) -> str:
    keys = [_where(k)[:-2] for k in keys]
    return ", ".join(keys[:3]) + (", …" if len(keys) > 3 else "")


def _id_difference(reference: Sequence, reference_name: str, ids: Iterable, name: str) -> str | None:
    want, have = set(reference), set(ids)
    missing, extra = want - have, have - want
    if not missing and not extra:
        return None
    parts = [f"{len(missing)} missing from {name} ({_examples(missing)})" if missing else "",
             f"{len(extra)} extra in {name} ({_examples(extra)})" if extra else ""]
    return f"example ids differ between {reference_name} and {name}: " + ", ".join(p for p in parts if p)


@dataclass
class _System:
    seeds: tuple
    data: Any  # mean: (k, n) floats; summed: (k, n, width) floats; callable: k lists of records


@dataclass
class _Cell:
    key: Any
    where: str
    ids: list
    seeds: tuple
    metric: Any
    systems: list  # one _System (a summary) or two (baseline, condition)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        return "mean" if self.metric is None else "summed" if isinstance(self.metric, SummedMetric) else "callable"


def _seed_list(runs: Any, what: str) -> list:
    if not isinstance(runs, Mapping) or not runs:
        raise DataError(f"{what}: no runs (expected {{seed: {{example id: record}}}} with at least one seed)")
    try:
        return sorted(runs)
    except TypeError:
        return sorted(runs, key=repr)


def _convert(records: list, ids: list, metric: Any, what: str) -> Any:
    if metric is not None and not isinstance(metric, SummedMetric):
        if not callable(metric):
            raise ConfigError(f"{what}: metric must be None (mean), a SummedMetric or a callable, got {metric!r}")
        return records
    width = None if metric is None else metric.width
    try:
        values = np.asarray(records, dtype=float)
    except (TypeError, ValueError):
        values = None
    shape = (len(ids),) if width is None else (len(ids), width)
    if values is None or values.shape != shape or not np.isfinite(values).all():
        for i, r in zip(ids, records):
            try:
                v = np.asarray(r, dtype=float)
                ok = v.shape == (() if width is None else (width,)) and np.isfinite(v).all()
            except (TypeError, ValueError):
                ok = False
            if not ok:
                expected = "a finite number" if width is None else f"{width} finite numbers"
                raise DataError(f"{what}, example {i!r}: expected {expected}, got {r!r}")
        raise DataError(f"{what}: records are not {'numbers' if width is None else f'vectors of {width}'}")
    return values


def _system(runs: Any, name: str, where: str, metric: Any, order: list | None, order_name: str) -> tuple[list, _System]:
    """One system's runs aligned to ``order`` (the reference ids; its own first seed's when None)."""
    what = f"{where}{name}"
    seeds = _seed_list(runs, what)
    rows = []
    for s in seeds:
        ids, records = _records(runs[s], f"{what} seed {s!r}")
        if order is None:
            if not ids:
                raise DataError(f"{what} seed {s!r}: no examples")
            order, order_name = ids, f"{name} seed {s!r}"
        elif (difference := _id_difference(order, order_name, ids, f"{name} seed {s!r}")) is not None:
            raise DataError(f"{where}{difference}")
        elif ids != order:
            position = dict(zip(ids, records))
            records = [position[i] for i in order]
        rows.append(_convert(records, order, metric, f"{what} seed {s!r}"))
    data = rows if metric is not None and not isinstance(metric, SummedMetric) else np.stack(rows)
    return order, _System(tuple(seeds), data)


def _prepare(key: Any, where: str, systems: Sequence[tuple[str, Any]], metric: Any,
             test_ids: Sequence | None = None) -> _Cell:
    order, order_name = (list(test_ids), "the test set") if test_ids is not None else (None, "")
    prepared = []
    for name, runs in systems:
        order, system = _system(runs, name, where, metric, order, order_name)
        if not prepared:
            order_name = order_name or f"{name} seed {system.seeds[0]!r}"
        elif system.seeds != prepared[0].seeds:
            raise ConfigError(f"{where}seeds differ between {systems[0][0]} {list(prepared[0].seeds)} and {name} "
                              f"{list(system.seeds)}: a paired test needs the same seeds on both sides")
        prepared.append(system)
    if not order:
        raise DataError(f"{where}no examples to score")
    return _Cell(key, where, order, prepared[0].seeds, metric, prepared)


def _where(key: Any) -> str:
    if key is None:
        return ""
    return ("/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)) + ": "


def _metric_for(metric: Any, key: Any) -> Any:
    if isinstance(metric, Mapping):
        for candidate in (key, key[0] if isinstance(key, tuple) and key else None):
            if candidate in metric:
                return metric[candidate]
        raise ConfigError(f"no metric for {key!r}: metric mapping has {sorted(map(str, metric))}")
    return metric


# ---------------------------------------------------------------------------------------------------- scores


def _scores(cell: _Cell, system: int, draw: np.ndarray | None = None) -> np.ndarray:
    """Per-seed scores of one system: shape (k,) observed, or (c, k) on the resamples ``draw`` (c × n indices)."""
    data = cell.systems[system].data
    if cell.kind == "callable":
        metric = cell.metric
        if draw is None:
            return np.array([float(metric(rows)) for rows in data])
        return np.array([[float(metric([rows[i] for i in row])) for rows in data] for row in draw])
    if draw is None:
        totals = data.sum(axis=1)
    else:
        k = data.shape[0]
        flat = np.moveaxis(data, 1, 0).reshape(cell.n, -1)  # n × (k·width)
        totals = _gather_sum(flat, draw).reshape((len(draw), k) + data.shape[2:])
    return totals / cell.n if cell.kind == "mean" else cell.metric.finish(totals)


def _gather_sum(values: np.ndarray, draw: np.ndarray) -> np.ndarray:
    """Σ over each row of ``draw`` of values[index]: values n × m, draw c × n → c × m. A few columns: one np.take per
    column; more: each row's counts of every example (one bincount), times the values."""
    c, n = draw.shape
    if values.shape[1] <= 3:
        columns = np.ascontiguousarray(values.T)
        return np.stack([np.take(column, draw).sum(axis=1) for column in columns], axis=1)
    counts = np.bincount((draw + (n * np.arange(c))[:, None]).ravel(), minlength=c * n).reshape(c, n)
    return counts @ values


def _boot_deltas(cell: _Cell, draw: np.ndarray, per_seed: bool) -> np.ndarray:
    """δ on each resample: (c, k) per seed, or (c, 1) already averaged over seeds."""
    if cell.kind == "mean":  # linear: resample the per-example differences
        difference = cell.systems[1].data - cell.systems[0].data  # k × n
        values = difference.T if per_seed else difference.mean(axis=0)[:, None]
        return _gather_sum(values, draw) / cell.n
    if cell.kind == "summed":  # both systems' totals from one pass over the draw
        both = np.concatenate([s.data for s in cell.systems])  # 2k × n × width
        totals = _gather_sum(np.moveaxis(both, 1, 0).reshape(cell.n, -1), draw).reshape((len(draw),) + both.shape[::2])
        scores = cell.metric.finish(totals)  # c × 2k
        k = len(cell.seeds)
        deltas = scores[:, k:] - scores[:, :k]
    else:
        deltas = _scores(cell, 1, draw) - _scores(cell, 0, draw)
    return deltas if per_seed else deltas.mean(axis=1, keepdims=True)


def _perm_deltas(cell: _Cell, swap: np.ndarray) -> np.ndarray:
    """δ averaged over seeds when each example's records are swapped between the systems where ``swap`` (c × n)."""
    a, b = cell.systems[0].data, cell.systems[1].data
    if cell.kind == "mean":
        difference = (b - a).mean(axis=0)
        return (difference.sum() - 2 * (swap.astype(float) @ difference)) / cell.n
    if cell.kind == "summed":
        k = a.shape[0]
        shift = swap.astype(float) @ np.moveaxis(b - a, 1, 0).reshape(cell.n, -1)  # c × (k·width)
        shift = shift.reshape((len(swap), k) + a.shape[2:])
        totals_a, totals_b = a.sum(axis=1), b.sum(axis=1)
        return (cell.metric.finish(totals_b - shift) - cell.metric.finish(totals_a + shift)).mean(axis=1)
    metric, out = cell.metric, np.empty(len(swap))
    for r, row in enumerate(swap):
        deltas = []
        for rows_a, rows_b in zip(a, b):
            swapped_a = [y if s else x for x, y, s in zip(rows_a, rows_b, row)]
            swapped_b = [x if s else y for x, y, s in zip(rows_a, rows_b, row)]
            deltas.append(float(metric(swapped_b)) - float(metric(swapped_a)))
        out[r] = np.mean(deltas)
    return out


# ---------------------------------------------------------------------------------------------------- resampling


def _groups(cells: Sequence[_Cell]) -> list[tuple[list, list[_Cell]]]:
    """Cells with the same set of example ids share their draws (reordered to the group's first cell's order)."""
    groups: dict[frozenset, tuple[list, list[_Cell]]] = {}
    for cell in cells:
        ids = frozenset(cell.ids)
        if ids not in groups:
            groups[ids] = (cell.ids, [])
        order, members = groups[ids]
        if cell.ids != order:  # same ids, another order: reindex the records to the group's order
            position = {i: p for p, i in enumerate(cell.ids)}
            index = [position[i] for i in order]
            for system in cell.systems:
                system.data = ([[rows[p] for p in index] for rows in system.data] if cell.kind == "callable"
                               else system.data[:, index])
            cell.ids = list(order)
        members.append(cell)
    return list(groups.values())


def _coin_flips(rng: np.random.Generator, c: int, n: int) -> np.ndarray:
    """c × n fair coin flips (bool): the bits of random bytes."""
    return np.unpackbits(rng.integers(0, 256, (c, (n + 7) // 8), dtype=np.uint8), axis=1, count=n).view(bool)


def _replicates(cells: Sequence[_Cell], weights: Sequence[float], rng: np.random.Generator, n_resamples: int,
                mode: str, resample_seeds: bool) -> np.ndarray:
    """The weighted sum over cells of the statistic on each of ``n_resamples`` replicates. ``mode``: "bootstrap"
    (paired δ), "permutation" (paired δ under swaps) or "scores" (one system's seed-mean score, bootstrapped)."""
    groups = _groups(cells)
    weight = {id(c): w for c, w in zip(cells, weights)}
    k = len(cells[0].seeds)
    seeds_drawn = resample_seeds and k > 1 and mode != "permutation"
    block = max(1, min(n_resamples, _BLOCK // max(len(order) for order, _ in groups)))
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        c = min(block, n_resamples - start)
        seed_draw = rng.integers(0, k, (c, k)) if seeds_drawn else None
        total = np.zeros(c)
        for order, members in groups:
            n = len(order)
            draw = _coin_flips(rng, c, n) if mode == "permutation" else rng.integers(0, n, (c, n))
            for cell in members:
                if mode == "permutation":
                    value = _perm_deltas(cell, draw)
                else:
                    per_seed = (_boot_deltas(cell, draw, seeds_drawn) if mode == "bootstrap"
                                else _scores(cell, 0, draw))
                    value = (np.take_along_axis(per_seed, seed_draw, axis=1) if seeds_drawn else per_seed).mean(axis=1)
                total += weight[id(cell)] * value
        out[start:start + c] = total
    return out


def _percentile(replicates: np.ndarray) -> list[float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    return [float(v) for v in np.percentile(replicates, [tail, 100 - tail])]


def _rng(seed: int, key: Any = None) -> np.random.Generator:
    """One stream per (seed, key): a test's draws do not depend on which other tests ran before it."""
    return np.random.default_rng([int(seed), zlib.crc32(repr(key).encode())] if key is not None else int(seed))


def _check_resamples(n_resamples: int) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive integer, got {n_resamples!r}")


# ---------------------------------------------------------------------------------------------------- public API


def xtreme_weights(keys: Iterable[tuple]) -> dict:
    """Weights that make a weighted sum over (task, language) cells the XTREME average: 1 / (tasks × languages of
    the cell's task), i.e. the mean over tasks of each task's mean over its languages."""
    keys = list(keys)
    per_task: dict = {}
    for key in keys:
        if not isinstance(key, tuple) or len(key) != 2:
            raise ConfigError(f"XTREME weights need (task, language) keys, got {key!r}")
        per_task[key[0]] = per_task.get(key[0], 0) + 1
    return {key: 1 / (len(per_task) * per_task[key[0]]) for key in keys}


def _weights(keys: list, weights: Mapping | None) -> list[float]:
    if weights is None:
        return [1 / len(keys)] * len(keys)
    if set(weights) != set(keys):
        raise ConfigError(f"weights are for {_names(weights)}, the cells are {_names(keys)}")
    return [float(weights[k]) for k in keys]


def _summary(cells: list[_Cell], weights: list[float], n_resamples: int, seed: int, key: Any) -> dict:
    _check_resamples(n_resamples)
    seeds = cells[0].seeds
    for cell in cells[1:]:
        if cell.seeds != seeds:
            raise ConfigError(f"seeds differ between {cells[0].where or 'cells'}{list(seeds)} and "
                              f"{cell.where}{list(cell.seeds)}: an average needs the same seeds in every cell")
    per_seed = sum(w * _scores(cell, 0) for cell, w in zip(cells, weights))
    k = len(seeds)
    mean = float(np.mean(per_seed))
    if k >= 2:
        std = float(np.std(per_seed, ddof=1))
        half = float(stats.t.ppf((1 + CONFIDENCE) / 2, k - 1)) * std / math.sqrt(k)
        ci, ci_method = [mean - half, mean + half], "t interval over seeds"
    else:
        std = None
        ci = _percentile(_replicates(cells, weights, _rng(seed, key), n_resamples, "scores", False))
        ci_method = f"percentile bootstrap over test examples ({n_resamples} resamples; one seed, no restart variance)"
    return {"mean": mean, "std": std, "n_seeds": k, "ci95": ci, "ci95_method": ci_method,
            "n_examples": int(sum(cell.n for cell in cells)), "seeds": list(seeds),
            "per_seed": [float(v) for v in per_seed]}


def seed_summary(values_per_seed: Runs, metric: Any = MEAN, *, n_resamples: int = N_RESAMPLES, seed: int = 0,
                 test_ids: Sequence | None = None, where: Any = None) -> dict:
    """Mean, std over seeds (ddof=1; None with one seed), n_seeds, and a 95 % CI: Student's t over the seed scores
    with ≥ 2 seeds, else a percentile bootstrap over the test examples. ``values_per_seed``: {seed: {id: record}}.
    Returns {mean, std, n_seeds, ci95: [lo, hi], ci95_method, n_examples, seeds, per_seed}."""
    cell = _prepare(where, _where(where), [("runs", values_per_seed)], metric, test_ids)
    return _summary([cell], [1.0], n_resamples, seed, where)


def summary_average(cells: Mapping[Hashable, Runs], metric: Any = MEAN, weights: Mapping | None = None, *,
                    n_resamples: int = N_RESAMPLES, seed: int = 0, where: Any = None) -> dict:
    """``seed_summary`` of an average of cells (default: the plain mean, e.g. a task average over languages; pass
    ``xtreme_weights(keys)`` for the XTREME average over (task, language) keys). ``metric``: one for every cell or a
    mapping by key (or by the key's first element, the task). Per seed, the weighted average of the cell scores."""
    keys = _keys(cells)
    prepared = [_prepare(k, _where(k), [("runs", cells[k])], _metric_for(metric, k)) for k in keys]
    return _summary(prepared, _weights(keys, weights), n_resamples, seed, where)


def _keys(cells: Mapping) -> list:
    if not isinstance(cells, Mapping) or not cells:
        raise DataError("no cells to average (expected {key: {seed: {example id: record}}})")
    return list(cells)


def _test(cells: list[_Cell], weights: list[float], method: str, n_resamples: int, seed: int,
          resample_seeds: bool, key: Any) -> dict:
    if method not in METHODS:
        raise ConfigError(f"unknown test method {method!r}: expected one of {', '.join(METHODS)}")
    _check_resamples(n_resamples)
    seeds = cells[0].seeds
    for cell in cells[1:]:
        if cell.seeds != seeds:
            raise ConfigError(f"seeds differ between {cells[0].where}{list(seeds)} and {cell.where}{list(cell.seeds)}:"
                              f" an average needs the same seeds in every cell")
    per_seed = sum(w * (_scores(cell, 1) - _scores(cell, 0)) for cell, w in zip(cells, weights))
    delta = float(np.mean(per_seed))
    # The permutation test holds each seed's fine-tune fixed, and so does its interval (examples resampled only).
    resample_seeds = resample_seeds and method == "bootstrap" and len(seeds) > 1
    boot = _replicates(cells, weights, _rng(seed, key), n_resamples, "bootstrap", resample_seeds)
    tolerance = _TOL * max(1.0, abs(delta))
    if method == "bootstrap":
        extreme = np.abs(boot - delta) >= abs(delta) - tolerance
    else:
        permuted = _replicates(cells, weights, _rng(seed + 1, key), n_resamples, "permutation", resample_seeds)
        extreme = np.abs(permuted) >= abs(delta) - tolerance
    p_value = float((1 + np.count_nonzero(extreme)) / (n_resamples + 1))
    resampled = "test examples and seeds" if resample_seeds else "test examples"
    name = ("paired bootstrap, two-sided, shifted to the null" if method == "bootstrap"
            else "approximate randomisation (paired permutation), two-sided")
    return {"delta": delta, "delta_ci95": _percentile(boot), "p_value": p_value,
            "method": f"{name}; {n_resamples} resamples of {resampled}", "n_resamples": n_resamples,
            "n_examples": int(sum(cell.n for cell in cells)), "seeds": list(seeds),
            "delta_per_seed": [float(v) for v in per_seed]}


def paired_test(a: Runs, b: Runs, metric: Any = MEAN, *, method: str = "bootstrap", n_resamples: int = N_RESAMPLES,
                seed: int = 0, resample_seeds: bool = True, names: tuple[str, str] = (BASELINE, "condition"),
                test_ids: Sequence | None = None, where: Any = None) -> dict:
    """Paired test of ``b`` (a condition) against ``a`` (the baseline) on one cell, over test examples and seeds.
    ``a``, ``b``: {seed: {example id: record}} with the same seeds and ids (``test_ids``: the test set they must
    match). δ = mean over seeds of metric(b) − metric(a). Returns {delta, delta_ci95: [lo, hi] (percentile paired
    bootstrap), p_value (two-sided, ≥ 1/(n_resamples+1)), method, n_resamples, n_examples, seeds, delta_per_seed}."""
    cell = _prepare(where, _where(where), [(names[0], a), (names[1], b)], metric, test_ids)
    return _test([cell], [1.0], method, n_resamples, seed, resample_seeds, where)


def paired_test_average(a: Mapping[Hashable, Runs], b: Mapping[Hashable, Runs], metric: Any = MEAN,
                        weights: Mapping | None = None, *, method: str = "bootstrap", n_resamples: int = N_RESAMPLES,
                        seed: int = 0, resample_seeds: bool = True, names: tuple[str, str] = (BASELINE, "condition"),
                        where: Any = None) -> dict:
    """``paired_test`` of an average of cells: {key: runs} on both sides with the same keys (languages, or
    (task, language) with ``xtreme_weights``). Each replicate averages the per-cell δ with ``weights``."""
    keys_a, keys_b = _keys(a), _keys(b)
    if set(keys_a) != set(keys_b):
        only_a, only_b = [k for k in keys_a if k not in b], [k for k in keys_b if k not in a]
        parts = ([f"{_names(only_a)} in {names[0]} but not in {names[1]}"] if only_a else []) + \
                ([f"{_names(only_b)} in {names[1]} but not in {names[0]}"] if only_b else [])
        raise DataError(f"{_where(where)}cells differ: " + "; ".join(parts))
    prepared = [_prepare(k, _where(k), [(names[0], a[k]), (names[1], b[k])], _metric_for(metric, k)) for k in keys_a]
    return _test(prepared, _weights(keys_a, weights), method, n_resamples, seed, resample_seeds, where)


def adjust(p_values: Sequence[float] | Mapping[Hashable, float], method: str = "holm") -> np.ndarray | dict:
    """Adjusted p-values for a family of tests: ``holm`` (step-down, family-wise error; Holm 1979) or ``bh``
    (Benjamini–Hochberg step-up, false discovery rate; equals scipy.stats.false_discovery_control). A mapping in
    gives a dict with the same keys out; a sequence gives an array in the same order."""
    if method not in CORRECTIONS:
        raise ConfigError(f"unknown correction {method!r}: expected one of {', '.join(CORRECTIONS)}")
    keys = list(p_values) if isinstance(p_values, Mapping) else None
    p = np.asarray([p_values[k] for k in keys] if keys is not None else p_values, dtype=float)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ConfigError("p-values must be a flat list of numbers in [0, 1]")
    m = len(p)
    adjusted = np.empty(m)
    if m:
        order = np.argsort(p, kind="stable")
        ranked = p[order]
        if method == "holm":  # p_(i) · (m − i + 1), made monotone from the smallest up
            adjusted[order] = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * ranked))
        else:  # p_(i) · m / i, made monotone from the largest down
            adjusted[order] = np.minimum(1, np.minimum.accumulate((m * ranked / np.arange(1, m + 1))[::-1])[::-1])
    return dict(zip(keys, adjusted.tolist())) if keys is not None else adjusted


def grid_statistics(runs: Mapping[tuple, Runs], metric: Any = MEAN, *, baseline: str = BASELINE,
                    method: str = "bootstrap", correction: str = "holm", alpha: float = ALPHA,
                    n_resamples: int = N_RESAMPLES, seed: int = 0, resample_seeds: bool = True,
                    test_ids: Mapping[tuple, Sequence] | None = None) -> dict:
    """Every statistic of a grid: ``runs`` {(target, condition, language): {seed: {example id: record}}};
    ``metric``: one for all or {target: metric}; ``test_ids``: optional {(target, language): ids of the test set}.
    Returns {"method": {...}, "cells": {target: {condition: {language: stats}}}, "task_average": {target:
    {condition: stats}}, "xtreme_average": {condition: stats}} where stats is ``seed_summary``'s fields plus, for a
    condition other than the baseline, the paired test's delta, delta_ci95, p_value and p_adjusted (every test of the
    grid is one family) and significant (p_adjusted < alpha)."""
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}: expected one of {', '.join(CORRECTIONS)}")
    if method not in METHODS:
        raise ConfigError(f"unknown test method {method!r}: expected one of {', '.join(METHODS)}")
    if not isinstance(runs, Mapping) or not runs:
        raise DataError("no runs: expected {(target, condition, language): {seed: {example id: record}}}")
    grid: dict = {}
    for key in runs:
        if not isinstance(key, tuple) or len(key) != 3:
            raise ConfigError(f"grid keys are (target, condition, language), got {key!r}")
        grid.setdefault(key[0], {}).setdefault(key[1], []).append(key[2])
    conditions = sorted({c for per in grid.values() for c in per}, key=lambda c: (c != baseline, str(c)))
    for target, per_condition in grid.items():
        if baseline not in per_condition:
            raise ConfigError(f"{target}: no {baseline!r} runs to compare the conditions with")
        for condition in conditions:
            if condition not in per_condition:
                raise ConfigError(f"{target}: condition {condition!r} has no runs (every condition needs every "
                                  f"target for the XTREME average)")
            languages = set(per_condition[condition])
            reference = set(per_condition[baseline])
            if languages != reference:
                missing, extra = sorted(map(str, reference - languages)), sorted(map(str, languages - reference))
                parts = ([f"{', '.join(missing)} in {baseline} but not in {condition}"] if missing else []) + \
                        ([f"{', '.join(extra)} in {condition} but not in {baseline}"] if extra else [])
                raise DataError(f"{target}: languages differ: " + "; ".join(parts))
    all_seeds = {key: tuple(_seed_list(r, _where(key))) for key, r in runs.items()}
    first = next(iter(all_seeds))
    for key, seeds in all_seeds.items():
        if set(seeds) != set(all_seeds[first]):
            raise ConfigError(f"seeds differ between {_where(first)[:-2]} {list(all_seeds[first])} and "
                              f"{_where(key)[:-2]} {list(seeds)}: every run of the grid needs the same seeds")

    def cell_metric(target):
        return _metric_for(metric, (target,)) if isinstance(metric, Mapping) else metric

    cells: dict = {}
    task_average: dict = {}
    tests: list[tuple[dict, float]] = []
    for target, per_condition in grid.items():
        languages = per_condition[baseline]
        m = cell_metric(target)
        for condition in conditions:
            for language in languages:
                key = (target, condition, language)
                ids = test_ids.get((target, language)) if test_ids is not None else None
                entry = seed_summary(runs[key], m, n_resamples=n_resamples, seed=seed, test_ids=ids, where=key)
                if condition != baseline:
                    entry.update(paired_test(runs[(target, baseline, language)], runs[key], m, method=method,
                                             n_resamples=n_resamples, seed=seed, resample_seeds=resample_seeds,
                                             names=(baseline, condition), test_ids=ids, where=key))
                    tests.append((entry, entry["p_value"]))
                cells.setdefault(target, {}).setdefault(condition, {})[language] = entry
            side = {lang: runs[(target, condition, lang)] for lang in languages}
            entry = summary_average(side, m, n_resamples=n_resamples, seed=seed, where=(target, condition))
            if condition != baseline:
                entry.update(paired_test_average({lang: runs[(target, baseline, lang)] for lang in languages}, side, m,
                                                 method=method, n_resamples=n_resamples, seed=seed,
                                                 resample_seeds=resample_seeds, names=(baseline, condition),
                                                 where=(target, condition)))
                tests.append((entry, entry["p_value"]))
            task_average.setdefault(target, {})[condition] = entry
    xtreme: dict = {}
    metrics = {target: cell_metric(target) for target in grid}
    for condition in conditions:
        def side(c):
            return {(t, lang): runs[(t, c, lang)] for t in grid for lang in grid[t][baseline]}

        weights = xtreme_weights(side(condition))
        entry = summary_average(side(condition), metrics, weights, n_resamples=n_resamples, seed=seed,
                                where=("XTREME", condition))
        if condition != baseline:
            entry.update(paired_test_average(side(baseline), side(condition), metrics, weights, method=method,
                                             n_resamples=n_resamples, seed=seed, resample_seeds=resample_seeds,
                                             names=(baseline, condition), where=("XTREME", condition)))
            tests.append((entry, entry["p_value"]))
        xtreme[condition] = entry
    for (entry, _), p in zip(tests, adjust([p for _, p in tests], correction)):
        entry["p_adjusted"] = float(p)
        entry["significant"] = bool(p < alpha)
    return {"method": {"test": method, "correction": correction, "alpha": alpha, "n_resamples": n_resamples,
                       "seed": seed, "resample_seeds": resample_seeds, "confidence": CONFIDENCE,
                       "family": f"all {len(tests)} tests of the grid (cells, task averages, XTREME averages)",
                       "citations": {k: CITATIONS[k] for k in (method, "seeds", correction, "t")}},
            "cells": cells, "task_average": task_average, "xtreme_average": xtreme}
