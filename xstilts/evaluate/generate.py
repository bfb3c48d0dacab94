"""Decoding for causal LMs: greedy and sampled (n samples per prompt, temperature, top-p), batched with left
padding, cut at language-specific stop sequences, deterministic given a seed.

One decoding loop drives both backends through a step function (like kinds.Runner for the encoders):
`step(input_ids, attention_mask, position_ids, past) -> (next-token logits [batch, vocab] as numpy, new past)`, where
`past` is the backend's own key/value cache (None: empty). `TorchStep` runs causal.KVCacheDecoder, `OnnxStep` the
exported model.onnx, feeding each step's present key/values back as the next step's past. Token choice (argmax or
sampling) happens in numpy on the returned logits, so both backends choose with the same code and random draws.

`generate_samples` is the pipeline's entry point: exported model + problems → samples JSONL in the code-eval format.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, Sequence
import numpy as np
from tqdm.auto import tqdm
from xstilts import env
from xstilts.progress import Progress
from xstilts.errors import ConfigError, DataError
from xstilts.io import atomic_dir, atomic_write_text, read_json, read_jsonl, write_json


@dataclass(frozen=True)
class StopSequences:
    """Where a completion ends. `cut`: the start of code after the function (top-level statements, the next
    definition), dropped with what follows. `end`: the function's closing line, kept (HumanEval-X/MBXP solutions
    include the closing brace), with what follows dropped."""

    cut: tuple[str, ...] = ()
    end: tuple[str, ...] = ()

    @property
    def longest(self) -> int:
        return max((len(s) for s in self.cut + self.end), default=0)


# Python follows the Codex/bigcode-evaluation-harness HumanEval list; JavaScript/TypeScript and Go follow
# MultiPL-E's translators (nuprl/MultiPL-E dataset_builder/humaneval_to_{js,ts,go}.py). For brace languages the
# function's closing brace at column 0 ends the completion (Java: the class's), kept in it, as MBXP/HumanEval-X
# solutions include it (MultiPL-E instead cuts before it and re-adds it in the tests).
STOP_SEQUENCES = {
    "python": StopSequences(cut=("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```")),
    "javascript": StopSequences(cut=("\nfunction ", "\n/*", "\n//", "\nconsole.log"), end=("\n}",)),
    "typescript": StopSequences(cut=("\nfunction ", "\n/*", "\n//", "\nconsole.log"), end=("\n}",)),
    "java": StopSequences(cut=("\npublic class Main", "\nclass Main"), end=("\n}",)),
    "cpp": StopSequences(cut=("\nint main(", "\n#include"), end=("\n}",)),
    "go": StopSequences(cut=("\nfunc main(", "\n// "), end=("\n}",)),
}
LANGUAGE_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "node": "javascript",
                    "ts": "typescript", "c++": "cpp", "golang": "go"}


def program_language(name: str) -> str:
    """The canonical programming-language name (python, javascript, typescript, java, cpp, go)."""
    key = LANGUAGE_ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in STOP_SEQUENCES:
        raise ConfigError(f"unknown programming language {name!r}; known: {', '.join(STOP_SEQUENCES)} "
                          f"(aliases {', '.join(LANGUAGE_ALIASES)})")
    return key


def stop_sequences(language: str | None) -> StopSequences:
    """A language's stop sequences; None (no language) stops at eos and max_new_tokens only."""
    return StopSequences() if language is None else STOP_SEQUENCES[program_language(language)]


def truncate(text: str, stops: StopSequences) -> tuple[str, bool]:
    """Cut a completion at its earliest stop sequence; returns (completion, whether a stop sequence was found).
    A kept `end` sequence is followed by a newline, so the test code appended after it starts on its own line."""
    best: tuple[int, str] | None = None
    for stop in stops.cut:
        at = text.find(stop)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, text[:at])
    for stop in stops.end:
        # The completion starts a line (prompts end with a newline): a closing brace may be its very first line.
        at = ("\n" + text).find(stop) - 1
        if at >= -1 and (best is None or at < best[0]):
            best = (at, text[:max(at + len(stop), 0)] + "\n")
    return (text, False) if best is None else (best[1], True)


@dataclass(frozen=True)
class GenerationConfig:
    """n samples per prompt; temperature 0 is greedy (then n must be 1); top_p keeps the smallest set of tokens
    whose probability reaches it (1 = all); eos cannot end a completion before min_new_tokens (as in HF)."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    batch_size: int = 16
    min_new_tokens: int = 0

    def __post_init__(self):
        if self.n < 1:
            raise ConfigError(f"generation parameter 'n' must be >= 1, got {self.n}")
        if not self.temperature >= 0:
            raise ConfigError(f"generation parameter 'temperature' must be >= 0 (0 = greedy), got {self.temperature}")
        if self.temperature == 0 and self.n > 1:
            raise ConfigError(f"n = {self.n} samples need sampling: set temperature > 0 (greedy decoding gives one "
                              f"completion per prompt)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"generation parameter 'top_p' must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"generation parameter 'max_new_tokens' must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ConfigError(f"generation parameter 'min_new_tokens' must be in [0, max_new_tokens], got "
                              f"{self.min_new_tokens}")
        if self.batch_size < 1:
            raise ConfigError(f"generation parameter 'batch_size' must be >= 1, got {self.batch_size}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def choose_token(logits: np.ndarray, config: GenerationConfig, rng: np.random.Generator | None) -> int:
    """Greedy: the first highest logit. Sampling: softmax(logits / temperature), restricted to the top-p nucleus."""
    if config.greedy:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / config.temperature
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    if config.top_p < 1:
        order = np.argsort(-probs, kind="stable")
        keep = order[:int(np.searchsorted(np.cumsum(probs[order]), config.top_p)) + 1]
        return int(rng.choice(keep, p=probs[keep] / probs[keep].sum()))
    return int(rng.choice(len(probs), p=probs))


class Step(Protocol):
    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray,
                 past) -> tuple[np.ndarray, object]: ...


class TorchStep:
    """A decode step on causal.KVCacheDecoder in PyTorch; the past stays on the device as a list of tensors."""

    def __init__(self, decoder, device=None):
        import torch

        self.decoder, self.device, self.torch = decoder, device or torch.device("cpu"), torch

    def __call__(self, input_ids, attention_mask, position_ids, past):
        torch = self.torch
        ids, mask, pos = (torch.from_numpy(a).to(self.device) for a in (input_ids, attention_mask, position_ids))
        past = self.decoder.empty_past(ids.shape[0], self.device) if past is None else past
        with torch.no_grad():
            logits, *present = self.decoder(ids, mask, pos, *past)
        return logits.float().cpu().numpy(), present


class OnnxStep:
    """A decode step on the exported model.onnx: each step's present key/values are fed back as the next past."""

    def __init__(self, session, decoder_meta: dict):
        from xstilts.models.causal import cache_names

        self.session = session
        self.past_names, self.present_names = cache_names(decoder_meta["layers"])
        self.kv_heads, self.head_dim = decoder_meta["kv_heads"], decoder_meta["head_dim"]
        self.outputs = ["logits", *self.present_names]

    def __call__(self, input_ids, attention_mask, position_ids, past):
        if past is None:
            past = [np.zeros((input_ids.shape[0], self.kv_heads, 0, self.head_dim), np.float32)] * len(self.past_names)
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
                **dict(zip(self.past_names, past))}
        logits, *present = self.session.run(self.outputs, feed)
        return logits, present


@dataclass
class GenerationResult:
    completions: list[list[str]]  # per prompt, its n completions in sample order
    tokens: list[list[list[int]]]  # per prompt and sample, the generated token ids (before the stop-sequence cut)
    generated_tokens: int = 0
    seconds: float = 0.0
    stopped: dict[str, int] = field(default_factory=dict)  # rows ended by eos / stop sequence / max_new_tokens


def generate(step: Step, tokenizer, prompts: Sequence[str], config: GenerationConfig,
             stops: StopSequences | Sequence[StopSequences] | None = None, max_prompt_tokens: int | None = None,
             desc: str = "generate") -> GenerationResult:
    """n completions per prompt (the text after the prompt, cut at its stop sequences and eos).

    Rows (prompt, sample) run in batches of `config.batch_size`, sorted by prompt length, left-padded; each row
    samples from its own generator seeded by (seed, prompt index, sample index), so a completion does not depend on
    the batching. Prompts longer than `max_prompt_tokens` keep their last tokens."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ConfigError("the tokenizer has no eos token, so completions cannot end")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    per_prompt = [stops] * len(prompts) if stops is None or isinstance(stops, StopSequences) else list(stops)
    if len(per_prompt) != len(prompts):
        raise ConfigError(f"{len(per_prompt)} stop-sequence sets for {len(prompts)} prompts")
    per_prompt = [s or StopSequences() for s in per_prompt]
    encoded = tokenizer(list(prompts))["input_ids"]
    if max_prompt_tokens:
        encoded = [ids[-max_prompt_tokens:] for ids in encoded]
    rows = sorted(((p, s) for p in range(len(prompts)) for s in range(config.n)), key=lambda r: (len(encoded[r[0]]), r))
    completions = [[""] * config.n for _ in prompts]
    tokens: list[list[list[int]]] = [[[] for _ in range(config.n)] for _ in prompts]
    result = GenerationResult(completions, tokens, stopped={"eos": 0, "stop_sequence": 0, "max_new_tokens": 0})
    started = time.perf_counter()
    progress = tqdm(total=len(rows), desc=desc, unit="sample", dynamic_ncols=True, mininterval=1.0,
                    disable=not env.progress_enabled())
    position = Progress("generate", len(rows))
    for start in range(0, len(rows), config.batch_size):
        batch = rows[start:start + config.batch_size]
        width = max(len(encoded[p]) for p, _ in batch)
        ids = np.full((len(batch), width), pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for r, (p, _) in enumerate(batch):
            if encoded[p]:
                ids[r, width - len(encoded[p]):] = encoded[p]
                mask[r, width - len(encoded[p]):] = 1
        rngs = [None if config.greedy else np.random.default_rng([config.seed, p, s]) for p, s in batch]
        generated: list[list[int]] = [[] for _ in batch]
        reason: list[str | None] = [None] * len(batch)
        logits, past = step(ids, mask, np.clip(mask.cumsum(1) - 1, 0, None), None)
        for t in range(config.max_new_tokens):
            next_ids = np.full((len(batch), 1), pad, dtype=np.int64)
            for r in range(len(batch)):
                if reason[r] is not None:
                    continue  # finished rows ride along on pad tokens until the batch ends
                row_logits = logits[r]
                if t < config.min_new_tokens:
                    row_logits = row_logits.copy()
                    row_logits[eos] = -np.inf
                token = choose_token(row_logits, config, rngs[r])
                if token == eos:
                    reason[r] = "eos"
                    continue
                next_ids[r, 0] = token
                generated[r].append(token)
                # A stop sequence can only appear in the newest tokens: decode a window as long as the longest one.
                window = per_prompt[batch[r][0]].longest + 1
                if window > 1 and truncate(tokenizer.decode(generated[r][-window:]), per_prompt[batch[r][0]])[1]:
                    reason[r] = "stop_sequence"
            if all(reason) or t == config.max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((len(batch), 1), dtype=np.int64)], axis=1)
            logits, past = step(next_ids, mask, mask.sum(1, keepdims=True) - 1, past)
        for r, (p, s) in enumerate(batch):
            completions[p][s] = truncate(tokenizer.decode(generated[r], skip_special_tokens=True), per_prompt[p])[0]
            tokens[p][s] = generated[r]
            result.stopped[reason[r] or "max_new_tokens"] += 1
            result.generated_tokens += len(generated[r])
        progress.update(len(batch))
        position.advance(len(batch))
    progress.close()
    position.close()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


# ---- the pipeline's entry point -----------------------------------------------------------------------------------

def onnx_generator(onnx_dir: str | Path):
    """(step, tokenizer, task.json, provider) for an exported causal model directory."""
    from transformers import AutoTokenizer

    from xstilts.evaluate.runtime import make_session

    onnx_dir = Path(onnx_dir)
    if not (onnx_dir / "task.json").exists():
        raise ConfigError(f"{onnx_dir} is not an exported model (no task.json): run the export step first")
    meta = read_json(onnx_dir / "task.json")
    if "decoder" not in meta:
        raise ConfigError(f"{onnx_dir} holds a {meta.get('kind')} encoder export, not a causal LM: generation needs "
                          f"a model exported from a generation task")
    tokenizer = AutoTokenizer.from_pretrained(onnx_dir)
    session, provider = make_session(onnx_dir / "model.onnx")
    return OnnxStep(session, meta["decoder"]), tokenizer, meta, provider


def load_problems(problems: str | Path, task: str | None = None, languages: Sequence[str] | None = None) -> list[dict]:
    """Problems in the HumanEval/MBXP format: {task_id, prompt, language (the programming language), test,
    entry_point, canonical_solution, task_language}. `problems` is a JSONL file in that format (`program_language`
    is accepted for `language`), or a validated dataset directory, whose `task`'s test split is read; there
    `task_language` is the task's language dimension (HumanEval-XL: the prompt's natural language; MBXP: the
    programming language), and ids repeated across languages become `<task_language>/<id>`. `languages` keeps
    those task languages only."""
    path = Path(problems)
    rows: list[dict] = []
    if path.is_dir():
        from xstilts.data.load import read_split

        if not task:
            raise ConfigError(f"{path} is a dataset directory: name the generation task whose test split to read")
        df = read_split(path, task, "test")
        repeated = df["id"].duplicated().any()  # HumanEval-XL: the same problem in every natural language
        for record in df.to_dict("records"):
            optional = {k: record.get(k) if isinstance(record.get(k), str) else None
                        for k in ("test", "entry_point", "completion")}
            rows.append({"task_id": f"{record['language']}/{record['id']}" if repeated else str(record["id"]),
                         "prompt": record["prompt"], "language": program_language(record["program_language"]),
                         "test": optional["test"], "entry_point": optional["entry_point"],
                         "canonical_solution": optional["completion"], "task_language": record["language"]})
    elif path.is_file():
        for number, row in read_jsonl(path, numbered=True):
            for name in ("task_id", "prompt"):
                if not isinstance(row.get(name), str):
                    raise DataError(f"{path}: line {number}: field {name!r} must be a string, got {row.get(name)!r}")
            language = row.get("language", row.get("program_language"))
            if not isinstance(language, str):
                raise DataError(f"{path}: line {number}: field 'language' (the programming language) is missing")
            rows.append({**row, "language": program_language(language),
                         "task_language": row.get("task_language", program_language(language))})
    else:
        raise DataError(f"problems {path} not found (a problems JSONL file or a validated dataset directory)")
    if languages:
        rows = [r for r in rows if r["task_language"] in set(languages)]
    if not rows:
        raise DataError(f"{path}: no problems" + (f" in languages {', '.join(languages)}" if languages else ""))
    ids = [r["task_id"] for r in rows]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{path}: task_id {duplicate!r} occurs more than once")
    return rows


def generate_samples(onnx_dir: str | Path, problems: str | Path, out_dir: str | Path, n: int = 1,
                     temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 256, seed: int = 0,
                     batch_size: int = 16, task: str | None = None, languages: Sequence[str] | None = None,
                     min_new_tokens: int = 0) -> dict:
    """Generate n completions per problem on onnxruntime and write out_dir/:
      samples.jsonl     {"task_id", "completion", "language", "sample", "task_language"} one line per sample
                        (the code-eval format; `language` is the programming language)
      problems.jsonl    the problems as read (HumanEval/MBXP format), so code-eval sees the same task ids
      generation.json   settings, counts, how rows ended, tokens/s, onnxruntime provider
    `problems`: a problems JSONL file or a validated dataset directory (then `task`, default the model's task)."""
    from xstilts.provenance import Provenance

    config = GenerationConfig(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                              batch_size=batch_size, min_new_tokens=min_new_tokens)
    step, tokenizer, meta, provider = onnx_generator(onnx_dir)
    rows = load_problems(problems, task or meta["task"], languages)
    provenance = Provenance("generate", {"onnx_model": onnx_dir, "problems": problems},
                            {**asdict(config), "task": task or meta["task"], "languages": list(languages or [])})
    max_prompt = meta["decoder"]["max_positions"] - max_new_tokens
    if max_prompt < 1:
        raise ConfigError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's "
                          f"{meta['decoder']['max_positions']} positions")
    result = generate(step, tokenizer, [r["prompt"] for r in rows], config,
                      [stop_sequences(r["language"]) for r in rows], max_prompt_tokens=max_prompt,
                      desc=f"generate {meta['task']}")
    summary = {"task": meta["task"], "condition": meta.get("condition"), "problems": len(rows),
               "samples": len(rows) * n, "config": asdict(config), "stopped": result.stopped,
               "generated_tokens": result.generated_tokens, "seconds": result.seconds,
               "tokens_per_second": round(result.generated_tokens / result.seconds, 1) if result.seconds else None,
               "provider": provider}
    with atomic_dir(out_dir) as tmp:
        lines = [json.dumps({"task_id": r["task_id"], "completion": c, "language": r["language"], "sample": i,
                             "task_language": r["task_language"]}, ensure_ascii=False)
                 for r, samples in zip(rows, result.completions) for i, c in enumerate(samples)]
        atomic_write_text(tmp / "samples.jsonl", "\n".join(lines) + "\n")
        atomic_write_text(tmp / "problems.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        write_json(tmp / "generation.json", summary)
        provenance.record(tmp)
    return summary
