"""Which rows make each micro-batch, and which task each micro-batch comes from.

Every choice here is a function of (seed, epoch) or (seed, micro-batch number), never of a running RNG, so a run
resumed from a checkpoint draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import math
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


def epoch_batches(lengths: list[int], config: TrainConfig, epoch: int) -> list[np.ndarray]:
    """One epoch's micro-batches of one task: by token budget when `config.token_budget` is set, else by rows."""
    if config.token_budget:
        return token_budget_batches(lengths, config.token_budget, config.padded_width, config.seed, epoch)
    return length_grouped_batches(lengths, config.batch_size, config.seed, epoch)


def micro_batches_per_epoch(train_sets: list, config: TrainConfig) -> list[int]:
    """Each task's micro-batch count per epoch (token budgets: the same every epoch, so epoch 0's count serves)."""
    return [len(epoch_batches(d.lengths, config, 0)) if config.token_budget
            else math.ceil(len(d.inputs) / config.batch_size) for d in train_sets]


def task_probabilities(sizes: list[int], sampling: str, temperature: float) -> np.ndarray:
    """Multi-task sampling: proportional to each task's number of batches, or flattened by a temperature."""
    sizes_arr = np.asarray(sizes, dtype=np.float64)
    weights = sizes_arr if sampling == "proportional" else sizes_arr ** (1.0 / temperature)
    return weights / weights.sum()


class TaskSampler:
    """Draws the next global micro-batch: a task by `config.sampling`, then that task's next batch of its epoch.

    The position in each task's data lives in the training state (`micro_done`, checkpointed); only the current
    epoch's batches of each task are cached here."""

    def __init__(self, train_sets: list, config: TrainConfig):
        self.train_sets, self.config = train_sets, config
        self.per_epoch = micro_batches_per_epoch(train_sets, config)
        self.probabilities = task_probabilities(self.per_epoch, config.sampling, config.temperature)
        self._batches: dict[int, tuple[int, list[np.ndarray]]] = {}  # task index → (epoch, its batches)

    def draw(self, micro: int, micro_done: list[int]):
        """The task data and global row indices of micro-batch number `micro`; advances `micro_done` in place."""
        # The task of each micro-batch is a function of (seed, micro), so a resumed run draws the same sequence.
        t = 0 if len(self.train_sets) == 1 else int(
            np.random.default_rng([self.config.seed, micro]).choice(len(self.train_sets), p=self.probabilities))
        data = self.train_sets[t]
        epoch, position = divmod(micro_done[t], self.per_epoch[t])
        if self._batches.get(t, (None,))[0] != epoch:
            self._batches[t] = (epoch, epoch_batches(data.lengths, self.config, epoch))
        micro_done[t] += 1
        return data, self._batches[t][1][position]
