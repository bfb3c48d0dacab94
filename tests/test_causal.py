"""The decoder path on the tiny causal LM: tokenizer, completion-only loss, fine-tuning through the shared training
loop (intermediate → target), ONNX export with a KV cache, PyTorch/onnxruntime generation parity, and
generate_samples' code-eval output."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from xstilts.kinds import base as kinds
from xstilts.models.tiny import CODE_CORPUS, causal_corpus, ensure_tiny_causal_model, train_causal_tokenizer
from xstilts.kinds.generation import completion_features
from xstilts.models.causal import load_causal_lm
from xstilts.export.decoder import load_decoder
from xstilts.errors import ConfigError, DataError
from xstilts.evaluate.generate import GenerationConfig, TorchStep, generate, generate_samples, onnx_generator
from xstilts.config import Settings
from xstilts.kinds.base import IGNORE_INDEX
from xstilts.tasks.registry import get_task
from xstilts.config import TrainConfig
from xstilts.train.finetune import finetune, intermediate_finetune, target_finetune
from xstilts.train.loop import train


@pytest.fixture(scope="module")
def code_dataset(sample_root, tmp_path_factory):
    """mbpp (English Python, train/validation) and mbxp (test in six programming languages), validated."""
    from xstilts.data.validate import validate_experiment

    out = tmp_path_factory.mktemp("code")
    validate_experiment(["mbxp"], ["mbpp"], str(sample_root), out / "dataset", out / "r.html", out / "r.md", [])
    return out / "dataset"


@pytest.fixture(scope="module")
def causal_config():
    return TrainConfig(epochs=1, max_steps=4, batch_size=8, learning_rate=3e-3, max_length=128, eval_every=2,
                       checkpoint_every=2, patience=0)


@pytest.fixture(scope="module")
def causal_models(code_dataset, causal_config, tmp_path_factory):
    """tiny-causal → mbpp intermediate → mbxp target (trained on mbpp's English Python data)."""
    root = tmp_path_factory.mktemp("causal-models")
    intermediate_finetune("mbpp", code_dataset, "tiny-causal", root / "mbpp", causal_config)
    target_finetune("mbxp", code_dataset, root / "mbpp", root / "target", causal_config)
    return root


@pytest.fixture(scope="module")
def causal_onnx(causal_models, tmp_path_factory):
    from xstilts.export.encoder import export_onnx

    out = tmp_path_factory.mktemp("causal-onnx") / "onnx"
    export_onnx(causal_models / "target", out)  # the export step dispatches causal model directories
    return out


def test_tiny_causal_tokenizer_round_trips_code_and_is_deterministic():
    _, tokenizer = load_causal_lm("tiny-causal")
    for text in CODE_CORPUS + ("\tтабуляция и юникод ✓\n\n",):
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: whitespace survives
    assert tokenizer.eos_token_id != tokenizer.pad_token_id and tokenizer.padding_side == "left"
    assert ensure_tiny_causal_model() == ensure_tiny_causal_model()  # built once, then found in the cache
    corpus = causal_corpus()
    assert any("def " in text and "assert" in text for text in corpus[len(CODE_CORPUS):])  # the code tasks' samples
    assert train_causal_tokenizer(corpus).get_vocab() == tokenizer.get_vocab()


def test_completion_features_mask_the_prompt_and_truncate_from_its_left():
    _, tokenizer = load_causal_lm("tiny-causal")
    prompts, completions = ["def add(a, b):\n", "# long\n" * 40], ["    return a + b\n", "    pass\n"]
    ids, labels = completion_features(tokenizer, prompts, completions, max_length=32)
    prompt_ids = tokenizer(prompts[0])["input_ids"]
    completion_ids = tokenizer(completions[0], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert ids[0] == prompt_ids + completion_ids
    assert labels[0] == [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    assert len(ids[1]) == 32 and labels[1][-1] == tokenizer.eos_token_id  # the prompt lost its start, not the end
    assert tokenizer.decode(ids[1]).endswith("# long\n    pass\n" + tokenizer.eos_token)
    with pytest.raises(DataError, match="mbpp training data: row 1: field 'completion' is empty"):
        completion_features(tokenizer, prompts, ["x", ""], 32, where="mbpp training data")


def test_loss_counts_completion_tokens_only():
    """Changing the logits at positions that predict prompt tokens (or padding) leaves the loss unchanged; changing
    those that predict completion tokens does not; the loss is the mean cross-entropy over completion tokens."""
    lm, tokenizer = load_causal_lm("tiny-causal")
    df = pd.DataFrame({"prompt": ["def add(a, b):\n", "# Gibt die Summe zurück\ndef summe(zahlen):\n"],
                       "completion": ["    return a + b\n", "    return sum(zahlen)\n"]})
    data = kinds.encode_train(get_task("mbpp"), (), df, tokenizer, Settings(max_length=64))
    ids, mask, y = kinds.collate(data, np.array([0, 1]), tokenizer.pad_token_id, torch.device("cpu"))
    assert mask.sum(1).tolist() == data.lengths  # right padding, mask from the lengths
    torch.manual_seed(0)
    logits = torch.randn(*ids.shape, len(tokenizer))
    base = kinds.loss("generation", logits, y)
    predicts_completion = torch.zeros(ids.shape, dtype=torch.bool)
    predicts_completion[:, :-1] = y[:, 1:] != IGNORE_INDEX
    noise = torch.randn_like(logits) * 5
    assert torch.equal(kinds.loss("generation", logits + noise * ~predicts_completion[..., None], y), base)
    assert not torch.allclose(kinds.loss("generation", logits + noise * predicts_completion[..., None], y), base)
    targets = y[:, 1:][y[:, 1:] != IGNORE_INDEX]
    manual = torch.nn.functional.cross_entropy(logits[predicts_completion], targets)
    assert torch.allclose(base, manual)
    n_prompt = len(tokenizer(df["prompt"][0])["input_ids"])
    assert (y[0, :n_prompt] == IGNORE_INDEX).all() and (y[0, n_prompt:data.lengths[0]] != IGNORE_INDEX).all()


def test_causal_finetune_intermediate_then_target(causal_models, causal_config):
    for name, task in (("mbpp", "mbpp"), ("target", "mbxp")):
        model_dir = causal_models / name
        assert (model_dir / "lm" / "config.json").exists() and not (model_dir / "encoder").exists()
        heads = json.loads((model_dir / "heads.json").read_text())
        assert heads["architecture"] == "causal_lm" and heads["heads"] == {
            task: {"kind": "generation", "labels": [], "metric": "pass@1"}}
        training = json.loads((model_dir / "training.json").read_text())
        assert training["steps"] == causal_config.max_steps and len(training["losses"]) == 4
        assert [s[0] for s in training["dev_scores"]] == [2, 4]  # completion token accuracy on the dev split
        assert all(0.0 <= s[1] <= 1.0 for s in training["dev_scores"]) and training["best_dev_score"] > 0
    assert json.loads((causal_models / "target" / "heads.json").read_text())["init"] == "intermediate model"
    # the target continued the intermediate weights: its first loss is below the intermediate's first
    first = lambda name: json.loads((causal_models / name / "training.json").read_text())["losses"][0]
    assert first("target") < first("mbpp")
    lineage = json.loads((causal_models / "target" / "lineage.json").read_text())
    assert "intermediate_model" in lineage["inputs"]


def test_none_condition_passes_the_causal_lm_through(code_dataset, causal_config, tmp_path):
    intermediate_finetune("none", code_dataset, "tiny-causal", tmp_path / "none", causal_config)
    assert json.loads((tmp_path / "none" / "heads.json").read_text())["architecture"] == "causal_lm"
    tiny, _ = load_causal_lm("tiny-causal")
    passed, _ = load_causal_lm(tmp_path / "none")
    assert all(torch.equal(a, b) for a, b in zip(tiny.state_dict().values(), passed.state_dict().values()))


def test_checkpoints_of_tied_weights_resume(code_dataset, tmp_path):
    """The tiny LM ties its embeddings to the output layer (as Qwen2.5-Coder does): checkpoints must still write,
    and a re-run resumes from them."""
    lm, tokenizer = load_causal_lm("tiny-causal")
    from xstilts.models.causal import CausalLMModel
    from xstilts.data.load import read_split

    data = [(get_task("mbpp"), (), read_split(code_dataset, "mbpp", "train"), None)]
    config = TrainConfig(max_steps=2, batch_size=8, learning_rate=1e-3, max_length=64, checkpoint_every=1)
    train(CausalLMModel(lm, {"mbpp": "generation"}), tokenizer, data, config, tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "step-00000001" / "model.safetensors").exists()
    resumed = train(CausalLMModel(load_causal_lm("tiny-causal")[0], {"mbpp": "generation"}), tokenizer, data, config,
                    tmp_path / "ckpt")
    assert resumed["resumed_from_step"] == 1 and resumed["steps"] == 2


def test_generation_tasks_need_a_causal_lm_and_do_not_mix(code_dataset, causal_models, causal_config, tmp_path):
    with pytest.raises(ConfigError, match="'tiny' is an encoder, but generation tasks need a causal LM"):
        finetune(["mbpp"], code_dataset, "tiny", tmp_path / "x", causal_config)
    with pytest.raises(ConfigError, match="is a causal LM, but target task.s. panx need an encoder"):
        finetune(["mbpp", "panx"], code_dataset, "tiny-causal", tmp_path / "x", causal_config)
    with pytest.raises(ConfigError, match=r"task\(s\) ccg cannot train a causal LM"):  # tagging has no text form
        finetune(["ccg"], code_dataset, "tiny-causal", tmp_path / "x", causal_config)
    with pytest.raises(ConfigError, match="is a causal LM, but target task.s. xnli need an encoder"):
        target_finetune("xnli", code_dataset, causal_models / "mbpp", tmp_path / "x", causal_config)
    assert not (tmp_path / "x").exists()


def test_export_decoder_with_kv_cache(causal_onnx):
    import onnxruntime as ort

    report = json.loads((causal_onnx / "export_report.json").read_text())
    assert report["parity_passed"] and report["max_abs_diff"] <= report["tolerance"] == 1e-4
    assert [(s["new"], s["past"]) for s in report["parity_shapes"]][:2] == [(report["parity_shapes"][0]["new"], 0),
                                                                            (1, report["parity_shapes"][0]["new"])]
    meta = json.loads((causal_onnx / "task.json").read_text())
    assert meta["kind"] == "generation" and meta["decoder"]["layers"] == 2 and meta["decoder"]["kv_heads"] == 2
    session = ort.InferenceSession(str(causal_onnx / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    assert list(inputs)[:3] == ["input_ids", "attention_mask", "position_ids"]
    assert set(inputs) - {"input_ids", "attention_mask", "position_ids"} == {
        f"past_key_values.{i}.{kv}" for i in (0, 1) for kv in ("key", "value")}
    assert set(outputs) == {"logits"} | {f"present.{i}.{kv}" for i in (0, 1) for kv in ("key", "value")}
    batch, heads, past, head_dim = inputs["past_key_values.0.key"]
    assert isinstance(batch, str) and isinstance(past, str) and (heads, head_dim) == (2, 16)  # dynamic axes
    assert all(isinstance(d, str) for d in inputs["input_ids"])
    assert (causal_onnx / "lineage.json").exists() and (causal_onnx / "tokenizer.json").exists()


def test_onnx_and_pytorch_greedy_generation_give_identical_tokens(causal_models, causal_onnx, code_dataset):
    """Fixed prompts of different lengths (the six languages' MBXP prompts), batched with left padding: onnxruntime
    reusing its KV cache and PyTorch choose the same token at every step."""
    from xstilts.data.load import read_split

    prompts = read_split(code_dataset, "mbxp", "test").groupby("language").head(1)["prompt"].tolist()
    assert len({len(p) for p in prompts}) == len(prompts) == 6
    onnx_step, tokenizer, _, _ = onnx_generator(causal_onnx)
    decoder, _, _ = load_decoder(causal_models / "target")
    # min_new_tokens: the briefly trained model would often end at once; 24 tokens per row make a real comparison
    config = GenerationConfig(max_new_tokens=24, min_new_tokens=24, batch_size=4)
    on_onnx = generate(onnx_step, tokenizer, prompts, config)
    on_torch = generate(TorchStep(decoder), tokenizer, prompts, config)
    assert on_onnx.tokens == on_torch.tokens and on_onnx.completions == on_torch.completions
    assert [len(t[0]) for t in on_onnx.tokens] == [24] * 6 and len({tuple(t[0]) for t in on_onnx.tokens}) > 1
    sampled = GenerationConfig(n=2, temperature=0.8, top_p=0.9, max_new_tokens=12, min_new_tokens=6, batch_size=5)
    assert generate(onnx_step, tokenizer, prompts, sampled).tokens == generate(TorchStep(decoder), tokenizer, prompts,
                                                                              sampled).tokens


def test_generate_samples_writes_code_eval_samples(causal_onnx, code_dataset, tmp_path):
    summary = generate_samples(causal_onnx, code_dataset, tmp_path / "samples", n=2, temperature=0.8, top_p=0.95,
                               max_new_tokens=16, seed=3)
    lines = [json.loads(line) for line in (tmp_path / "samples" / "samples.jsonl").read_text().splitlines()]
    problems = [json.loads(line) for line in (tmp_path / "samples" / "problems.jsonl").read_text().splitlines()]
    assert summary["problems"] == len(problems) == 24 and summary["samples"] == len(lines) == 48
    assert set(lines[0]) == {"task_id", "completion", "language", "sample", "task_language"}
    assert {(s["task_id"], s["sample"]) for s in lines} == {(p["task_id"], i) for p in problems for i in (0, 1)}
    assert {s["language"] for s in lines} == {"python", "javascript", "typescript", "java", "cpp", "go"}
    assert all(set(p) >= {"task_id", "prompt", "test", "entry_point", "language", "canonical_solution"} for p in problems)
    generation = json.loads((tmp_path / "samples" / "generation.json").read_text())
    assert generation["provider"] == "CPUExecutionProvider" and sum(generation["stopped"].values()) == 48
    assert (tmp_path / "samples" / "lineage.json").exists()
    # code-eval reads both files as they are (its own loaders and checks)
    from xstilts.codeexec.harness import load_problems, load_samples

    read_problems = load_problems(tmp_path / "samples" / "problems.jsonl")
    assert len(load_samples(tmp_path / "samples" / "samples.jsonl", read_problems)) == 48
    # the problems file it wrote reads back (HumanEval/MBXP format) and gives the same samples for the same seed
    generate_samples(causal_onnx, tmp_path / "samples" / "problems.jsonl", tmp_path / "again", n=2, temperature=0.8,
                     top_p=0.95, max_new_tokens=16, seed=3)
    assert (tmp_path / "again" / "samples.jsonl").read_text() == (tmp_path / "samples" / "samples.jsonl").read_text()
    only_go = generate_samples(causal_onnx, code_dataset, tmp_path / "go", max_new_tokens=4, languages=["go"])
    assert only_go["problems"] == 4


def test_generation_input_errors(causal_onnx, code_dataset, tmp_path):
    from xstilts.evaluate.zero_shot import zero_shot_eval

    encoder_export = tmp_path / "encoder-onnx"
    encoder_export.mkdir()
    (encoder_export / "task.json").write_text(json.dumps({"task": "xnli", "kind": "pair_classification"}))
    with pytest.raises(ConfigError, match="pair_classification encoder export, not a causal LM"):
        generate_samples(encoder_export, code_dataset, tmp_path / "out")
    with pytest.raises(ConfigError, match="no task.json"):
        generate_samples(tmp_path, code_dataset, tmp_path / "out")
    with pytest.raises(ConfigError, match="leaves no room for a prompt"):
        generate_samples(causal_onnx, code_dataset, tmp_path / "out", max_new_tokens=5000)
    with pytest.raises(ConfigError, match="unknown generation setting.s. beams"):  # the eval step's settings
        zero_shot_eval(causal_onnx, code_dataset, tmp_path / "eval", generation={"beams": 2})
    assert not (tmp_path / "eval").exists()
    assert not (tmp_path / "out").exists()


def test_generate_command(causal_onnx, code_dataset, tmp_path):
    from typer.testing import CliRunner

    from xstilts.cli.main import app

    runner = CliRunner()
    ok = runner.invoke(app, ["generate", "--model", str(causal_onnx), "--problems", str(code_dataset), "--out",
                             str(tmp_path / "out"), "--n", "2", "--temperature", "0.7", "--top-p", "0.9",
                             "--max-new-tokens", "8", "--languages", "python,java"])
    assert ok.exit_code == 0, ok.output
    assert "16 samples for 8 problems" in ok.output
    assert len((tmp_path / "out" / "samples.jsonl").read_text().splitlines()) == 16
    bad = runner.invoke(app, ["generate", "--model", str(causal_onnx), "--problems", str(code_dataset), "--out",
                              str(tmp_path / "bad"), "--n", "3"])
    assert bad.exit_code == 1 and "error: n = 3 samples need sampling" in bad.output
    assert not (tmp_path / "bad").exists()
