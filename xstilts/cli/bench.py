"""`xstilts bench eval` and `xstilts bench train`: speed benchmarks that print a table and write JSON. One command
per benchmark (add another with `@app.command("name")`); each imports torch and its benchmark module when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from rich.console import Console
from rich.table import Table
from xstilts.cli.common import console, friendly_errors
from xstilts.config import split_csv


app = typer.Typer(help="Speed benchmarks: print a table and write JSON.", no_args_is_help=True)


def human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def print_eval_table(report: dict) -> None:
    table = Table(title=f"bench eval: {report['model']} · {report['task']} · {report['examples']} examples "
                        f"(mean {report['mean_tokens']} tokens), batch {report['batch_size']}",
                  caption=f"{report['device']} · {report['date']}")
    for header in ("setup", "samples/s", "× PyTorch", "agreement", "accuracy", "max |Δlogit|", "size", "fused ops"):
        table.add_column(header, justify="left" if header in ("setup", "fused ops") else "right")
    for r in report["setups"]:
        fused = ", ".join(f"{k} {v}" for k, v in sorted(r["fused_ops"].items())) or "—"
        accuracy = "—" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        table.add_row(r["setup"], f"{r['samples_per_s']:.1f}", f"{r['ratio_vs_pytorch']:.2f}", f"{r['agreement']:.3f}",
                      accuracy, f"{r['max_abs_logit_diff']:.2g}", human_bytes(r["model_bytes"]), fused)
    out = Console()
    if not out.is_terminal:  # piped or logged: keep each row on one line
        out = Console(width=200)
    out.print(table)


@app.command("eval")
@friendly_errors
def bench_eval_command(
    model: str = typer.Option("tiny", "--model", help="`tiny` (fine-tuned briefly on the sample data first), a model "
                              "directory with a head for --task, or a hub id / encoder folder (random head)."),
    shape: Optional[str] = typer.Option(None, "--shape", help="Instead of --model: a randomly initialised "
                                        "XLM-R-`base` or -`large`-shaped encoder (tiny tokenizer); accuracy is then "
                                        "agreement with PyTorch, not gold labels."),
    task: str = typer.Option("xnli", "--task", help="A pair or single-sentence classification task."),
    data: str = typer.Option("data/sample", "--data", help="Data root holding <task>/<split>.jsonl|.parquet, or `hf`."),
    languages: str = typer.Option("en,de,es,fr,ru", "--languages", help="Test languages, comma-separated "
                                  "(default: the sample data's; empty = all of the task's)."),
    examples: int = typer.Option(512, "--examples", help="Test rows to evaluate (the split repeats if shorter)."),
    join: int = typer.Option(1, "--join", help="Join this many consecutive test rows' texts into one example, for "
                             "realistic lengths from the short sample sentences (gold accuracy is then not reported)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Rows per batch (length-sorted, padded per batch)."),
    threads: int = typer.Option(2, "--threads", help="Intra-op threads for PyTorch and onnxruntime alike."),
    repeats: int = typer.Option(3, "--repeats", help="Timed passes per setup after one warm-up pass; the median "
                                "counts."),
    int8: bool = typer.Option(True, "--int8/--no-int8", help="Also measure the int8 dynamically quantised model."),
    out: Path = typer.Option(Path("bench-eval.json"), "--out", help="JSON results (written atomically)."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Keep the models built on the way here "
                                            "(default: a temporary folder)."),
):
    """Zero-shot evaluation speed: PyTorch eager fp32 (the baseline) vs onnxruntime with the plain export, with
    onnxruntime.transformers' optimizer, with the export path's fusion, and fused + int8; same inputs, same
    threads, one run."""
    from xstilts.bench.eval import bench_eval

    report = bench_eval(model=model, task=task, examples=examples, batch_size=batch_size, threads=threads,
                        repeats=repeats, shape=shape, data=data,
                        languages=split_csv(languages) or None, join=join, int8=int8, out=out, work_dir=work_dir)
    print_eval_table(report)
    console.print(f"results: {out}", highlight=False)


def print_train_table(report: dict) -> None:
    table = Table(title=f"bench train: XLM-R-{report['shape']} shape · xnli rows · batch {report['batch_size']} · "
                        f"max length {report['max_length']} · {report['steps']} steps",
                  caption=f"{report['device']} · peak {report['peak_tflops']:.1f} TFLOP/s (measured matmul) · "
                          f"{report['date']}")
    for header in ("setup", "samples/s", "× Trainer", "real-token MFU", "peak memory", "warm-up s", "shapes",
                   "loss Δ (noise)", "dev acc"):
        table.add_column(header, justify="left" if header == "setup" else "right")
    for r in report["setups"]:
        if "skipped" in r:
            table.add_row(r["setup"], f"skipped: {r['skipped']}", *[""] * 7)
            continue
        curve = r.get("loss_curve")
        loss = ("—" if not curve or curve["max_abs_delta"] is None else
                f"{curve['max_abs_delta']:.3f} ({curve['noise']:.3f}){'' if curve['within_noise'] else ' !'}")
        ratio = "—" if r["ratio_vs_trainer"] is None else f"{r['ratio_vs_trainer']:.2f}"
        if "speed_vs_no_checkpointing" in r:
            ratio = f"{r['speed_vs_no_checkpointing']:.2f} vs qa-384"
        table.add_row(r["setup"], f"{r['steady_samples_per_second']:.1f}", ratio, f"{100 * r['real_token_mfu']:.2f} %",
                      human_bytes(r["peak_memory_bytes"]), f"{r['warmup_seconds']:.1f}", str(r["distinct_shapes"]),
                      loss, "—" if r["dev_accuracy"] is None else f"{r['dev_accuracy']:.3f}")
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)
    out.print(table)


@app.command("train")
@friendly_errors
def bench_train_command(
    shape: Optional[str] = typer.Option(None, "--shape", help="Encoder shape, randomly initialised: tiny, base or "
                                        "large (default: large on CUDA, tiny on a CPU)."),
    steps: int = typer.Option(0, "--steps", help="Optimizer steps per setup (default: 200 on CUDA, 30 on a CPU); "
                              "the loss curves are compared over these steps."),
    batch_size: int = typer.Option(32, "--batch-size", help="Rows per step, the same for every setup."),
    max_length: int = typer.Option(128, "--max-length", help="Truncation length; the Trainer pads every row to it."),
    join: int = typer.Option(6, "--join", help="Join this many sample rows' texts per example (realistic lengths "
                             "from short sample sentences)."),
    learning_rate: float = typer.Option(0.0, "--lr", help="Peak learning rate, linear decay, no warm-up (the "
                                        "Trainer's schedule); default 2e-5, or 1e-3 for the tiny shape."),
    token_budget: int = typer.Option(0, "--token-budget", help="Padded tokens per micro-batch of the opt-in "
                                     "token-budget row (default: batch × max length, the Trainer batch's padded tokens)."),
    qa: bool = typer.Option(True, "--qa/--no-qa", help="Also measure 384-token QA with and without gradient "
                            "checkpointing."),
    setups: str = typer.Option("", "--setups", help="Only these setups, comma-separated (the Trainer baseline always "
                               "runs)."),
    threads: int = typer.Option(2, "--threads", help="CPU threads per setup."),
    peak_tflops: float = typer.Option(0.0, "--peak-tflops", help="MFU denominator; default: dense matmul throughput "
                                      "measured on this device in this run."),
    data: str = typer.Option("data/sample", "--data", help="Data root holding xnli/ and squad/ (or `hf`)."),
    out: Path = typer.Option(Path("bench-train.json"), "--out", help="JSON results (written atomically)."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Keep the data, initial model and per-setup "
                                            "results here (default: a temporary folder)."),
):
    """Fine-tuning speed: the Hugging Face Trainer with its defaults (baseline) against this project's training loop
    with one speed lever switched on per row; same model, batch and data, one run."""
    from xstilts.bench.train import bench_train

    report = bench_train(shape=shape, steps=steps, batch_size=batch_size, max_length=max_length, join=join,
                         learning_rate=learning_rate, token_budget=token_budget, qa=qa,
                         setups=split_csv(setups) or None, threads=threads, peak_tflops=peak_tflops, data=data,
                         out=out, work_dir=work_dir)
    print_train_table(report)
    console.print(f"results: {out}", highlight=False)
