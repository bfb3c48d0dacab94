"""Decoding: stop sequences, token choice (greedy, temperature, top-p), n samples per prompt, seeds, validation of the
generation parameters, and problem loading. The model is the untrained tiny causal LM in PyTorch (its random weights
spread probability over many tokens, which the sampling tests need); ONNX parity is in test_causal.py."""

import json

import numpy as np
import pytest

from xstilts.errors import ConfigError, DataError
from xstilts.evaluate.generate import (STOP_SEQUENCES, GenerationConfig, StopSequences, TorchStep, choose_token, generate, load_problems, program_language, stop_sequences, truncate)

PROMPTS = ["def add(a, b):\n    ", "# Gibt die Summe zurück\ndef summe(zahlen):\n    return ",
           "function countWords(sentence) {\n  "]


@pytest.fixture(scope="module")
def tiny():
    """(step, tokenizer) of the untrained tiny causal LM."""
    from xstilts.export.decoder import KVCacheDecoder
    from xstilts.models.causal import load_causal_lm

    lm, tokenizer = load_causal_lm("tiny-causal")
    return TorchStep(KVCacheDecoder(lm.float().eval()).eval()), tokenizer


# ---- stop sequences ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("language, text, expected", [
    # Python: the next top-level statement or definition is cut, with everything after it
    ("python", "    return a + b\n\ndef other():\n    pass\n", "    return a + b\n"),
    ("python", "    return a + b\nprint(add(1, 2))\n", "    return a + b"),
    ("python", "    return a + b\nif __name__ == '__main__':\n    main()\n", "    return a + b"),
    ("python", "    return a + b\n\n\nclass Helper:\n    pass\n", "    return a + b\n\n"),
    # brace languages: the closing brace at column 0 is kept, what follows is dropped
    ("javascript", "  return a + b;\n}\n\nconsole.log(add(1, 2));\n", "  return a + b;\n}\n"),
    ("javascript", "  return a + b;\n\nconsole.log(1)", "  return a + b;\n"),
    ("typescript", "  if (a) {\n    return b;\n  }\n  return a;\n}\nfunction next() {}\n",
     "  if (a) {\n    return b;\n  }\n  return a;\n}\n"),
    ("java", "        return a + b;\n    }\n}\nclass Main {\n", "        return a + b;\n    }\n}\n"),
    ("cpp", "    return a + b;\n}\nint main() {\n    return 0;\n}\n", "    return a + b;\n}\n"),
    ("go", "\treturn a + b\n}\n\nfunc main() {\n}\n", "\treturn a + b\n}\n"),
    ("go", "}\nfunc other() {}\n", "}\n"),  # an empty body: the completion's first line closes the function
])
def test_truncate_cuts_at_the_language_stop_sequences(language, text, expected):
    completion, stopped = truncate(text, stop_sequences(language))
    assert completion == expected and stopped


def test_truncate_keeps_text_without_stop_sequences_and_languages_resolve():
    assert truncate("    return a + b", stop_sequences("python")) == ("    return a + b", False)
    nested = "    x = 1\n    if x:\n        return x\n"  # indented statements are the function's own
    assert truncate(nested, stop_sequences("python")) == (nested, False)
    assert truncate("anything\ndef x", stop_sequences(None)) == ("anything\ndef x", False)
    assert program_language("JS") == "javascript" and program_language("c++") == "cpp" and program_language("py") == "python"
    assert set(STOP_SEQUENCES) == {"python", "javascript", "typescript", "java", "cpp", "go"}
    with pytest.raises(ConfigError, match="unknown programming language 'cobol'.*python"):
        stop_sequences("cobol")


# ---- token choice and parameters -----------------------------------------------------------------------------------

def test_choose_token_greedy_temperature_and_top_p():
    logits = np.log(np.array([0.05, 0.6, 0.25, 0.1], dtype=np.float32))
    assert choose_token(logits, GenerationConfig(), None) == 1
    draws = lambda config, seed: [choose_token(logits, config, rng) for rng in [np.random.default_rng(seed)] for _ in range(400)]
    full = draws(GenerationConfig(temperature=1.0), 0)
    assert set(full) == {0, 1, 2, 3} and 0.5 < full.count(1) / 400 < 0.7  # the distribution itself
    nucleus = draws(GenerationConfig(temperature=1.0, top_p=0.8), 0)
    assert set(nucleus) == {1, 2}  # 0.6 + 0.25 reach 0.8: the two least likely tokens are never drawn
    assert set(draws(GenerationConfig(temperature=1.0, top_p=0.5), 0)) == {1}
    assert set(draws(GenerationConfig(temperature=0.05), 0)) == {1}  # a low temperature sharpens towards argmax
    assert draws(GenerationConfig(temperature=1.0), 7) == draws(GenerationConfig(temperature=1.0), 7)


@pytest.mark.parametrize("values, message", [
    ({"n": 3}, "n = 3 samples need sampling"),
    ({"n": 0, "temperature": 1.0}, "'n' must be >= 1"),
    ({"temperature": -0.5}, "'temperature' must be >= 0"),
    ({"temperature": float("nan")}, "'temperature' must be >= 0"),
    ({"temperature": 1.0, "top_p": 0.0}, r"'top_p' must be in \(0, 1\]"),
    ({"temperature": 1.0, "top_p": 1.5}, r"'top_p' must be in \(0, 1\]"),
    ({"max_new_tokens": 0}, "'max_new_tokens' must be >= 1"),
    ({"max_new_tokens": 4, "min_new_tokens": 5}, r"'min_new_tokens' must be in \[0, max_new_tokens\]"),
    ({"batch_size": 0}, "'batch_size' must be >= 1"),
])
def test_generation_parameters_are_validated(values, message):
    with pytest.raises(ConfigError, match=message):
        GenerationConfig(**values)


# ---- generation ---------------------------------------------------------------------------------------------------

def test_sampling_gives_n_completions_reproducible_per_seed(tiny):
    step, tokenizer = tiny
    config = GenerationConfig(n=3, temperature=1.0, top_p=0.95, max_new_tokens=12, seed=5, batch_size=4)
    first = generate(step, tokenizer, PROMPTS, config)
    assert [len(c) for c in first.completions] == [3, 3, 3]
    assert all(len(set(map(tuple, samples))) > 1 for samples in first.tokens)  # the samples differ
    again = generate(step, tokenizer, PROMPTS, config)
    assert again.tokens == first.tokens and again.completions == first.completions
    # each (prompt, sample) has its own generator: other batch sizes give the same samples
    assert generate(step, tokenizer, PROMPTS, GenerationConfig(**{**config.__dict__, "batch_size": 1})).tokens == first.tokens
    other_seed = generate(step, tokenizer, PROMPTS, GenerationConfig(**{**config.__dict__, "seed": 6}))
    assert other_seed.tokens != first.tokens
    assert sum(first.stopped.values()) == 9 and first.generated_tokens == sum(len(t) for s in first.tokens for t in s)


def test_greedy_generation_does_not_depend_on_batching_or_padding(tiny):
    """Left padding and its position ids: a prompt generates the same tokens alone and batched with longer ones."""
    step, tokenizer = tiny
    config = GenerationConfig(max_new_tokens=10, batch_size=3)
    batched = generate(step, tokenizer, PROMPTS, config)
    alone = [generate(step, tokenizer, [p], config).tokens[0] for p in PROMPTS]
    assert batched.tokens == alone
    assert all(len(t[0]) == 10 or batched.stopped["eos"] for t in batched.tokens)


def test_stop_sequences_end_generation_early(tiny):
    """A stop sequence taken from the unstopped output: generation stops there and the completion ends before it."""
    step, tokenizer = tiny
    config = GenerationConfig(max_new_tokens=16)
    free = generate(step, tokenizer, PROMPTS[:1], config)
    text = tokenizer.decode(free.tokens[0][0])
    stop = text[len(text) // 2:len(text) // 2 + 3]
    assert len(stop) == 3
    stopped = generate(step, tokenizer, PROMPTS[:1], config, StopSequences(cut=(stop,)))
    assert stopped.completions[0][0] == text[:text.index(stop)]
    assert stopped.stopped["stop_sequence"] == 1 and len(stopped.tokens[0][0]) < len(free.tokens[0][0])
    with pytest.raises(ConfigError, match="2 stop-sequence sets for 3 prompts"):
        generate(step, tokenizer, PROMPTS, config, [StopSequences(), StopSequences()])


# ---- problems ------------------------------------------------------------------------------------------------------

def test_problems_jsonl_is_read_and_checked(tmp_path):
    path = tmp_path / "problems.jsonl"
    rows = [{"task_id": "HumanEval/0", "prompt": "def f():\n", "language": "python", "test": "assert f() is None"},
            {"task_id": "MBJSP/1", "prompt": "function f() {\n", "program_language": "js"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    problems = load_problems(path)
    assert [(p["task_id"], p["language"]) for p in problems] == [("HumanEval/0", "python"), ("MBJSP/1", "javascript")]
    assert load_problems(path, languages=["javascript"])[0]["task_id"] == "MBJSP/1"
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"problems.jsonl: line 2: not valid JSON"):
        load_problems(path)
    path.write_text(json.dumps({**rows[0], "prompt": 3}) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'prompt' must be a string"):
        load_problems(path)
    path.write_text(json.dumps({"task_id": "x", "prompt": "p"}) + "\n")
    with pytest.raises(DataError, match=r"line 1: field 'language' \(the programming language\) is missing"):
        load_problems(path)
    path.write_text((json.dumps(rows[0]) + "\n") * 2)
    with pytest.raises(DataError, match="task_id 'HumanEval/0' occurs more than once"):
        load_problems(path)
    with pytest.raises(DataError, match="not found"):
        load_problems(tmp_path / "missing.jsonl")
