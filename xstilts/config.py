"""Run parameters: the embedded defaults (tiny model, bundled sample data), overridden by params.yaml and the CLI.

params.yaml at the repo root is the same dictionary (DVC reads it too); a test keeps them equal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictStr, TypeAdapter,
                      ValidationError)

from xstilts.errors import ConfigError
from xstilts.io import read_text_file, shorten


# Tuned so the whole local pipeline runs in about a minute on 2 CPU cores: 3 epochs (6 until 2026-12; training was
# most of a cold `make run`; see README "Measured" for what the change did to the scores).
TINY_TRAIN = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "warmup_ratio": 0.1, "max_length": 64,
              "doc_stride": 24, "max_query_length": 24, "eval_every": 0, "patience": 3, "checkpoint_every": 50,
              "seed": 1}


def _ops_defaults() -> dict:
    """Parameters every preset starts from with the same values (a fresh dict each time: presets own their copies)."""
    return {
        # Data version (pipeline): with data_repo, `data` is the DVC-tracked path inside that git repo at data_rev.
        "data_repo": "",
        "data_rev": "",
        # Promotion gate after the run: GTO tags in registry_repo (empty: no gate); one artifact per promotion target
        # (none: `xstilts-grid` on the XTREME average); candidate ≥ prod − tolerance; condition "" = the best one.
        "registry_repo": "",
        "promotion_targets": [],
        "promotion_tolerance": 0.005,
        "promotion_condition": "",
        # DVC remote (URL or name) that trained and ONNX models are pushed to; empty: not pushed.
        "dvc_remote": "",
        # Code generation targets: sampling, pass@k and sandbox settings (GENERATION_DEFAULTS below).
        "generation": {},
    }


# The embedded default (`make run`, `--preset tiny`): one target task of each kind, two intermediate tasks and the
# baseline, on the tiny model and the bundled synthetic data.
EMBEDDED_DEFAULTS: dict = {
    "target_tasks": ["xnli", "xquad", "panx", "tatoeba"],
    "conditions": ["none", "mnli", "squad"],
    # Random restarts: each seed trains its own intermediate and target models (the `seed` of both train settings).
    # One here keeps `make run` quick; the `tiny-seeds` preset runs three on the same data.
    "seeds": [1],
    "data": "data/sample",
    "task_data": {},
    "languages": ["en", "de", "es", "fr", "ru"],
    "hf_revision": "",
    "hf_revisions": {},
    "model_name": "tiny",
    "model_revision": "",
    "retrieval_layer": 0,
    **_ops_defaults(),
    "intermediate_train": dict(TINY_TRAIN),
    "target_train": dict(TINY_TRAIN),
}

XTREME_TARGETS = ["xnli", "pawsx", "xquad", "mlqa", "tydiqa", "panx", "udpos", "bucc18", "tatoeba"]
PAPER_INTERMEDIATES = ["anli", "mnli", "qqp", "squad", "squad_v2", "hellaswag", "cosmosqa", "commonsenseqa", "sst2",
                       "ccg"]

# Phang et al. 2020 on XLM-R Large: intermediate then target training at lr 1e-5, effective batch 32 (8 × 4
# accumulation fits one 80 GB GPU at length 384), early stopping on English dev.
XTREME_GRID: dict = {
    "target_tasks": XTREME_TARGETS,
    "conditions": ["none"] + PAPER_INTERMEDIATES,
    "seeds": [1, 2, 3],  # fine-tuning XLM-R varies by points across restarts: report mean ± std and paired tests
    "data": "hf",
    "task_data": {"ccg": "/mnt/cache/data/ccgbank"},  # LDC-licensed: copy CCGbank (tokens/tags JSONL) there
    "languages": [],
    "hf_revision": "",
    "hf_revisions": {},
    "model_name": "FacebookAI/xlm-roberta-large",
    "model_revision": "",
    "retrieval_layer": 0,
    **_ops_defaults(),
    "intermediate_train": {"epochs": 2, "batch_size": 8, "grad_accum": 4, "learning_rate": 1e-5, "max_length": 384,
                           "doc_stride": 128, "eval_every": 2000, "patience": 3, "checkpoint_every": 500,
                           "max_eval_examples": 2000},
    "target_train": {"epochs": 5, "batch_size": 8, "grad_accum": 4, "learning_rate": 1e-5, "max_length": 384,
                     "doc_stride": 128, "eval_every": 1000, "patience": 3, "checkpoint_every": 500,
                     "max_eval_examples": 2000},
}

# ---- the five code research questions: each a tiny local preset and its cluster form (`xstilts compile --preset`)

TINY_CAUSAL_TRAIN = {**TINY_TRAIN, "epochs": 6, "batch_size": 16, "max_length": 256}
TINY_GENERATION = {"max_new_tokens": 64, "min_new_tokens": 8}  # a tiny LM stops at once without min_new_tokens
# A small public code LM for cluster runs (revision pinned so a re-run trains the same weights).
CLUSTER_DEFAULT_CAUSAL_MODEL = "Qwen/Qwen2.5-Coder-0.5B"
CLUSTER_DEFAULT_CAUSAL_REVISION = "8123ea2e9354afb7ffcc6c8641d1b2f5ecf18301"
CLUSTER_CAUSAL_TRAIN = {"epochs": 3, "batch_size": 8, "grad_accum": 4, "learning_rate": 2e-5, "max_length": 1024,
                        "eval_every": 500, "patience": 3, "checkpoint_every": 500, "max_eval_examples": 500}
CLUSTER_GENERATION = {"n": 20, "temperature": 0.2, "top_p": 0.95, "max_new_tokens": 512, "k": [1, 10]}
HUMANEVAL_XL_DATA = "/mnt/cache/data/humaneval-xl"  # humaneval_xl_<lang> intermediates: local JSONL (see README)
LOW_RESOURCE = ["en", "sw", "ur", "th", "hi", "te", "yo", "mr", "ta", "eu", "ka", "jv", "my", "kk", "tl", "af"]


# Code generation targets (the `generation` parameter): sampling, pass@k and the sandbox's limits.
# TypeScript type checking in code execution: `strict` (type errors are compile errors) or `mxeval-compatible` (the
# JavaScript tsc emits despite type errors runs, as in mxeval).
TYPESCRIPT_MODES = ("strict", "mxeval-compatible")
GENERATION_DEFAULTS = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 128, "min_new_tokens": 0,
                       "seed": 0, "batch_size": 16, "k": [1], "timeout_s": 10.0, "memory_mb": 512,
                       "allow_no_isolation": False, "typescript_mode": "strict"}


def generation_settings(overrides: dict | None) -> dict:
    """GENERATION_DEFAULTS with `overrides`; unknown keys are a ConfigError naming the known ones."""
    unknown = sorted(set(overrides or {}) - set(GENERATION_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown generation setting(s) {', '.join(unknown)}; known: {', '.join(GENERATION_DEFAULTS)}")
    settings = {**GENERATION_DEFAULTS, **(overrides or {})}
    for key in ("n", "max_new_tokens", "min_new_tokens", "seed", "batch_size", "memory_mb"):
        value = settings[key]  # KFP passes struct numbers as floats: 64.0 is 64, 64.5 is an error
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(f"generation setting {key!r} must be an integer, got {shorten(value)}")
        settings[key] = int(value)
    ks = settings["k"] if isinstance(settings["k"], list) else [settings["k"]]
    ks = [int(k) if isinstance(k, float) and k == int(k) else k for k in ks]
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= settings["n"] for k in ks):
        raise ConfigError(f"generation setting 'k' must be integers in 1..n (n = {settings['n']}), got {settings['k']!r}")
    for key, low, high in (("temperature", 0.0, 100.0), ("top_p", 0.0, 1.0), ("timeout_s", 0.001, 86_400.0)):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"generation setting {key!r} must be a number in [{low:g}, {high:g}], got "
                              f"{shorten(value)}")
    for key, low in (("n", 1), ("max_new_tokens", 1), ("batch_size", 1), ("memory_mb", 16), ("min_new_tokens", 0),
                     ("seed", 0)):
        if settings[key] < low:
            raise ConfigError(f"generation setting {key!r} must be >= {low}, got {settings[key]}")
    if not isinstance(settings["allow_no_isolation"], bool):
        raise ConfigError(f"generation setting 'allow_no_isolation' must be true or false, got "
                          f"{shorten(settings['allow_no_isolation'])}")
    if settings["typescript_mode"] not in TYPESCRIPT_MODES:
        raise ConfigError(f"generation setting 'typescript_mode' must be one of {', '.join(TYPESCRIPT_MODES)}, got "
                          f"{shorten(settings['typescript_mode'])}")
    return {**settings, "k": sorted(set(ks))}


def _code_preset(targets: list[str], conditions: list[str], causal: bool, cluster: bool, **extra) -> dict:
    """A code preset: tiny models and the bundled sample locally; hub data and real models on the cluster."""
    base = dict(XTREME_GRID if cluster else EMBEDDED_DEFAULTS)
    train = (CLUSTER_CAUSAL_TRAIN if cluster else TINY_CAUSAL_TRAIN) if causal else base["intermediate_train"]
    preset = {**base, "target_tasks": targets, "conditions": conditions, "languages": [],
              "task_data": {}, "intermediate_train": dict(train), "target_train": dict(train),
              "generation": dict(CLUSTER_GENERATION if cluster else TINY_GENERATION) if causal else {}}
    if causal:

        preset["model_name"] = CLUSTER_DEFAULT_CAUSAL_MODEL if cluster else "tiny-causal"
        preset["model_revision"] = CLUSTER_DEFAULT_CAUSAL_REVISION if cluster else ""
    if cluster:
        xl = [c for c in conditions if c.startswith("humaneval_xl_")]
        preset["task_data"] = {c: HUMANEVAL_XL_DATA for c in xl}
    return {**preset, **extra}


NONENGLISH = ["humaneval_xl_de", "humaneval_xl_es", "humaneval_xl_fr", "humaneval_xl_ru"]
CODE_QUESTIONS = {
    # 1. Do code intermediate tasks improve zero-shot transfer across programming languages (MBXP pass@k)?
    "code-mbxp": dict(targets=["mbxp"], conditions=["none", "humaneval_xl_en"], causal=True),
    # 2. Does CodeXGLUE intermediate training help XTREME's low-resource languages?
    "codexglue-xtreme": dict(targets=["xnli", "panx", "tatoeba"], causal=False,
                             conditions=["none", "codexglue_defect", "codexglue_clone", "codexglue_codesearch"]),
    # 3. Does English intermediate training (NLU tasks as text → text) help HumanEval pass@k?
    "english-humaneval": dict(targets=["humaneval"], conditions=["none", "mnli", "squad"], causal=True),
    # 4. Do HumanEval/MBPP-style intermediate tasks help code generation from non-English prompts (HumanEval-XL)?
    "codegen-nonenglish": dict(targets=["humaneval_xl"], conditions=["none", "mbpp"], causal=True),
    # 5. On a code LM: English intermediate data vs the same data in other languages (evaluated on MBXP).
    "english-vs-nonenglish": dict(targets=["mbxp"], conditions=["none", "humaneval_xl_en", *NONENGLISH], causal=True),
}


def _question_preset(name: str, cluster: bool) -> dict:
    q = CODE_QUESTIONS[name]
    extra = {"languages": LOW_RESOURCE} if name == "codexglue-xtreme" and cluster else {}
    if name == "codexglue-xtreme" and not cluster:
        extra = {"languages": list(EMBEDDED_DEFAULTS["languages"])}
    if name == "codegen-nonenglish" and not cluster:
        extra = {"languages": ["en", "de", "es", "fr", "ru"]}
    return _code_preset(q["targets"], q["conditions"], q["causal"], cluster, **extra)


TINY_SEEDS = {**EMBEDDED_DEFAULTS, "seeds": [1, 2, 3]}  # the embedded default with three restarts

PRESETS = {"tiny": EMBEDDED_DEFAULTS, "tiny-seeds": TINY_SEEDS, "xtreme-grid": XTREME_GRID,
           **{name: _question_preset(name, cluster=False) for name in CODE_QUESTIONS}}
# What `xstilts compile --preset NAME` bakes in as the Kubeflow UI's defaults.
CLUSTER_PRESETS = {"tiny": EMBEDDED_DEFAULTS, "tiny-seeds": TINY_SEEDS, "xtreme-grid": XTREME_GRID,
                   **{name: _question_preset(name, cluster=True) for name in CODE_QUESTIONS}}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in PRESETS[name].items()}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error instead of the last one winning."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: str | Path, what: str = "parameter file") -> dict:
    """A YAML file holding one mapping, read as strict UTF-8 text with unique keys; ConfigError (one line) otherwise."""
    text = read_text_file(path, what)
    try:
        loaded = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of parameter names to values, got {type(loaded).__name__}")
    return loaded


Names = list[StrictStr]
Text = StrictStr


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a number, not true/false")
    return value


# An integer, also as an integral float (KFP stores integer defaults as 3.0), never a boolean.
Integer = Annotated[int, BeforeValidator(_not_a_bool)]


def _unique_seeds(value: Any) -> Any:
    if isinstance(value, list):
        repeated = sorted({v for v in value if isinstance(v, (int, float)) and value.count(v) > 1})
        if repeated:
            raise ValueError(f"seeds must differ (each is one restart), {repeated[0]} is given twice")
    return value


Seed = Annotated[Integer, Field(ge=0, le=2**32 - 1)]


class RunParams(BaseModel):
    """Types and ranges of the run parameters (params.yaml, presets, CLI flags, the Kubeflow UI's values). The rules
    that need the task registry or the file system (known tasks and languages, conditions of trainable tasks,
    promotion targets among the targets, data folders) are xstilts.tasks.experiment's."""

    model_config = ConfigDict(extra="forbid")

    target_tasks: Annotated[Names, Field(min_length=1)]
    conditions: Annotated[Names, Field(min_length=1)]
    seeds: Annotated[list[Seed], Field(min_length=1, max_length=100), BeforeValidator(_unique_seeds)]
    data: Annotated[Text, Field(min_length=1)]
    task_data: dict[StrictStr, Annotated[Text, Field(min_length=1)]]
    languages: Names
    hf_revision: Text
    hf_revisions: dict[StrictStr, Annotated[Text, Field(min_length=1)]]
    model_name: Annotated[Text, Field(min_length=1)]
    model_revision: Text
    retrieval_layer: Annotated[Integer, Field(ge=-1, le=1000)]
    data_repo: Text
    data_rev: Text
    registry_repo: Text
    promotion_targets: Names
    promotion_tolerance: Annotated[StrictFloat, Field(ge=0, lt=1, allow_inf_nan=False)]
    promotion_condition: Text
    dvc_remote: Text
    generation: dict
    intermediate_train: dict
    target_train: dict


def check_params(params: dict, source: str = "parameters") -> dict:
    """Every problem of `params` at once, each with its key, as one ConfigError; `params` otherwise."""
    problems = params_problems(params)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} invalid parameter(s):\n  - " + "\n  - ".join(problems))
    return params


def params_problems(params: dict) -> list[str]:
    """What is wrong with `params`' types and ranges (RunParams, TrainConfig, generation settings), one line each."""
    problems = []
    try:
        RunParams.model_validate(params)
    except ValidationError as e:
        for err in e.errors():
            key = ".".join(map(str, err["loc"])) or "(top level)"
            message = err["msg"][0].lower() + err["msg"][1:]
            problems.append(f"{key}: {message}" + ("" if err["type"] == "missing" else f", got {shorten(err.get('input'))}"))
    for key in ("intermediate_train", "target_train"):
        if isinstance(params.get(key), dict):
            try:
                TrainConfig.from_dict(params[key], where=key)
            except ConfigError as e:
                problems += str(e).splitlines()
    if isinstance(params.get("generation"), dict):
        try:
            generation_settings(params["generation"])
        except ConfigError as e:
            problems.append(f"generation: {e}")
    return problems


def load_params(path: str | Path | None = None, overrides: dict | None = None, preset_name: str | None = None) -> dict:
    """merge_params, checked by check_params (types and ranges)."""
    params = merge_params(path, overrides, preset_name)
    return check_params(params, str(path) if path is not None else "parameters")


def merge_params(path: str | Path | None = None, overrides: dict | None = None, preset_name: str | None = None) -> dict:
    """A preset (default: the embedded `tiny` one), then the YAML file (if given), then non-None overrides; not yet
    checked. Unknown keys are errors. Training settings the preset sets but the file omits keep the preset's
    values."""
    params = preset(preset_name or "tiny")
    base = TrainConfig()
    for key in ("intermediate_train", "target_train"):  # a full dict, so files and flags change single settings
        params[key] = {**{f: getattr(base, f) for f in TrainConfig.__dataclass_fields__}, **params[key]}
    if path is not None:
        _merge(params, read_yaml_mapping(path), str(path))
    _merge(params, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    return params


def _merge(params: dict, values: dict, source: str) -> None:
    unknown = sorted(map(str, set(values) - set(EMBEDDED_DEFAULTS)))
    if unknown:
        raise ConfigError(f"{source}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(EMBEDDED_DEFAULTS)}")
    for key, value in values.items():
        if isinstance(EMBEDDED_DEFAULTS[key], dict):  # mappings change single settings
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: parameter {key!r} must be a mapping, got {shorten(value)}")
            params[key].update(value)
        else:
            params[key] = value


def split_seeds(value: str | None) -> list[int] | None:
    """'1,2,3' → [1, 2, 3] (--seeds); None stays None. A part that is not a whole number is a ConfigError."""
    parts = split_csv(value)
    if parts is None:
        return None
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated whole numbers such as 1,2,3, got {value!r}") from None


def split_csv(value: str | None) -> list[str] | None:
    """'en,de' → ['en', 'de']; None stays None (not given)."""
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


# Kubeflow names shared by pipelines/xstilts.py (which compiles the pipeline), pipelines/ops.py (which operates it)
# and the CLI's defaults. Here, not in pipelines/, so that pipelines/ops.py and the CLI need not import the
# components (and kfp) to know them.
PIPELINE_NAME = "xstilts"
PIPELINE_FILE = Path("pipelines/compiled/xstilts.yaml")  # relative to the repository root, where the CLI runs
KFP_NAMESPACE = "xstilts"  # the Kubeflow profile namespace
KFP_EXPERIMENT = "xstilts"
KFP_SERVICE_ACCOUNT = "xstilts-pipeline-runner"  # k8s/base/serviceaccount.yaml

KEEP_CHECKPOINTS = 2


@dataclass
class Settings:
    """Tokenisation settings shared by training and evaluation (evaluation reads them from the exported model)."""

    max_length: int = 128
    doc_stride: int = 128  # QA: tokens of overlap between windows of a long context
    max_query_length: int = 64
    max_answer_length: int = 30
    retrieval_layer: int = 0  # retrieval: the layer whose mean-pooled states embed a text (see pooling_layer)


# Types and ranges of the training parameters, checked by pydantic when parameters are loaded (TrainConfig.from_dict).
# Integers also accept integral floats: KFP passes every number inside a dict parameter as a float (8.0).
Count = Annotated[int, Field(ge=0, le=10**9)]
Positive = Annotated[int, Field(ge=1, le=10**9)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


@dataclass(frozen=True)
class TrainConfig:
    epochs: Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)] = 3.0
    max_steps: Count = 0  # > 0 caps optimizer steps
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 32  # per micro-batch
    grad_accum: Annotated[int, Field(ge=1, le=65_536)] = 1
    learning_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1e-5
    weight_decay: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = 0.01
    warmup_ratio: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.1
    max_grad_norm: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    max_length: Annotated[int, Field(ge=8, le=131_072)] = 128
    eval_every: Count = 0  # optimizer steps between dev evaluations; 0 = once per epoch
    patience: Count = 3  # dev evaluations without improvement before stopping; 0 = never stop early
    checkpoint_every: Positive = 500
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 1
    max_train_examples: Count = 0  # > 0 subsamples each training split (fast trials)
    max_eval_examples: Count = 0  # > 0 subsamples each dev split (dev evaluation of QA is slow on big splits)
    doc_stride: Annotated[int, Field(ge=1, le=131_072)] = 128  # QA: overlap in tokens between the windows of a long context
    max_query_length: Annotated[int, Field(ge=1, le=131_072)] = 64  # QA: questions are cut to this many tokens
    sampling: Literal["proportional", "temperature"] = "proportional"  # multi-task: "proportional" to size, or
    #                                                                    "temperature" (p ∝ n^(1/T))
    temperature: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 2.0
    retrieval_layer: Annotated[int, Field(ge=-1, le=1000)] = 0  # contrastive (code search) training: the pooled
    #                                                             layer, as at evaluation (0 = middle)
    # Speed and memory levers (`xstilts bench train` measures each). None changes the math beyond float rounding,
    # except token_budget, which changes how many rows a step sees.
    padding: Literal["dynamic", "buckets", "max_length"] = "dynamic"  # "dynamic": to the batch's longest;
    #   "buckets": that, rounded up to bucket_multiple (few distinct shapes, for compile); "max_length": always
    #   max_length (HF's default)
    bucket_multiple: Annotated[int, Field(ge=1, le=4096)] = 16
    token_budget: Count = 0  # > 0: micro-batches of up to this many padded tokens instead of batch_size rows (opt-in)
    compile: Literal["off", "on", "cuda-graphs"] = "off"  # "on": torch.compile, one static graph per shape;
    #                                                       "cuda-graphs": + CUDA graph replay
    attention: Literal["sdpa", "eager"] = "sdpa"  # "sdpa" (fused attention kernels) or "eager" (the reference)
    bf16: StrictBool = True  # bf16 autocast on CUDA (always fp32 on CPU)
    fused_optimizer: StrictBool = True  # the fused AdamW kernel on CUDA
    pin_memory: StrictBool = True  # CUDA: batches built in pinned memory and copied without blocking the host
    log_every: Positive = 50  # optimizer steps between reading losses back to the host (each read waits for the GPU)
    grad_checkpointing: StrictBool = False  # recompute activations in backward: less memory for long inputs, slower

    @classmethod
    def from_dict(cls, values: dict | None, where: str | None = None) -> "TrainConfig":
        """Check every value's type and range and the rules between them; one ConfigError lists every problem, one
        per line, each naming its key (`where.key` when `where`, e.g. intermediate_train, is given)."""
        values = dict(values or {})

        def key(name) -> str:
            return f"{where}.{name}" if where else f"training parameter {name!r}"

        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(map(str, set(values) - set(names)))
        if unknown:
            raise ConfigError(f"{where + ': ' if where else ''}unknown training parameter(s) {', '.join(unknown)}; "
                              f"known: {', '.join(names)}")
        try:
            config = _TRAIN_CONFIG.validate_python(values)
        except ValidationError as e:
            raise ConfigError("\n".join(f"{key('.'.join(map(str, err['loc'])))}: {err['msg'][0].lower()}"
                                         f"{err['msg'][1:]}, got {shorten(err.get('input'))}"
                                         for err in e.errors())) from None
        problems = config.problems()
        if problems:
            raise ConfigError("\n".join(f"{where or 'training parameters'}: {problem}" for problem in problems))
        return config

    def problems(self) -> list[str]:
        """The rules between parameters that no single range expresses."""
        found = []
        if self.epochs <= 0 and self.max_steps <= 0:
            found.append("training needs epochs > 0 or max_steps > 0")
        if self.compile != "off" and self.padding == "dynamic":
            found.append("'compile' needs padding 'buckets' or 'max_length': with dynamic padding every new batch "
                         "length compiles a new graph")
        if self.token_budget and self.token_budget < self.max_length:
            found.append(f"'token_budget' ({self.token_budget}) must hold at least one sequence of max_length "
                         f"{self.max_length}")
        return found

    def padded_width(self, longest: int) -> int:
        """The padded length of a micro-batch whose longest sequence has `longest` tokens."""
        if self.padding == "max_length":
            return max(longest, self.max_length)
        if self.padding == "buckets":
            return max(longest, min(self.max_length, -(-longest // self.bucket_multiple) * self.bucket_multiple))
        return longest

    def settings(self) -> Settings:
        return Settings(max_length=self.max_length, doc_stride=self.doc_stride, max_query_length=self.max_query_length,
                        retrieval_layer=self.retrieval_layer)



_TRAIN_CONFIG = TypeAdapter(TrainConfig)
