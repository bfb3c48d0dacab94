"""`xstilts bench train`: fine-tuning speed of the project's training loop against the Hugging Face Trainer with
its defaults (the baseline), measured in the same run, on the same model, batch size and data.

The baseline follows run_xnli's defaults: fp32, every sequence padded to max_length, AdamW, linear decay. The loop
setups then switch on one lever at a time, each on top of the previous ones (so every row's gain is that lever's):
SDPA attention, bf16 autocast, dynamic padding, the fused AdamW kernel, no host syncs, pinned-memory prefetch,
length buckets, torch.compile per bucket, CUDA graphs. Opt-in rows: token-budget batching (changes the rows per
step, so its loss curve and dev accuracy are reported, not assumed), and 384-token QA with and without gradient
checkpointing (memory against speed). CUDA-only levers are skipped on a CPU machine.

Each setup runs in its own process (clean peak memory, no compiled-graph cache shared between setups) from the same
saved initial weights. Reported per setup: steady samples/s (the first step and each new shape's first step, where
compilation happens, are timed apart and reported as warm-up), real-token MFU (6 × non-embedding parameters per real
token, against the dense matmul peak measured on this device in the same run), peak memory, the ratio to the
Trainer's samples/s, the mean training loss per window of steps against the Trainer's (same loss curve within
noise?), and English dev accuracy after training.
"""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
from tqdm.auto import tqdm
from xstilts import env
from xstilts.bench.eval import SHAPES, device_description
from xstilts.errors import ConfigError, XstiltsError
from xstilts.io import read_json, write_json
from xstilts.sampledata.generate import SAMPLE_LANGUAGES


BASELINE = "hf-trainer-default"
# The loop with the Trainer baseline's settings; each lever below is switched on in this order, on top of the last.
LOOP_AS_TRAINER = dict(padding="max_length", attention="eager", bf16=False, fused_optimizer=False, pin_memory=False,
                       log_every=1, compile="off")
LEVERS = [  # (setup, what changes, TrainConfig changes, needs CUDA)
    ("loop-fp32-pad-max", "this loop with the Trainer's settings (fp32, eager attention, pad to max_length, loss "
                          "read every step)", {}, False),
    ("+sdpa", "scaled-dot-product (fused) attention", {"attention": "sdpa"}, False),
    ("+bf16", "bf16 autocast", {"bf16": True}, True),
    ("+dynamic-padding", "length-grouped batches padded to their own longest", {"padding": "dynamic"}, False),
    ("+fused-adamw", "the fused AdamW kernel", {"fused_optimizer": True}, True),
    ("+no-host-syncs", "losses read back every 50 steps, not every step", {"log_every": 50}, False),
    ("+pinned-prefetch", "batches in pinned memory, copied without blocking", {"pin_memory": True}, True),
    ("+buckets", "padded lengths rounded up to multiples of 16 (few shapes)", {"padding": "buckets"}, False),
    ("+compile", "torch.compile, one static graph per bucket", {"compile": "on"}, False),
    ("+cuda-graphs", "compiled graphs replayed as CUDA graphs", {"compile": "cuda-graphs"}, True),
]
TOKEN_BUDGET = "token-budget"
QA_LENGTH = 384


def cuda_available() -> bool:
    return torch.cuda.is_available()


def matmul_peak_tflops(cuda: bool, threads: int) -> float:
    """Dense matmul throughput on this device (bf16 on CUDA, fp32 on CPU): the MFU denominator."""
    torch.set_num_threads(threads)
    n, dtype, device = (8192, torch.bfloat16, "cuda") if cuda else (1024, torch.float32, "cpu")
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    best = 0.0
    for _ in range(5):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        if cuda:
            torch.cuda.synchronize()
        best = max(best, 10 * 2 * n ** 3 / (time.perf_counter() - started) / 1e12)
    return best


def non_embedding_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


# ---- inputs ---------------------------------------------------------------------------------------------------------

def training_rows(data: str, rows: int, join: int, work: Path, languages: list[str] | None):
    """Validate xnli (and squad, for the QA rows) like the pipeline does; return (dataset dir, `rows` English xnli
    training rows with `join` consecutive rows' texts joined for realistic lengths, the English dev rows)."""
    import pandas as pd

    from xstilts.data.load import read_split
    from xstilts.data.validate import validate_experiment

    dataset = work / "dataset"
    validate_experiment(["xnli"], ["squad"], data, dataset, work / "validation.html", work / "validation.md", languages)
    train = read_split(dataset, "xnli", "train")
    reps = -(-rows * join // len(train))
    picked = train.loc[np.tile(np.arange(len(train)), reps)[:rows * join]].reset_index(drop=True)
    if join > 1:
        group = picked.index // join
        texts = {c: picked.groupby(group)[c].agg(" ".join) for c in ("text_a", "text_b")}
        picked = picked.groupby(group).first().assign(**texts).reset_index(drop=True)
    dev = read_split(dataset, "xnli", "validation")
    return dataset, picked, pd.DataFrame(dev[dev["language"] == "en"]).reset_index(drop=True)


def initial_model(shape: str, labels: list[str], out: Path, seed: int = 0) -> Path:
    """XLM-R-`shape` with a sequence-classification head, randomly initialised once and saved: every setup starts
    from these weights (the Trainer's model as is; the loop's encoder plus the same head weights)."""
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    from xstilts.models.tiny import ensure_tiny_model
    from xstilts.models.encoder import load_encoder

    tiny_encoder, tokenizer = load_encoder(str(ensure_tiny_model()))
    body = tiny_encoder.config.to_dict() if shape == "tiny" else SHAPES[shape]
    body = {k: body[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}
    config = XLMRobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=0,
                              eos_token_id=2, type_vocab_size=1, max_position_embeddings=QA_LENGTH + 2,
                              num_labels=len(labels), id2label=dict(enumerate(labels)),
                              label2id={label: i for i, label in enumerate(labels)}, **body)
    torch.manual_seed(seed)
    model = XLMRobertaForSequenceClassification(config)
    model.save_pretrained(out)
    tokenizer.model_max_length = QA_LENGTH
    tokenizer.save_pretrained(out)
    return out


# ---- one setup, in its own process ------------------------------------------------------------------------------

def run_setup(spec: dict) -> dict:
    """Train one setup (spec from `bench_train`) and return its measurements."""
    torch.set_num_threads(spec["threads"])
    cuda = cuda_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    result = run_trainer(spec) if spec["setup"] == BASELINE else run_loop(spec)
    result["peak_memory_bytes"] = (torch.cuda.max_memory_allocated() if cuda
                                   else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result["peak_memory_kind"] = "GPU max allocated" if cuda else "process peak RSS"
    return result


def _rows_frame(spec: dict):
    import pandas as pd

    return pd.read_json(spec["rows"], orient="records", lines=True)


def _dev_accuracy(model, tokenizer, spec: dict) -> float:
    """English xnli dev accuracy through the pipeline's own dev scoring."""
    import pandas as pd

    from xstilts.config import Settings
    from xstilts.tasks.registry import get_task
    from xstilts.train.loop import dev_score

    dev = pd.read_json(spec["dev"], orient="records", lines=True)
    device = next(model.parameters()).device
    scores = dev_score(model, [(get_task("xnli"), tuple(spec["labels"]), dev)], tokenizer,
                       Settings(max_length=spec["max_length"]), 64, device)
    return round(scores["xnli"], 4)


def _as_heads_model(hf_model, spec: dict):
    """The Trainer's model as the project's encoder + head (shared modules), for the same dev scoring."""
    from xstilts.models.encoder import build_model
    from xstilts.kinds.base import PAIR

    model = build_model(hf_model.roberta, {"xnli": {"kind": PAIR, "labels": spec["labels"]}})
    model.heads["xnli"].load_state_dict(hf_model.classifier.state_dict())
    return model.to(next(hf_model.parameters()).device)


def run_trainer(spec: dict) -> dict:
    """The baseline: transformers.Trainer with its defaults (and run_xnli's padding to max_length)."""
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainerCallback,
                              TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(spec["init"])
    model = AutoModelForSequenceClassification.from_pretrained(spec["init"])
    rows = _rows_frame(spec)
    enc = tokenizer(rows["text_a"].tolist(), rows["text_b"].tolist(), truncation=True, max_length=spec["max_length"],
                    padding="max_length")
    label_ids = {label: i for i, label in enumerate(spec["labels"])}
    dataset = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                 "labels": [label_ids[label] for label in rows["label"]]})
    step_ends: list[float] = []
    losses: list[torch.Tensor] = []

    class StepClock(TrainerCallback):
        # The Trainer reads its loss back every step (its NaN filter), so a host clock at step end is the GPU's.
        def on_step_end(self, args, state, control, **kwargs):
            step_ends.append(time.perf_counter())

    class LossRecordingTrainer(Trainer):
        # Keeps each step's loss on the device (no extra sync) for the loss-curve comparison.
        def training_step(self, *args, **kwargs):
            loss = super().training_step(*args, **kwargs)
            losses.append(loss.detach())
            return loss

    args = TrainingArguments(output_dir=str(Path(spec["work"]) / "trainer"), per_device_train_batch_size=spec["batch_size"],
                             learning_rate=spec["learning_rate"], max_steps=spec["steps"], save_strategy="no",
                             report_to="none", disable_tqdm=True, seed=spec["seed"])
    trainer = LossRecordingTrainer(model=model, args=args, train_dataset=dataset, callbacks=[StepClock()])
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    steady = (step_ends[-1] - step_ends[0]) if len(step_ends) > 1 else None
    batch = spec["batch_size"]
    lengths = [sum(m) for m in enc["attention_mask"]]
    return {
        "samples_per_second": round(spec["steps"] * batch / seconds, 2),
        "steady_samples_per_second": round((len(step_ends) - 1) * batch / steady, 2) if steady else None,
        "warmup_seconds": round(step_ends[0] - started, 3) if step_ends else None,
        "mean_real_tokens": float(np.mean(lengths)), "distinct_shapes": 1,
        "train_seconds": round(seconds, 3), "trainer_metrics": output.metrics,
        "losses": [round(v, 6) for v in torch.stack(losses).float().tolist()],
        "attention": model.config._attn_implementation, "optimizer": str(args.optim),
        "non_embedding_parameters": non_embedding_parameters(model.roberta),
        "dev_accuracy": _dev_accuracy(_as_heads_model(model, spec), tokenizer, spec),
    }


def run_loop(spec: dict) -> dict:
    """A setup of the project's training loop (xstilts.train.loop.train) with the spec's TrainConfig changes."""
    import pandas as pd

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from xstilts.models.encoder import build_model
    from xstilts.tasks.registry import get_task
    from xstilts.config import TrainConfig
    from xstilts.train.loop import train

    qa = spec.get("qa", False)
    config = TrainConfig(max_steps=spec["steps"], batch_size=spec["batch_size"], learning_rate=spec["learning_rate"],
                         warmup_ratio=0.0, weight_decay=0.0, max_length=QA_LENGTH if qa else spec["max_length"],
                         patience=0, checkpoint_every=10**9, seed=spec["seed"], **spec["config"])
    hf_model = AutoModelForSequenceClassification.from_pretrained(spec["init"])
    tokenizer = AutoTokenizer.from_pretrained(spec["init"])
    if qa:
        task = get_task("squad")
        model = build_model(hf_model.roberta, {"squad": {"kind": task.kind, "labels": []}})
        data = [(task, (), pd.read_json(spec["qa_rows"], orient="records", lines=True), None)]
    else:
        model = _as_heads_model(hf_model, spec)
        data = [(get_task("xnli"), tuple(spec["labels"]), _rows_frame(spec), None)]
    with tempfile.TemporaryDirectory(prefix="ckpt-", dir=spec["work"]) as ckpt:
        metrics = train(model, tokenizer, data, config, Path(ckpt), desc=spec["setup"])
    return {
        **{k: metrics[k] for k in ("samples_per_second", "steady_samples_per_second", "steady_tokens_per_second",
                                   "warmup_seconds", "distinct_shapes", "train_seconds", "samples", "real_tokens",
                                   "padded_tokens", "losses")},
        "mean_real_tokens": metrics["real_tokens"] / metrics["samples"],
        "config": {k: getattr(config, k) for k in ("padding", "attention", "bf16", "fused_optimizer", "pin_memory",
                                                    "log_every", "compile", "token_budget", "grad_checkpointing",
                                                    "max_length")},
        "non_embedding_parameters": non_embedding_parameters(model.encoder),
        "dev_accuracy": None if qa else _dev_accuracy(model, tokenizer, spec),
    }


def _child(spec: dict, out: str) -> None:
    env.disable_progress()
    try:
        write_json(out, {"ok": True, **run_setup(spec)})
    except Exception as error:  # reported by the parent with the setup's name
        import traceback

        write_json(out, {"ok": False, "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})


def run_in_process(spec: dict, work: Path) -> dict:
    out = work / f"result-{spec['index']:02d}.json"
    process = multiprocessing.get_context("spawn").Process(target=_child, args=(spec, str(out)))
    process.start()
    process.join()
    if not out.exists():
        raise XstiltsError(f"bench train: setup {spec['setup']!r} died (exit code {process.exitcode}) before "
                           "reporting; out of memory?")
    result = read_json(out)
    if not result.pop("ok"):
        raise XstiltsError(f"bench train: setup {spec['setup']!r} failed: {result['error']}\n{result['trace']}")
    return result


# ---- comparison ---------------------------------------------------------------------------------------------------

def loss_curve_comparison(losses: list[float], baseline: list[float], window: int) -> dict:
    """Window means of the training loss against the baseline's. The setups see the same rows in different orders
    (the Trainer samples at random, the loop groups by length), so the curves differ by batch noise: `noise` is the
    standard error of a difference of two window means; the curves agree when every window's |Δ| stays within 3
    noise units."""
    steps = min(len(losses), len(baseline))
    windows = steps // window
    if windows == 0 or steps < 3:
        return {"windows": 0, "max_abs_delta": None, "noise": None, "within_noise": None}
    a = np.asarray(losses[:windows * window]).reshape(windows, window)
    b = np.asarray(baseline[:windows * window]).reshape(windows, window)
    delta = np.abs(a.mean(1) - b.mean(1))
    # One step's batch-to-batch spread, from successive differences (robust to the curve's downward trend).
    step_noise = float(np.std(np.diff(baseline[:steps]), ddof=1) / np.sqrt(2))
    noise = float(np.sqrt(2) * step_noise / np.sqrt(window))
    return {"windows": windows, "window": window, "max_abs_delta": round(float(delta.max()), 4),
            "noise": round(noise, 4), "within_noise": bool(delta.max() <= 3 * noise),
            "window_means": [round(float(v), 4) for v in a.mean(1)]}


def bench_train(shape: str | None = None, steps: int = 0, batch_size: int = 32, max_length: int = 128, join: int = 6,
                learning_rate: float = 0.0, token_budget: int = 0, qa: bool = True, setups: list[str] | None = None,
                threads: int = 2, peak_tflops: float = 0.0, data: str = "data/sample",
                languages: list[str] | None = list(SAMPLE_LANGUAGES), seed: int = 42, window: int = 0,
                out: str | Path | None = "bench-train.json", work_dir: str | Path | None = None) -> dict:
    """Run the Trainer baseline and every selected setup; write `out` (JSON, atomically) and return the report.
    Defaults follow the device: on CUDA the XLM-R-large shape and 200 steps, on a CPU the tiny shape and 30 steps;
    the learning rate is 2e-5 for the real shapes and 1e-3 for tiny (so its short loss curve moves); the token budget
    is the Trainer batch's padded tokens (batch × max_length: the same activation memory)."""
    cuda = cuda_available()
    shape = shape or ("large" if cuda else "tiny")
    steps = steps or (200 if cuda else 30)
    if shape not in ("tiny", *SHAPES):
        raise ConfigError(f"unknown --shape {shape!r}; known: tiny, {', '.join(SHAPES)}")
    if min(steps, batch_size, threads, join) < 1 or max_length < 8:
        raise ConfigError(f"--steps, --batch-size, --threads and --join must be at least 1 and --max-length at least "
                          f"8 (got {steps}, {batch_size}, {threads}, {join}, {max_length})")
    learning_rate = learning_rate or (1e-3 if shape == "tiny" else 2e-5)
    token_budget = token_budget or batch_size * max_length
    if token_budget < max_length:
        raise ConfigError(f"--token-budget {token_budget} must hold one sequence of --max-length {max_length}")
    window = window or max(2, min(20, steps // 4))
    plan = [(BASELINE, "transformers.Trainer defaults (run_xnli: fp32, pad to max_length)", None, False)]
    config: dict = dict(LOOP_AS_TRAINER)
    for name, note, change, cuda_only in LEVERS:
        config = {**config, **change}
        plan.append((name, note, dict(config), cuda_only))
    best = dict(config)
    if not cuda:  # compile on a CPU costs minutes per shape on a laptop: the opt-in rows use the eager loop
        best["compile"] = "off"
    plan.append((TOKEN_BUDGET, f"opt-in: micro-batches of ≤ {token_budget} padded tokens (rows per step vary)",
                 {**best, "token_budget": token_budget}, False))
    if qa:
        qa_config = {**best, "padding": "max_length", "compile": "off"}
        plan.append(("qa-384", f"squad, every window padded to {QA_LENGTH} tokens", qa_config, False))
        plan.append(("qa-384+grad-checkpointing", "the same with gradient checkpointing",
                     {**qa_config, "grad_checkpointing": True}, False))
    known = [p[0] for p in plan]
    if setups:
        unknown = sorted(set(setups) - set(known))
        if unknown:
            raise ConfigError(f"unknown setup(s) {', '.join(unknown)}; known: {', '.join(known)}")
        plan = [p for p in plan if p[0] in setups or p[0] == BASELINE]  # the baseline always runs: ratios need it

    with tempfile.TemporaryDirectory(prefix="xstilts-bench-train-") as scratch:
        work = Path(work_dir or scratch)
        work.mkdir(parents=True, exist_ok=True)
        dataset, rows, dev = training_rows(data, steps * batch_size, join, work, languages)
        from xstilts.data.load import read_split

        labels = read_json(dataset / "manifest.json")["tasks"]["xnli"]["labels"]
        rows.to_json(work / "rows.jsonl", orient="records", lines=True, force_ascii=False)
        dev.to_json(work / "dev.jsonl", orient="records", lines=True, force_ascii=False)
        squad = read_split(dataset, "squad", "train")
        squad.loc[np.tile(np.arange(len(squad)), -(-steps * batch_size // len(squad)))[:steps * batch_size]].to_json(
            work / "qa_rows.jsonl", orient="records", lines=True, force_ascii=False)
        init = initial_model(shape, labels, work / "init")
        peak = peak_tflops or matmul_peak_tflops(cuda, threads)
        results = []
        progress = tqdm(plan, desc="bench train", unit="setup", disable=not env.progress_enabled())
        for index, (name, note, change, cuda_only) in enumerate(progress):
            progress.set_postfix(setup=name, refresh=True)
            if cuda_only and not cuda:
                results.append({"setup": name, "note": note, "skipped": "needs CUDA"})
                continue
            spec = {"index": index, "setup": name, "config": change or {}, "init": str(init), "rows": str(work / "rows.jsonl"),
                    "dev": str(work / "dev.jsonl"), "qa_rows": str(work / "qa_rows.jsonl"), "qa": name.startswith("qa-"),
                    "labels": labels, "steps": steps, "batch_size": batch_size, "max_length": max_length,
                    "learning_rate": learning_rate, "seed": seed, "threads": threads, "work": str(work)}
            results.append({"setup": name, "note": note, **run_in_process(spec, work)})
    return _report(results, peak, cuda, shape, steps, batch_size, max_length, join, threads, window, token_budget,
                   learning_rate, out)


def _report(results, peak, cuda, shape, steps, batch_size, max_length, join, threads, window, token_budget,
            learning_rate, out) -> dict:
    base = results[0]
    for r in results:
        if "skipped" in r:
            continue
        tokens_per_s = r.get("steady_tokens_per_second") or (r["steady_samples_per_second"] or 0) * r["mean_real_tokens"]
        r["real_token_mfu"] = round(6 * r["non_embedding_parameters"] * tokens_per_s / (peak * 1e12), 4)
        r["ratio_vs_trainer"] = (round(r["steady_samples_per_second"] / base["steady_samples_per_second"], 3)
                                 if not r["setup"].startswith("qa-") else None)
        r["loss_curve"] = (loss_curve_comparison(r["losses"], base["losses"], window)
                           if r["setup"] != BASELINE and not r["setup"].startswith("qa-") else None)
    qa = {r["setup"]: r for r in results if r["setup"].startswith("qa-") and "skipped" not in r}
    if len(qa) == 2:
        plain, checkpointed = qa["qa-384"], qa["qa-384+grad-checkpointing"]
        checkpointed["speed_vs_no_checkpointing"] = round(checkpointed["steady_samples_per_second"]
                                                          / plain["steady_samples_per_second"], 3)
        checkpointed["memory_vs_no_checkpointing"] = round(checkpointed["peak_memory_bytes"]
                                                           / plain["peak_memory_bytes"], 3)
    report = {
        "benchmark": "train", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_description(cuda, threads), "shape": shape, "steps": steps, "batch_size": batch_size,
        "max_length": max_length, "join": join, "learning_rate": learning_rate, "token_budget": token_budget,
        "loss_window": window, "peak_tflops": round(peak, 3),
        "peak_note": "dense matmul throughput measured on this device in this run (bf16 on CUDA, fp32 on CPU)",
        "mfu_note": "6 × non-embedding parameters × real (unpadded) tokens per second / peak",
        "baseline": BASELINE, "setups": results,
    }
    if out:
        write_json(out, report)
    return report
