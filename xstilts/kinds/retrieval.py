"""Retrieval (BUCC mining, Tatoeba, code search): sentences embedded by the mean-pooled encoder, no head.

Targets are evaluated straight from the encoder (`retrieval_score`); code search as an intermediate task trains
it contrastively on (query, gold partner) pairs with in-batch negatives. The canonical table has one row per
sentence with its `side` and, for sources, the gold partner's id as `label`; the loader splits each native
(source, target) pair into those two rows (`pair_rows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
import numpy as np
from xstilts.kinds import metrics
from xstilts.kinds.base import RETRIEVAL, KindSpec, Runner, TaskInfo, run_batched

if TYPE_CHECKING:
    import pandas as pd
    from xstilts.config import Settings


SIDES = ("source", "target")
CONTRASTIVE_TEMPERATURE = 0.05  # scale of the cosine similarities (as in SimCSE / CodeXGLUE code search baselines)


def retrieval_pairs(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(source texts, their gold partners' texts) of a canonical retrieval table, in source order."""
    text = dict(zip(zip(df["language"], df["id"]), df["text_a"]))
    sources = df[df["side"] == "source"]
    pairs = [(q, text[(lang, t)]) for lang, q, t in zip(sources["language"], sources["text_a"], sources["label"])
             if isinstance(t, str) and (lang, t) in text]
    return [q for q, _ in pairs], [c for _, c in pairs]


def pair_embeddings(pooler, input_ids, attention_mask):
    """[batch, 2, seq] (query, partner) inputs → two [batch, hidden] embeddings from the same pooled encoder (one
    forward pass over both sides)."""
    batch = input_ids.shape[0]
    emb = pooler(input_ids.flatten(0, 1), attention_mask.flatten(0, 1)).view(batch, 2, -1)
    return emb[:, 0], emb[:, 1]


def contrastive_loss(queries, partners):
    """InfoNCE with in-batch negatives, both directions: each query's positive is its own partner, every other
    partner in the batch is a negative (and vice versa)."""
    import torch
    import torch.nn.functional as F

    q = F.normalize(queries.float(), dim=-1)
    c = F.normalize(partners.float(), dim=-1)
    logits = q @ c.T / CONTRASTIVE_TEMPERATURE
    gold = torch.arange(len(q), device=q.device)
    return (F.cross_entropy(logits, gold) + F.cross_entropy(logits.T, gold)) / 2


def embed(run: Runner, texts: list[str], tokenizer, settings: Settings, batch_size: int) -> np.ndarray:
    ids = tokenizer(texts, truncation=True, max_length=settings.max_length)["input_ids"]
    return run_batched(run, RETRIEVAL, ids, tokenizer.pad_token_id, batch_size)["embeddings"]


def retrieval_dev_score(run: Runner, df: pd.DataFrame, tokenizer, settings: Settings, batch_size: int) -> dict:
    """Code search within a dev split: every query ranks all partners of the split by cosine similarity.
    {"score": MRR, "mrr", "accuracy": top-1}."""
    queries, partners = retrieval_pairs(df)
    q = embed(run, queries, tokenizer, settings, batch_size)
    c = embed(run, partners, tokenizer, settings, batch_size)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    similarity = q @ c.T
    # rank of the gold partner (row i of c) among all partners: 1 + how many score strictly higher
    ranks = 1 + (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    mrr = float(np.mean(1.0 / ranks))
    return {"score": mrr, "mrr": mrr, "accuracy": float(np.mean(ranks == 1))}


def retrieval_score(task: TaskInfo, df: pd.DataFrame, embeddings: np.ndarray) -> dict:
    """BUCC-style mining F1 (metric f1) or Tatoeba-style top-1 accuracy (metric accuracy) for one language."""
    source = (df["side"] == "source").to_numpy()
    src_ids, trg_ids = df["id"][source].tolist(), df["id"][~source].tolist()
    src_emb, trg_emb = embeddings[source], embeddings[~source]
    gold = [(s, t) for s, t in zip(src_ids, df["label"][source]) if isinstance(t, str)]
    if task.metric == "f1":
        result = metrics.bucc_f1(src_emb, trg_emb, src_ids, trg_ids, gold)
        return {"score": result["f1"], "precision": result["precision"], "recall": result["recall"],
                "threshold": result["threshold"]}
    # Every source has one gold target: row i of the reordered targets is source i's partner.
    position = {t: i for i, t in enumerate(trg_ids)}
    paired = [(i, position[t]) for i, (_, t) in enumerate(zip(src_ids, df["label"][source])) if isinstance(t, str)]
    rows, cols = zip(*paired)
    return {"score": metrics.tatoeba_accuracy(src_emb[list(rows)], trg_emb[list(cols)])}


class RetrievalSpec(KindSpec):
    name = RETRIEVAL
    fields = ("text_a", "text_b")  # source sentence, its target-language (English) translation
    columns = ("text_a", "side", "label")  # sentence, "source"/"target", the gold partner's id (sources)
    text_columns = ("text_a",)
    pair_rows = True
    target_trains = False
    grouped = True  # a training example is a (query, gold partner) pair
    outputs = ("embeddings",)

    def expectations(self, gxe, task: TaskInfo, labels: tuple[str, ...], split: str) -> list:
        return super().expectations(gxe, task, labels, split) + [
            gxe.ExpectColumnValuesToBeInSet(column="side", value_set=list(SIDES))]

    def encode(self, task: TaskInfo, labels: tuple[str, ...], df: pd.DataFrame, tokenizer,
               settings: Settings) -> tuple[list, list]:
        # contrastive: one (query, gold partner) token-id pair per source row
        queries, partners = retrieval_pairs(df)
        if not queries:
            raise ValueError(f"task {task.name!r}: no (source, gold target) pairs to train on")
        q_ids = tokenizer(queries, truncation=True, max_length=settings.max_length)["input_ids"]
        p_ids = tokenizer(partners, truncation=True, max_length=settings.max_length)["input_ids"]
        enc = [[q, c] for q, c in zip(q_ids, p_ids)]
        return enc, list(range(len(enc)))  # targets unused: the positives are the batch diagonal

    def loss(self, outputs, y, mask=None):
        return contrastive_loss(*outputs)

    def score(self, task: TaskInfo, df: pd.DataFrame, predictions: list, language: str) -> dict:
        raise ValueError(f"use retrieval_score for {task.name!r}")


SPEC = RetrievalSpec()
