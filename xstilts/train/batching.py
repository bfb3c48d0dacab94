"""TODO docstring (training)."""

from __future__ import annotations

import numpy as np
from xstilts.config import TrainConfig


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffle, then sort by length inside mega-batches of 50 batches, so padding is small but order is random."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lengths_arr = np.asarray(lengths)
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = order[start:start + mega]
        chunk = chunk[np.argsort(-lengths_arr[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def token_budget_batches(lengths: list[int], budget: int, width_of, seed: int, epoch: int) -> list[np.ndarray]:
    """Micro-batches of at most `budget` padded tokens (rows × padded width): examples sorted by length, ties in a
    random order per epoch, packed greedily from the longest; the batches are then shuffled. The sequence of widths
    and therefore the batch count is the same every epoch."""
    rng = np.random.default_rng([seed, epoch])
    lengths_arr = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    order = order[np.argsort(-lengths_arr[order], kind="stable")]
    batches, start = [], 0
    while start < len(order):
        rows = max(1, budget // width_of(int(lengths_arr[order[start]])))
        batches.append(order[start:start + rows])
        start += rows
    return [batches[i] for i in rng.permutation(len(batches))]


def epoch_batches(lengths: list[int], config: "TrainConfig", epoch: int) -> list[np.ndarray]:
    if config.token_budget:
        return token_budget_batches(lengths, config.token_budget, config.padded_width, config.seed, epoch)
    return length_grouped_batches(lengths, config.batch_size, config.seed, epoch)
