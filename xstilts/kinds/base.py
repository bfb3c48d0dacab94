"""What each task kind means for inputs, targets, loss, model outputs, predictions and scores.

Training, dev evaluation (PyTorch) and zero-shot evaluation (onnxruntime) share this code: predictions take a
`run(inputs) -> outputs` function over numpy arrays, so the same decoding runs on either backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from xstilts.kinds import metrics
from xstilts.kinds.qa import qa_features, qa_predict
from xstilts.kinds.tagging import IGNORE_INDEX, tag_decode, tag_features
from xstilts.kinds.generation import completion_features
from xstilts.tasks.registry import GENERATION, MULTIPLE_CHOICE, PAIR, QA, RETRIEVAL, SINGLE, TAGGING, Task
from xstilts.config import Settings


Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

# ONNX/runner output names per kind; per-token outputs have a sequence axis after the batch axis.
OUTPUTS = {PAIR: ("logits",), SINGLE: ("logits",), MULTIPLE_CHOICE: ("logits",), QA: ("start_logits", "end_logits"),
           TAGGING: ("logits",), RETRIEVAL: ("embeddings",), GENERATION: ("logits",)}
PER_TOKEN = {QA: True, TAGGING: True}




# ---- inputs ---------------------------------------------------------------------------------------------------

def choice_pairs(df: pd.DataFrame) -> tuple[list[str], list[str], int]:
    """Multiple choice: (context, [question] choice) pairs, flattened example-major; returns firsts, seconds, k."""
    firsts, seconds = [], []
    k = len(df["choices"].iloc[0])
    for context, question, choices in zip(df["text_a"], df["text_b"], df["choices"]):
        for choice in choices:
            firsts.append(context)
            seconds.append(f"{question} {choice}" if isinstance(question, str) and question else choice)
    return firsts, seconds, k


def _answers(df: pd.DataFrame) -> list[list[dict]]:
    return [[{"text": t, "answer_start": int(s)} for t, s in zip(texts, starts)]
            for texts, starts in zip(df["answer_texts"], df["answer_starts"])]


# Encoder-task kinds a causal LM can train on as text → text (an English intermediate task before code generation).
TEXT_TO_TEXT_KINDS = (PAIR, SINGLE, MULTIPLE_CHOICE, QA)


def as_generation(task: Task, df: pd.DataFrame) -> pd.DataFrame:
    """An encoder task's canonical rows as prompt → completion text (T5/FLAN style), so a causal LM can take it as an
    intermediate task: the prompt names the task and its fields, the completion is the label, choice or answer."""
    if task.kind not in TEXT_TO_TEXT_KINDS:
        raise ValueError(f"task {task.name!r} ({task.kind}) has no text-to-text form; text-to-text kinds: "
                         f"{', '.join(TEXT_TO_TEXT_KINDS)}")
    if task.kind == PAIR:
        prompts = [f"Task: {task.name}\nSentence 1: {a}\nSentence 2: {b}\nLabel:" for a, b in zip(df["text_a"], df["text_b"])]
        completions = [f" {label}" for label in df["label"]]
    elif task.kind == SINGLE:
        prompts = [f"Task: {task.name}\nText: {a}\nLabel:" for a in df["text_a"]]
        completions = [f" {label}" for label in df["label"]]
    elif task.kind == MULTIPLE_CHOICE:
        prompts, completions = [], []
        for context, question, choices, label in zip(df["text_a"], df["text_b"], df["choices"], df["label"]):
            options = "\n".join(f"{i}. {c}" for i, c in enumerate(choices))
            asked = f"\nQuestion: {question}" if isinstance(question, str) and question else ""
            prompts.append(f"Task: {task.name}\nContext: {context}{asked}\nOptions:\n{options}\nAnswer:")
            completions.append(f" {choices[int(label)]}")
    else:  # QA: question, context → the first gold answer
        prompts = [f"Task: {task.name}\nContext: {c}\nQuestion: {q}\nAnswer:" for q, c in zip(df["text_a"], df["text_b"])]
        completions = [f" {texts[0]}" for texts in df["answer_texts"]]
    return pd.DataFrame({"id": [str(i) for i in range(len(df))], "prompt": prompts, "completion": completions,
                         "language": df["language"].tolist()})


@dataclass
class TrainData:
    """Encoded training (or dev) examples of one task: model inputs, targets and lengths for batching."""

    task: str
    kind: str
    labels: tuple[str, ...]
    inputs: list  # per example: token ids, or (multiple choice) a list of token-id lists
    targets: list  # per example: a label index, (start, end), or per-token label ids
    lengths: list[int]


def encode_train(task: Task, labels: tuple[str, ...], df: pd.DataFrame, tokenizer, settings: Settings) -> TrainData:
    kind = task.kind
    label_ids = {label: i for i, label in enumerate(labels)}
    if kind in (PAIR, SINGLE):
        enc = tokenizer(df["text_a"].tolist(), df["text_b"].tolist() if kind == PAIR else None, truncation=True,
                        max_length=settings.max_length)["input_ids"]
        targets = [label_ids[label] for label in df["label"]]
    elif kind == MULTIPLE_CHOICE:
        firsts, seconds, k = choice_pairs(df)
        flat = tokenizer(firsts, seconds, truncation=True, max_length=settings.max_length)["input_ids"]
        enc = [flat[i * k:(i + 1) * k] for i in range(len(df))]
        targets = [label_ids[label] for label in df["label"]]
    elif kind == QA:
        feats = qa_features(tokenizer, df["text_a"].tolist(), df["text_b"].tolist(), _answers(df), settings.max_length,
                            settings.doc_stride, settings.max_query_length)
        enc = feats.input_ids
        targets = list(zip(feats.start_positions.tolist(), feats.end_positions.tolist()))
    elif kind == TAGGING:
        feats = tag_features(tokenizer, [list(t) for t in df["tokens"]], [list(t) for t in df["tags"]], labels,
                             settings.max_length)
        enc, targets = feats.input_ids, feats.label_ids
    elif kind == RETRIEVAL:  # contrastive: one (query, gold partner) token-id pair per source row
        queries, partners = retrieval_pairs(df)
        if not queries:
            raise ValueError(f"task {task.name!r}: no (source, gold target) pairs to train on")
        q_ids = tokenizer(queries, truncation=True, max_length=settings.max_length)["input_ids"]
        p_ids = tokenizer(partners, truncation=True, max_length=settings.max_length)["input_ids"]
        enc = [[q, c] for q, c in zip(q_ids, p_ids)]
        targets = list(range(len(enc)))  # unused: the positives are the batch diagonal
    elif kind == GENERATION:  # targets: the completion's token ids, IGNORE_INDEX on the prompt
        enc, targets = completion_features(tokenizer, df["prompt"].tolist(), df["completion"].tolist(),
                                           settings.max_length, where=f"{task.name} training data")
    else:
        raise ValueError(f"tasks of kind {kind!r} are not trained")
    lengths = [max(len(x) for x in ids) if kind in GROUPED else len(ids) for ids in enc]
    return TrainData(task.name, kind, labels, enc, targets, lengths)


def _pad(seqs: list[list[int]], width: int, value: int) -> np.ndarray:
    out = np.full((len(seqs), width), value, dtype=np.int64)
    for row, ids in enumerate(seqs):
        out[row, :len(ids)] = ids
    return out


def collate(data: TrainData, index: np.ndarray, pad_id: int, dev: torch.device, width: int | None = None,
            pin: bool = True):
    """Pad a batch to `width` (default: its own longest sequence, i.e. dynamic padding); returns (input_ids,
    attention_mask, targets) on `dev`. On CUDA with `pin`, the arrays go through pinned memory and are copied without
    blocking, so the host can build the next batch while the GPU works."""
    width = width or max(data.lengths[i] for i in index)
    if data.kind in GROUPED:
        ids = np.stack([_pad(data.inputs[i], width, pad_id) for i in index])
    else:
        ids = _pad([data.inputs[i] for i in index], width, pad_id)
    mask = (ids != pad_id).astype(np.int64)
    if data.kind == GENERATION:  # the mask follows the lengths: a causal LM's pad id may be its eos id
        mask = (np.arange(width) < np.asarray([data.lengths[i] for i in index])[:, None]).astype(np.int64)
    if data.kind in (TAGGING, GENERATION):
        y = _pad([data.targets[i] for i in index], width, IGNORE_INDEX)
    else:
        y = np.asarray([data.targets[i] for i in index], dtype=np.int64)
    tensors = [torch.from_numpy(a) for a in (ids, mask, y)]
    pin = pin and dev.type == "cuda"
    if pin:
        tensors = [t.pin_memory() for t in tensors]
    return tuple(t.to(dev, non_blocking=pin) for t in tensors)


def loss(kind: str, outputs, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The task kind's training loss. QA needs the attention `mask`: its softmax runs over real tokens only, so the
    loss does not depend on how far the batch is padded."""
    if kind == RETRIEVAL:
        return contrastive_loss(*outputs)
    if kind == QA:
        start, end = (o.float() for o in outputs)
        if mask is not None:
            padding = mask == 0
            start = start.masked_fill(padding, torch.finfo(start.dtype).min)
            end = end.masked_fill(padding, torch.finfo(end.dtype).min)
        return (F.cross_entropy(start, y[:, 0]) + F.cross_entropy(end, y[:, 1])) / 2
    if kind == TAGGING:
        return F.cross_entropy(outputs.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX)
    if kind == GENERATION:  # position t predicts token t + 1; prompt and padding positions are IGNORE_INDEX
        return F.cross_entropy(outputs[:, :-1].float().flatten(0, 1), y[:, 1:].flatten(), ignore_index=IGNORE_INDEX)
    return F.cross_entropy(outputs.float(), y)


# ---- contrastive retrieval training (code search as an intermediate task) ----------------------------------------

GROUPED = (MULTIPLE_CHOICE, RETRIEVAL)  # several sequences per example: [batch, k, seq] inputs
CONTRASTIVE_TEMPERATURE = 0.05  # scale of the cosine similarities (as in SimCSE / CodeXGLUE code search baselines)


def retrieval_pairs(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(source texts, their gold partners' texts) of a canonical retrieval table, in source order."""
    text = dict(zip(zip(df["language"], df["id"]), df["text_a"]))
    sources = df[df["side"] == "source"]
    pairs = [(q, text[(lang, t)]) for lang, q, t in zip(sources["language"], sources["text_a"], sources["label"])
             if isinstance(t, str) and (lang, t) in text]
    return [q for q, _ in pairs], [c for _, c in pairs]


def pair_embeddings(pooler, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[batch, 2, seq] (query, partner) inputs → two [batch, hidden] embeddings from the same pooled encoder (one
    forward pass over both sides)."""
    batch = input_ids.shape[0]
    emb = pooler(input_ids.flatten(0, 1), attention_mask.flatten(0, 1)).view(batch, 2, -1)
    return emb[:, 0], emb[:, 1]


def contrastive_loss(queries: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """InfoNCE with in-batch negatives, both directions: each query's positive is its own partner, every other
    partner in the batch is a negative (and vice versa)."""
    q = F.normalize(queries.float(), dim=-1)
    c = F.normalize(partners.float(), dim=-1)
    logits = q @ c.T / CONTRASTIVE_TEMPERATURE
    gold = torch.arange(len(q), device=q.device)
    return (F.cross_entropy(logits, gold) + F.cross_entropy(logits.T, gold)) / 2


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


# ---- prediction (PyTorch or onnxruntime) -----------------------------------------------------------------------

def torch_runner(model, task: str, kind: str, dev: torch.device) -> Runner:
    """A Runner over a MultiTaskModel's head for `task` (or a MeanPooledEncoder when task is None)."""

    @torch.no_grad()
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = torch.from_numpy(inputs["input_ids"]).to(dev)
        mask = torch.from_numpy(inputs["attention_mask"]).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            out = model(ids, mask) if task is None else model(task, ids, mask)
        if kind == GENERATION:  # per-token logits over a whole vocabulary are large: argmax on the device
            return {"predicted_ids": out.argmax(-1).cpu().numpy()}
        out = out if isinstance(out, tuple) else (out,)
        return {name: o.float().cpu().numpy() for name, o in zip(OUTPUTS[kind], out)}

    return run


def run_batched(run: Runner, kind: str, sequences: list, pad_id: int, batch_size: int) -> dict[str, np.ndarray]:
    """Run over length-sorted batches (little padding); outputs in input order, per-token outputs padded to the
    longest sequence."""
    grouped = kind == MULTIPLE_CHOICE
    lengths = [max(len(s) for s in seq) if grouped else len(seq) for seq in sequences]
    order = np.argsort(lengths, kind="stable")
    width_all = max(lengths) if lengths else 0
    results: dict[str, np.ndarray] = {}
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(lengths[i] for i in index)
        if grouped:
            ids = np.stack([_pad(sequences[i], width, pad_id) for i in index])
        else:
            ids = _pad([sequences[i] for i in index], width, pad_id)
        out = run({"input_ids": ids, "attention_mask": (ids != pad_id).astype(np.int64)})
        for name, values in out.items():
            if name not in results:
                shape = (len(sequences), width_all, *values.shape[2:]) if PER_TOKEN.get(kind) else (len(sequences), *values.shape[1:])
                results[name] = np.full(shape, -1e4 if PER_TOKEN.get(kind) else 0.0, dtype=np.float32)
            if PER_TOKEN.get(kind):
                results[name][index, :width] = values
            else:
                results[name][index] = values
    return results


def predict(run: Runner, task: Task, labels: tuple[str, ...], df: pd.DataFrame, tokenizer, settings: Settings,
            batch_size: int) -> list:
    """Predictions for each row: a label name, an answer text, or a tag list (retrieval: use `embed`)."""
    kind, pad = task.kind, tokenizer.pad_token_id
    if kind in (PAIR, SINGLE):
        ids = tokenizer(df["text_a"].tolist(), df["text_b"].tolist() if kind == PAIR else None, truncation=True,
                        max_length=settings.max_length)["input_ids"]
        logits = run_batched(run, kind, ids, pad, batch_size)["logits"]
        return [labels[i] for i in logits.argmax(-1)]
    if kind == MULTIPLE_CHOICE:
        firsts, seconds, k = choice_pairs(df)
        flat = tokenizer(firsts, seconds, truncation=True, max_length=settings.max_length)["input_ids"]
        logits = run_batched(run, kind, [flat[i * k:(i + 1) * k] for i in range(len(df))], pad, batch_size)["logits"]
        return [labels[i] for i in logits.argmax(-1)]
    if kind == QA:
        contexts = df["text_b"].tolist()
        feats = qa_features(tokenizer, df["text_a"].tolist(), contexts, None, settings.max_length, settings.doc_stride,
                            settings.max_query_length)
        out = run_batched(run, kind, feats.input_ids, pad, batch_size)
        return qa_predict(feats, out["start_logits"], out["end_logits"], contexts,
                          max_answer_length=settings.max_answer_length)
    if kind == TAGGING:
        feats = tag_features(tokenizer, [list(t) for t in df["tokens"]], None, labels, settings.max_length)
        logits = run_batched(run, kind, feats.input_ids, pad, batch_size)["logits"]
        return tag_decode(feats, logits, labels, fill_label="O" if "O" in labels else labels[0])
    if kind == GENERATION:
        return completion_token_hits(run, df, tokenizer, settings, batch_size)
    raise ValueError(f"tasks of kind {kind!r} have no label predictions")


def completion_token_hits(run: Runner, df: pd.DataFrame, tokenizer, settings: Settings,
                          batch_size: int) -> list[tuple[int, int]]:
    """Generation's cheap dev prediction: per row, (completion tokens the model predicts right given the gold prefix,
    completion tokens), teacher-forced in one forward pass. Rows without a completion count (0, 0)."""
    rows = [i for i, c in enumerate(df["completion"]) if isinstance(c, str) and c]
    if not rows:
        return [(0, 0)] * len(df)
    ids, targets = completion_features(tokenizer, df["prompt"].iloc[rows].tolist(), df["completion"].iloc[rows].tolist(),
                                       settings.max_length)
    hits = [(0, 0)] * len(df)
    order = np.argsort([len(x) for x in ids], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(len(ids[i]) for i in index)
        batch = _pad([ids[i] for i in index], width, tokenizer.pad_token_id)
        mask = (np.arange(width) < np.asarray([len(ids[i]) for i in index])[:, None]).astype(np.int64)
        predicted = run({"input_ids": batch, "attention_mask": mask})["predicted_ids"]
        gold = _pad([targets[i] for i in index], width, IGNORE_INDEX)[:, 1:]  # position t predicts token t + 1
        scored = gold != IGNORE_INDEX
        right = (predicted[:, :-1] == gold) & scored
        for row, i in enumerate(index):
            hits[rows[i]] = (int(right[row].sum()), int(scored[row].sum()))
    return hits


def embed(run: Runner, texts: list[str], tokenizer, settings: Settings, batch_size: int) -> np.ndarray:
    ids = tokenizer(texts, truncation=True, max_length=settings.max_length)["input_ids"]
    return run_batched(run, RETRIEVAL, ids, tokenizer.pad_token_id, batch_size)["embeddings"]


# ---- scores --------------------------------------------------------------------------------------------------

def score(task: Task, df: pd.DataFrame, predictions: list, language: str) -> dict:
    """The task's metric on one language's rows: {"score": main value, ...the parts}. Fractions in [0, 1]."""
    if task.kind in (PAIR, SINGLE, MULTIPLE_CHOICE):
        return {"score": float(np.mean([p == g for p, g in zip(predictions, df["label"])]))}
    if task.kind == QA:
        ids = df["id"].tolist()
        refs = {i: list(texts) for i, texts in zip(ids, df["answer_texts"])}
        result = metrics.qa_scores(dict(zip(ids, predictions)), refs, language, task.qa_normalization)
        return {"score": result["score"], "exact_match": result["exact_match"], "f1": result["f1"]}
    if task.kind == TAGGING:
        return {"score": metrics.tagging_f1([list(t) for t in df["tags"]], predictions)}
    if task.kind == GENERATION:  # dev score: completion token accuracy (pass@k needs execution: code_eval)
        total = sum(n for _, n in predictions)
        return {"score": sum(k for k, _ in predictions) / total if total else 0.0}
    raise ValueError(f"use retrieval_score for {task.name!r}")


def retrieval_score(task: Task, df: pd.DataFrame, embeddings: np.ndarray) -> dict:
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
