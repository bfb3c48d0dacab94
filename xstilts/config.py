"""Run parameters: the embedded defaults (tiny model, bundled sample data), overridden by params.yaml and the CLI.

params.yaml at the repo root is the same dictionary (DVC reads it too); a test keeps them equal.
"""

from __future__ import annotations

from pathlib import Path
import yaml
from xstilts.errors import ConfigError
import dataclasses
from dataclasses import dataclass


# Tuned so the whole local pipeline runs in minutes on 2 CPU cores and still shows a measurable transfer effect.
TINY_TRAIN = {"epochs": 6, "batch_size": 32, "learning_rate": 1e-3, "warmup_ratio": 0.1, "max_length": 64,
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
        # Code generation targets: sampling, pass@k, sandbox settings (xstilts.evaluate.zero_shot.GENERATION_DEFAULTS).
        "generation": {},
    }


# The embedded default (`make run`, `--preset tiny`): one target task of each kind, two intermediate tasks and the
# baseline, on the tiny model and the bundled synthetic data.
EMBEDDED_DEFAULTS: dict = {
    "target_tasks": ["xnli", "xquad", "panx", "tatoeba"],
    "conditions": ["none", "mnli", "squad"],
    "data": "data/sample",
    "task_data": {},
    "languages": ["en", "de", "es", "fr", "ru"],
    "hf_revision": "",
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
    "data": "hf",
    "task_data": {"ccg": "/mnt/cache/data/ccgbank"},  # LDC-licensed: copy CCGbank (tokens/tags JSONL) there
    "languages": [],
    "hf_revision": "",
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

TINY_CAUSAL_TRAIN = {**TINY_TRAIN, "batch_size": 16, "max_length": 256}
TINY_GENERATION = {"max_new_tokens": 64, "min_new_tokens": 8}  # a tiny LM stops at once without min_new_tokens
# A small public code LM for cluster runs (revision pinned so a re-run trains the same weights).
CLUSTER_DEFAULT_CAUSAL_MODEL = "Qwen/Qwen2.5-Coder-0.5B"
CLUSTER_DEFAULT_CAUSAL_REVISION = "8123ea2e9354afb7ffcc6c8641d1b2f5ecf18301"
CLUSTER_CAUSAL_TRAIN = {"epochs": 3, "batch_size": 8, "grad_accum": 4, "learning_rate": 2e-5, "max_length": 1024,
                        "eval_every": 500, "patience": 3, "checkpoint_every": 500, "max_eval_examples": 500}
CLUSTER_GENERATION = {"n": 20, "temperature": 0.2, "top_p": 0.95, "max_new_tokens": 512, "k": [1, 10]}
HUMANEVAL_XL_DATA = "/mnt/cache/data/humaneval-xl"  # humaneval_xl_<lang> intermediates: local JSONL (see README)
LOW_RESOURCE = ["en", "sw", "ur", "th", "hi", "te", "yo", "mr", "ta", "eu", "ka", "jv", "my", "kk", "tl", "af"]


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


PRESETS = {"tiny": EMBEDDED_DEFAULTS, "xtreme-grid": XTREME_GRID,
           **{name: _question_preset(name, cluster=False) for name in CODE_QUESTIONS}}
# What `xstilts compile --preset NAME` bakes in as the Kubeflow UI's defaults.
CLUSTER_PRESETS = {"tiny": EMBEDDED_DEFAULTS, "xtreme-grid": XTREME_GRID,
                   **{name: _question_preset(name, cluster=True) for name in CODE_QUESTIONS}}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in PRESETS[name].items()}


def load_params(path: str | Path | None = None, overrides: dict | None = None, preset_name: str | None = None) -> dict:
    """A preset (default: the embedded `tiny` one), then the YAML file (if given), then non-None overrides.
    Unknown keys are errors. Training settings the preset sets but the file omits keep the preset's values."""
    params = preset(preset_name or "tiny")
    base = TrainConfig()
    for key in ("intermediate_train", "target_train"):  # a full dict, so files and flags change single settings
        params[key] = {**{f: getattr(base, f) for f in TrainConfig.__dataclass_fields__}, **params[key]}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"parameter file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of parameter names to values")
        _merge(params, loaded, str(path))
    _merge(params, {k: v for k, v in (overrides or {}).items() if v is not None}, "command line")
    for key in ("intermediate_train", "target_train"):
        TrainConfig.from_dict(params[key])  # fail early, naming the bad key
    for key in ("conditions", "languages", "target_tasks", "promotion_targets"):
        if not isinstance(params[key], list) or not all(isinstance(x, str) for x in params[key]):
            raise ConfigError(f"parameter {key!r} must be a list of strings, got {params[key]!r}")
    if not params["conditions"]:
        raise ConfigError("parameter 'conditions' is empty: give at least one condition (e.g. none)")
    if not params["target_tasks"]:
        raise ConfigError("parameter 'target_tasks' is empty: give at least one target task (e.g. xnli)")
    if not isinstance(params["task_data"], dict) or not all(isinstance(v, str) for v in params["task_data"].values()):
        raise ConfigError(f"parameter 'task_data' must map task names to data roots, got {params['task_data']!r}")
    if not isinstance(params["generation"], dict):
        raise ConfigError(f"parameter 'generation' must be a mapping, got {params['generation']!r}")
    for key in ("data_repo", "data_rev", "registry_repo", "promotion_condition", "dvc_remote"):
        if not isinstance(params[key], str):
            raise ConfigError(f"parameter {key!r} must be a string, got {params[key]!r}")
    tolerance = params["promotion_tolerance"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise ConfigError(f"parameter 'promotion_tolerance' must be a score fraction in [0, 1), got {tolerance!r}")
    if isinstance(params["retrieval_layer"], bool) or not isinstance(params["retrieval_layer"], int):
        raise ConfigError(f"parameter 'retrieval_layer' must be an integer, got {params['retrieval_layer']!r}")
    return params


def _merge(params: dict, values: dict, source: str) -> None:
    unknown = sorted(set(values) - set(EMBEDDED_DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(EMBEDDED_DEFAULTS)}")
    for key, value in values.items():
        if isinstance(EMBEDDED_DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: parameter {key!r} must be a mapping, got {value!r}")
            params[key].update(value)
        else:
            params[key] = value


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
SAMPLING = ("proportional", "temperature")
PADDING = ("dynamic", "buckets", "max_length")
COMPILE = ("off", "on", "cuda-graphs")
ATTENTION = ("sdpa", "eager")


@dataclass
class Settings:
    """Tokenisation settings shared by training and evaluation (evaluation reads them from the exported model)."""

    max_length: int = 128
    doc_stride: int = 128  # QA: tokens of overlap between windows of a long context
    max_query_length: int = 64
    max_answer_length: int = 30
    retrieval_layer: int = 0  # retrieval: the layer whose mean-pooled states embed a text (see pooling_layer)


@dataclass(frozen=True)
class TrainConfig:
    epochs: float = 3.0
    max_steps: int = 0  # > 0 caps optimizer steps
    batch_size: int = 32  # per micro-batch
    grad_accum: int = 1
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    eval_every: int = 0  # optimizer steps between dev evaluations; 0 = once per epoch
    patience: int = 3  # dev evaluations without improvement before stopping; 0 = never stop early
    checkpoint_every: int = 500
    seed: int = 1
    max_train_examples: int = 0  # > 0 subsamples each training split (fast trials)
    max_eval_examples: int = 0  # > 0 subsamples each dev split (dev evaluation of QA is slow on big splits)
    doc_stride: int = 128  # QA: overlap in tokens between the windows of a long context
    max_query_length: int = 64  # QA: questions are cut to this many tokens
    sampling: str = "proportional"  # multi-task: "proportional" to size, or "temperature" (p ∝ n^(1/T))
    temperature: float = 2.0
    retrieval_layer: int = 0  # contrastive (code search) training: the pooled layer, as at evaluation (0 = middle)
    # Speed and memory levers (`xstilts bench train` measures each). None changes the math beyond float rounding,
    # except token_budget, which changes how many rows a step sees.
    padding: str = "dynamic"  # "dynamic": to the batch's longest; "buckets": that, rounded up to bucket_multiple
    #                           (few distinct shapes, for compile); "max_length": always max_length (HF's default)
    bucket_multiple: int = 16
    token_budget: int = 0  # > 0: micro-batches of up to this many padded tokens instead of batch_size rows (opt-in)
    compile: str = "off"  # "on": torch.compile, one static graph per shape; "cuda-graphs": + CUDA graph replay
    attention: str = "sdpa"  # "sdpa" (fused attention kernels) or "eager" (the reference implementation)
    bf16: bool = True  # bf16 autocast on CUDA (always fp32 on CPU)
    fused_optimizer: bool = True  # the fused AdamW kernel on CUDA
    pin_memory: bool = True  # CUDA: batches built in pinned memory and copied without blocking the host
    log_every: int = 50  # optimizer steps between reading losses back to the host (each read waits for the GPU)
    grad_checkpointing: bool = False  # recompute activations in backward: less memory for long inputs, slower

    @classmethod
    def from_dict(cls, values: dict | None) -> "TrainConfig":
        values = dict(values or {})
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"unknown training parameter(s) {', '.join(unknown)}; known: {', '.join(names)}")
        cast = {}
        for key, value in values.items():
            default = getattr(cls, key)
            try:
                cast[key] = type(default)(value)
            except (TypeError, ValueError):
                raise ConfigError(f"training parameter {key!r} must be {type(default).__name__}, got {value!r}") from None
        config = cls(**cast)
        if config.batch_size < 1 or config.grad_accum < 1 or config.learning_rate <= 0 or config.max_length < 8:
            raise ConfigError(f"invalid training parameters: {config}")
        if config.epochs <= 0 and config.max_steps <= 0:
            raise ConfigError("training needs epochs > 0 or max_steps > 0")
        if config.sampling not in SAMPLING:
            raise ConfigError(f"training parameter 'sampling' must be one of {', '.join(SAMPLING)}, got {config.sampling!r}")
        if config.temperature <= 0:
            raise ConfigError(f"training parameter 'temperature' must be > 0, got {config.temperature}")
        for name, allowed in (("padding", PADDING), ("compile", COMPILE), ("attention", ATTENTION)):
            if getattr(config, name) not in allowed:
                raise ConfigError(f"training parameter {name!r} must be one of {', '.join(allowed)}, "
                                  f"got {getattr(config, name)!r}")
        if config.bucket_multiple < 1 or config.log_every < 1 or config.token_budget < 0:
            raise ConfigError("training parameters 'bucket_multiple' and 'log_every' must be >= 1 and 'token_budget' "
                              f">= 0, got {config.bucket_multiple}, {config.log_every}, {config.token_budget}")
        if config.compile != "off" and config.padding == "dynamic":
            raise ConfigError("training parameter 'compile' needs padding 'buckets' or 'max_length': with dynamic "
                              "padding every new batch length compiles a new graph")
        if config.token_budget and config.token_budget < config.max_length:
            raise ConfigError(f"training parameter 'token_budget' ({config.token_budget}) must hold at least one "
                              f"sequence of max_length {config.max_length}")
        return config

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

