"""`xstilts bench eval`: zero-shot evaluation speed of one classification model, PyTorch eager fp32 (the baseline)
against onnxruntime with the project's export, with graph fusion and with int8 dynamic quantisation, measured in
the same run on the same inputs (tokenised once, length-sorted dynamic-padding batches via kinds.run_batched).

Each setup reports samples/s (median of `repeats` timed passes after a warm-up pass), its ratio to PyTorch, the
agreement of its predictions with PyTorch's, gold accuracy, max |logit - PyTorch logit| and the model's size. On a
CUDA machine the baseline runs on the GPU and the fused ONNX model runs in fp16 with IO binding instead of int8.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
import numpy as np
import torch
from tqdm.auto import tqdm
from xstilts import env
from xstilts.errors import ConfigError
from xstilts.io import atomic_dir, read_json, write_json
from xstilts.kinds.base import Runner, run_batched
from xstilts.sampledata.generate import SAMPLE_LANGUAGES
from xstilts.kinds.base import PAIR, SINGLE
from xstilts.tasks.registry import get_task


# Randomly initialised XLM-R-shaped encoders (hub weights are not needed to measure speed): transformer body of
# the named size, the tiny model's tokenizer and vocabulary (the 250k-token embedding table costs a lookup only).
SHAPES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
BASELINE = "pytorch-eager-fp32"


def cuda_usable() -> bool:
    import onnxruntime as ort

    return torch.cuda.is_available() and "CUDAExecutionProvider" in ort.get_available_providers()


# ---- the model and data under test ------------------------------------------------------------------------------

def shaped_model_dir(shape: str, task_name: str, labels: list[str], out: Path, seed: int = 0) -> Path:
    """A model directory with a randomly initialised XLM-R-`shape` encoder and a random head for `task_name`."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from xstilts.models.tiny import ensure_tiny_model
    from xstilts.models.encoder import load_encoder

    _, tokenizer = load_encoder(str(ensure_tiny_model()))
    config = XLMRobertaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, bos_token_id=0,
                              eos_token_id=2, type_vocab_size=1, max_position_embeddings=514, **SHAPES[shape])
    torch.manual_seed(seed)
    encoder = XLMRobertaModel(config, add_pooling_layer=False)
    return _save_with_random_head(encoder, tokenizer, task_name, labels, out)


def _save_with_random_head(encoder, tokenizer, task_name: str, labels: list[str], out: Path) -> Path:
    from xstilts.models.encoder import build_model, save_model_dir

    specs = {task_name: {"kind": get_task(task_name).kind, "labels": labels}}
    model = build_model(encoder, specs)
    with atomic_dir(out) as tmp:
        save_model_dir(tmp, encoder, tokenizer, model, {"condition": "none", "task": task_name, "heads": specs,
                                                        "settings": {"max_length": 128}})
    return out


def trained_tiny_model_dir(task_name: str, dataset: Path, work: Path) -> Path:
    """The tiny encoder fine-tuned briefly on the task's sample training data, through the pipeline's own steps, so
    gold accuracy means something."""
    from xstilts.config import TrainConfig
    from xstilts.train.finetune import intermediate_finetune, target_finetune

    config = TrainConfig(epochs=3, batch_size=32, learning_rate=1e-3, max_length=128, checkpoint_every=100_000,
                         patience=0)
    intermediate_finetune("none", dataset, "tiny", work / "pretrained", config)
    target_finetune(task_name, dataset, work / "pretrained", work / "model", config)
    return work / "model"


def resolve_model(model: str, shape: str | None, task_name: str, labels: list[str], dataset: Path,
                  work: Path) -> tuple[Path, str]:
    """(model directory, description): --shape, `tiny` (trained briefly here), a model directory, or a hub id
    (its encoder with a random head)."""
    from xstilts.models.encoder import load_encoder

    if shape:
        return shaped_model_dir(shape, task_name, labels, work / "model"), f"random XLM-R-{shape} shape"
    if model == "tiny":
        return trained_tiny_model_dir(task_name, dataset, work), "tiny, fine-tuned on the sample data"
    if (Path(model) / "heads.json").exists():
        heads = read_json(Path(model) / "heads.json").get("heads", {})
        if task_name not in heads:
            raise ConfigError(f"{model}/heads.json has no {task_name!r} head (heads: {', '.join(heads) or 'none'})")
        return Path(model), f"model directory {model}"
    if Path(model).exists() and not (Path(model) / "config.json").exists():
        raise ConfigError(f"{model} is neither a model directory (heads.json) nor a pretrained encoder (config.json)")
    encoder, tokenizer = load_encoder(model)
    return _save_with_random_head(encoder, tokenizer, task_name, labels, work / "model"), f"{model}, random head"


def benchmark_inputs(task_name: str, data: str, languages: list[str] | None, examples: int, work: Path,
                     join: int = 1) -> tuple[Path, object]:
    """Validate the task's data (the pipeline's validate step) and return (dataset dir, `examples` test rows, the
    test split repeated when it is shorter). join > 1: each row's texts are `join` consecutive rows' texts joined,
    for realistic sequence lengths from short sample sentences (gold labels then mean nothing)."""
    from xstilts.data.load import read_split
    from xstilts.data.validate import validate_experiment

    task = get_task(task_name)
    if task.kind not in (PAIR, SINGLE):
        raise ConfigError(f"bench eval measures sentence classification; task {task_name!r} is {task.kind} "
                          f"(use xnli, pawsx or another pair/single classification task)")
    if examples < 1:
        raise ConfigError(f"--examples must be at least 1, got {examples}")
    dataset = work / "dataset"
    validate_experiment([task_name], ["none"], data, dataset, work / "validation.html", work / "validation.md",
                        languages)
    test = read_split(dataset, task_name, "test")
    if join < 1:
        raise ConfigError(f"--join must be at least 1, got {join}")
    reps = -(-examples * join // len(test))
    rows = test.loc[np.tile(np.arange(len(test)), reps)[:examples * join]].reset_index(drop=True)
    if join > 1:
        group = rows.index // join
        texts = {c: rows.groupby(group)[c].agg(" ".join) for c in ("text_a", "text_b")
                 if c in rows and rows[c].notna().all()}
        rows = rows.groupby(group).first().assign(**texts).reset_index(drop=True)
    return dataset, rows


# ---- runners -----------------------------------------------------------------------------------------------------

def torch_runner(module: torch.nn.Module, device: torch.device) -> Runner:
    """PyTorch eager fp32 under inference_mode: the baseline."""

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            logits = module(torch.from_numpy(inputs["input_ids"]).to(device),
                            torch.from_numpy(inputs["attention_mask"]).to(device))
        return {"logits": logits.float().cpu().numpy()}

    return run


def ort_session(path: Path, threads: int, cuda: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


def ort_runner(session) -> Runner:
    names = [o.name for o in session.get_outputs()]
    return lambda inputs: {n: v.astype(np.float32) for n, v in zip(names, session.run(names, inputs))}


def iobinding_runner(session) -> Runner:
    """GPU: inputs copied to the device once per batch and outputs kept there until the run ends (IO binding)."""
    import onnxruntime as ort

    names = [o.name for o in session.get_outputs()]

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        binding = session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
        for name in names:
            binding.bind_output(name, "cuda", 0)
        session.run_with_iobinding(binding)
        return {n: v.astype(np.float32) for n, v in zip(names, binding.copy_outputs_to_cpu())}

    return run


# ---- model variants ------------------------------------------------------------------------------------------------

def fused_op_counts(path: Path) -> dict[str, int]:
    """How many of onnxruntime's fused contrib ops (com.microsoft domain) and int8 ops the graph holds."""
    import collections

    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(collections.Counter(n.op_type for n in graph.node
                                    if n.domain == "com.microsoft" or "Integer" in n.op_type))


def onnx_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def ort_transformers_optimized(src: Path, dest: Path, num_heads: int, hidden_size: int) -> None:
    """onnxruntime.transformers.optimizer (model_type bert) over the plain dynamo export."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
    optimized.save_model_to_file(str(dest))


def quantized_int8(src: Path, dest: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8)


def fp16(src: Path, dest: Path) -> None:
    """Weights and compute in fp16, inputs and outputs kept as in the fp32 model (GPU only)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dest))


# ---- the benchmark -------------------------------------------------------------------------------------------------

def time_setup(run: Runner, sequences: list, pad_id: int, batch_size: int,
               repeats: int) -> tuple[np.ndarray, list[float]]:
    """Logits in input order and the seconds of each timed pass (one untimed warm-up pass first)."""
    logits = run_batched(run, PAIR, sequences, pad_id, batch_size)["logits"]
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_batched(run, PAIR, sequences, pad_id, batch_size)
        seconds.append(time.perf_counter() - started)
    return logits, seconds


def bench_eval(model: str = "tiny", task: str = "xnli", examples: int = 512, batch_size: int = 32, threads: int = 2,
               repeats: int = 3, shape: str | None = None, data: str = "data/sample",
               languages: list[str] | None = list(SAMPLE_LANGUAGES), join: int = 1, int8: bool = True,
               out: str | Path | None = "bench-eval.json", work_dir: str | Path | None = None) -> dict:
    """Measure every setup on the same tokenised inputs; write `out` (JSON, atomically) and return the results."""
    if shape is not None and shape not in SHAPES:
        raise ConfigError(f"unknown --shape {shape!r}; known: {', '.join(SHAPES)}")
    if threads < 1 or batch_size < 1 or repeats < 1:
        raise ConfigError(f"--threads, --batch-size and --repeats must be at least 1 "
                          f"(got {threads}, {batch_size}, {repeats})")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _bench_eval(model, task, examples, batch_size, threads, repeats, shape, data, languages, join, int8,
                           out, work_dir)
    finally:
        torch.set_num_threads(previous_threads)


def _bench_eval(model, task, examples, batch_size, threads, repeats, shape, data, languages, join, int8, out,
                work_dir) -> dict:
    from xstilts.export.encoder import export_onnx, exportable, fuse_for_ort

    cuda = cuda_usable()
    device = torch.device("cuda" if cuda else "cpu")
    with tempfile.TemporaryDirectory(prefix="xstilts-bench-") as scratch:
        work = Path(work_dir or scratch)
        dataset, rows = benchmark_inputs(task, data, languages, examples, work, join)
        labels = read_json(dataset / "manifest.json")["tasks"][task]["labels"]
        model_dir, model_note = resolve_model(model, shape, task, labels, dataset, work)
        module, tokenizer, meta = exportable(model_dir)
        if meta["labels"] != labels:
            raise ConfigError(f"{model_dir} labels {meta['labels']} differ from the dataset's {labels} for {task!r}")
        settings_max = meta["settings"].get("max_length", 128)
        sequences = tokenizer(rows["text_a"].tolist(), rows["text_b"].tolist() if get_task(task).kind == PAIR else None,
                              truncation=True, max_length=settings_max)["input_ids"]
        gold = np.asarray([labels.index(label) for label in rows["label"]])
        config = module.model.encoder.config

        # The plain export (parity-checked by export_onnx) and its variants, built from the same file.
        export_onnx(model_dir, work / "onnx-plain", optimize=False)
        plain = work / "onnx-plain" / "model.onnx"
        variants: dict[str, tuple[Path, dict, str]] = {
            "ort-export": (plain, {}, "dynamo export as is, ORT_ENABLE_ALL"),
        }
        transformers_opt = work / "ort-transformers.onnx"
        ort_transformers_optimized(plain, transformers_opt, config.num_attention_heads, config.hidden_size)
        variants["ort-transformers-optimizer"] = (transformers_opt, fused_op_counts(transformers_opt),
                                                  "onnxruntime.transformers optimize_model(model_type=bert)")
        import onnx_ir as ir

        fused_model = ir.load(str(plain))
        fuse_for_ort(fused_model)
        fused = work / "ort-fused.onnx"
        ir.save(fused_model, str(fused))
        variants["ort-fused"] = (fused, fused_op_counts(fused),
                                 "export path's fusion (export_onnx's, from 10 M parameters)")
        if cuda:
            fp16(fused, work / "ort-fused-fp16.onnx")
            variants["ort-fused-fp16-iobinding"] = (work / "ort-fused-fp16.onnx", fused_op_counts(fused),
                                                    "fused, fp16, CUDA with IO binding")
        elif int8:
            quantized_int8(fused, work / "ort-fused-int8.onnx")
            variants["ort-fused-int8"] = (work / "ort-fused-int8.onnx", fused_op_counts(work / "ort-fused-int8.onnx"),
                                          "fused, int8 dynamic quantisation (weights int8, activations per batch)")

        module = module.to(device)
        setups = [(BASELINE, lambda: torch_runner(module, device), {}, "torch.inference_mode, fp32",
                   sum(p.numel() * p.element_size() for p in module.parameters()))]
        for name, (path, fused_ops, note) in variants.items():
            def make(path=path, iobinding=name.endswith("iobinding")):
                session = ort_session(path, threads, cuda)
                return iobinding_runner(session) if iobinding else ort_runner(session)

            setups.append((name, make, fused_ops, note, onnx_bytes(path)))

        results = []
        baseline_logits = None
        for name, make, fused_ops, note, size in tqdm(setups, desc="bench eval", unit="setup",
                                                     disable=not env.progress_enabled()):
            logits, seconds = time_setup(make(), sequences, tokenizer.pad_token_id, batch_size, repeats)
            if baseline_logits is None:
                baseline_logits = logits
            predictions = logits.argmax(-1)
            results.append({
                "setup": name, "note": note, "samples_per_s": round(len(sequences) / statistics.median(seconds), 2),
                "seconds": [round(s, 4) for s in seconds],
                "agreement": float(np.mean(predictions == baseline_logits.argmax(-1))),
                "accuracy": float(np.mean(predictions == gold)) if join == 1 else None,
                "max_abs_logit_diff": float(np.abs(logits - baseline_logits).max()),
                "model_bytes": int(size), "fused_ops": fused_ops,
            })
        base = results[0]["samples_per_s"]
        for r in results:
            r["ratio_vs_pytorch"] = round(r["samples_per_s"] / base, 3)
    lengths = [len(s) for s in sequences]
    report = {
        "benchmark": "eval", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device_description(cuda, threads), "model": model_note, "shape": shape,
        "encoder": {k: getattr(config, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                     "intermediate_size", "vocab_size")},
        "task": task, "examples": len(sequences), "join": join, "batch_size": batch_size, "threads": threads,
        "repeats": repeats,
        "mean_tokens": round(float(np.mean(lengths)), 1), "max_tokens": int(max(lengths)),
        "baseline": BASELINE, "setups": results,
    }
    if out:
        write_json(out, report)
    return report


def device_description(cuda: bool, threads: int) -> str:
    import onnxruntime as ort

    if cuda:
        hardware = torch.cuda.get_device_name(0)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")] if cpuinfo.exists() else []
        hardware = f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores"
    return (f"{hardware}; {threads} thread(s); torch {torch.__version__}, onnxruntime {ort.__version__}")
