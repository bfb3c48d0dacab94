"""Step 5: zero-shot evaluation of the ONNX model in onnxruntime over every evaluation language's test split."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .data import read_split
from .errors import ConfigError
from .fsutil import atomic_copy, atomic_dir, atomic_write_text, read_json, write_json
from .render import html_page, html_table, markdown_table
from .tasks import get_task


def make_session(model_path: Path):
    """CUDA execution provider when it is usable, else CPU; returns (session, provider actually used)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    providers = [p for p in wanted if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(model_path), options, providers=providers)
    return session, session.get_providers()[0]


def predict(session, tokenizer, texts_a: list[str], texts_b: list[str] | None, max_length: int, batch_size: int) -> np.ndarray:
    """Label indices, batched over length-sorted inputs (little padding), returned in input order."""
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    preds = np.empty(len(ids), dtype=np.int64)
    pad = tokenizer.pad_token_id
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(len(ids[i]) for i in index)
        x = np.full((len(index), width), pad, dtype=np.int64)
        mask = np.zeros_like(x)
        for row, i in enumerate(index):
            x[row, :len(ids[i])] = ids[i]
            mask[row, :len(ids[i])] = 1
        logits = session.run(["logits"], {"input_ids": x, "attention_mask": mask})[0]
        preds[index] = logits.argmax(-1)
    return preds


def zero_shot_eval(onnx_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, condition: str | None = None,
                   batch_size: int = 64, max_length: int | None = None, html_path: str | Path | None = None,
                   md_path: str | Path | None = None) -> dict:
    """Accuracy per language and the average; writes results.json, results.md, results.html to out_dir."""
    from transformers import AutoTokenizer

    onnx_dir = Path(onnx_dir)
    labels_info = read_json(onnx_dir / "labels.json")
    task = get_task(labels_info["task"])
    if list(task.labels) != labels_info["labels"]:
        raise ConfigError(f"{onnx_dir}/labels.json labels {labels_info['labels']} do not match task {task.name!r} {list(task.labels)}")
    condition = condition if condition is not None else labels_info.get("condition")
    max_length = max_length or labels_info.get("max_length", 512)  # default: truncate as training did
    test = read_split(dataset_dir, task.name, "test")
    languages = read_json(Path(dataset_dir) / "manifest.json")["tasks"][task.name]["languages"]
    tokenizer = AutoTokenizer.from_pretrained(onnx_dir)
    session, provider = make_session(onnx_dir / "model.onnx")
    label_ids = {label: i for i, label in enumerate(task.labels)}
    scores, counts = {}, {}
    started = time.perf_counter()
    for lang in tqdm(languages, desc=f"zero-shot {task.name}", unit="language",
                     disable=os.environ.get("XSTILTS_NO_PROGRESS") == "1"):
        df = test[test["language"] == lang]
        preds = predict(session, tokenizer, df["text_a"].tolist(), df["text_b"].tolist() if task.is_pair else None,
                        max_length, batch_size)
        gold = df["label"].map(label_ids).to_numpy()
        scores[lang] = float((preds == gold).mean())
        counts[lang] = len(df)
    seconds = time.perf_counter() - started
    average = float(np.mean(list(scores.values())))
    results = {"task": task.name, "condition": condition, "metric": task.metric, "provider": provider,
               "scores": scores, "average": average, "examples": counts, "eval_seconds": round(seconds, 3)}
    rows = [[lang, scores[lang], counts[lang]] for lang in languages] + [["average", average, sum(counts.values())]]
    title = f"Zero-shot {task.metric}: {task.name} ({condition or 'model'})"
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "results.json", results)
        atomic_write_text(tmp / "results.md", f"# {title}\n\nonnxruntime provider: `{provider}`\n\n"
                          + markdown_table(["language", task.metric, "examples"], rows))
        atomic_write_text(tmp / "results.html", html_page(title, f"<p>onnxruntime provider: <code>{provider}</code></p>"
                                                          + html_table(["language", task.metric, "examples"], rows)))
    for src, dest in (("results.html", html_path), ("results.md", md_path)):
        if dest:  # KFP's HTML/Markdown artifacts are single files
            atomic_copy(Path(out_dir) / src, dest)
    return results
