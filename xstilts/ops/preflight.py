"""Checks a run's parameters before its first step: the schema of xstilts.config (types, ranges, enums) and the rules
that need the task registry, the models' shapes or the file system. Every problem is listed at once, with its key,
in one ConfigError, seconds after the command starts rather than after an hour of training.

`xstilts run --local`, `compile`, `submit` and `schedule` call `check_run_params`; the pipeline's validate step
calls it too, since the Kubeflow UI can start a run with any values.

`preflight` (the `xstilts preflight` command; the pipeline's first step can call it too) then checks the outside
world the run depends on, before any GPU time is spent: every hub dataset source of the targets, the conditions'
intermediate tasks, the targets' train tasks and extra train sources (the repository is accessible, the revision
resolves, the config and split exist as Parquet/JSON files rather than a loading script); the model (repository,
revision, config.json, tokenizer and weight files, and whether AdamW training fits the GPU memory); local data
folders; the DVC remote, the data repository and the model registry; the code targets' execution toolchains. Each
check is one row of a PreflightReport (pass/fail/skip with a detail); nothing fails silently.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xstilts.config import merge_params, params_problems
from xstilts.data.dvc import is_dvc_source
from xstilts.errors import ConfigError, XstiltsError
from xstilts.io import shorten
from xstilts.models.tiny import TINY, TINY_CAUSAL, TINY_CAUSAL_CONFIG, TINY_CONFIG
from xstilts.kinds.base import GENERATION
from xstilts.tasks.registry import HubSource, all_tasks, condition_tasks, get_task, languages_for

HUB_DATA = ("hf", "hub", "hf://")


def experiment_problems(params: dict, local: bool) -> list[str]:
    """The rules between parameters: known target tasks and languages, conditions made of distinct trainable tasks,
    promotion targets among the targets, task_data for known tasks, a retrieval layer inside the model, and
    (`local`: the data is read on this machine) data folders that exist. Expects check_params to have passed."""
    problems = []
    targets = []
    for i, name in enumerate(params["target_tasks"]):
        try:
            task = get_task(name)
        except XstiltsError as e:
            problems.append(f"target_tasks[{i}]: {e}")
            continue
        if task.role != "target":
            problems.append(f"target_tasks[{i}]: {name!r} is not a cross-lingual target task; targets: "
                            f"{', '.join(t.name for t in all_tasks() if t.role == 'target')}")
        else:
            targets.append(task)
    for key in ("target_tasks", "conditions"):
        repeated = sorted({v for v in params[key] if params[key].count(v) > 1})
        if repeated:  # two branches would train the same model into the same checkpoint directory
            problems.append(f"{key}: {', '.join(repeated)} listed more than once")
    for i, condition in enumerate(params["conditions"]):
        try:
            condition_tasks(condition)
        except XstiltsError as e:
            problems.append(f"conditions[{i}]: {e}")
    if targets and len(targets) == len(params["target_tasks"]):
        try:
            languages_for(targets, params["languages"])
        except XstiltsError as e:
            problems.append(f"languages: {e}")
    strangers = [t for t in params["promotion_targets"] if t not in params["target_tasks"]]
    if strangers:
        problems.append(f"promotion_targets: {', '.join(strangers)} not among the target_tasks "
                        f"({', '.join(params['target_tasks'])})")
    if params["promotion_condition"] and params["promotion_condition"] not in params["conditions"]:
        problems.append(f"promotion_condition: {shorten(params['promotion_condition'])} is not one of the conditions")
    for name in params.get("hf_revisions") or {}:
        try:
            get_task(name)
        except XstiltsError as e:
            problems.append(f"hf_revisions.{shorten(name, 60)}: {e}")
    for name in params["task_data"]:
        try:
            get_task(name)
        except XstiltsError as e:
            problems.append(f"task_data.{shorten(name, 60)}: {e}")
    layers = _layers(params["model_name"])
    layer = params["retrieval_layer"]
    if layers is not None and not (layer == 0 or 1 <= layer <= layers or -layers <= layer <= -1):
        problems.append(f"retrieval_layer: {layer} is outside {params['model_name']}'s {layers} layers "
                        f"(use 1..{layers}, -1..-{layers} or 0 for the middle one)")
    if local:
        problems += _missing_data(params)
    return problems


def _layers(model_name: str) -> int | None:
    """Transformer layers of the model, where they are known without a download (tiny models, local folders)."""
    if model_name in (TINY, TINY_CAUSAL):
        return (TINY_CONFIG if model_name == TINY else TINY_CAUSAL_CONFIG)["num_hidden_layers"]
    config = Path(model_name) / "config.json"
    if config.is_file():
        import json

        try:
            return int(json.loads(config.read_text())["num_hidden_layers"])
        except (ValueError, KeyError, TypeError):
            return None
    return None


def _missing_data(params: dict) -> list[str]:
    """Local data roots that do not exist: `data`, and `task_data` of the tasks the run reads (an entry for a task
    the grid does not use, as a preset's ccg path when ccg is not among the conditions, is never read). The hub, DVC
    sources and a data_repo's paths are resolved by the run."""
    problems = []
    if params["data_repo"]:
        return problems
    roots = {"data": params["data"],
             **{f"task_data.{k}": v for k, v in params["task_data"].items() if k in _tasks_read(params)}}
    for key, root in roots.items():
        if root in HUB_DATA or "://" in root or is_dvc_source(root):
            continue
        path = Path(root)
        if not path.exists():
            problems.append(f"{key}: data folder {root} does not exist")
        elif not path.is_dir() and not path.is_file():
            problems.append(f"{key}: {root} is not a folder or a file")
    return problems


def _tasks_read(params: dict) -> set[str]:
    """The tasks whose data the run loads: the targets, the conditions' tasks, and the tasks they train on."""
    tasks = []
    for name in params["target_tasks"]:
        with contextlib.suppress(XstiltsError):
            tasks.append(get_task(name))
    for condition in params["conditions"]:
        with contextlib.suppress(XstiltsError):
            tasks += condition_tasks(condition)
    return {t.name for t in tasks} | {t.data_task for t in tasks}


def check_run_params(params: dict, source: str = "parameters", local: bool = True) -> dict:
    """The schema's problems (types, ranges) and experiment_problems, all in one ConfigError."""
    problems = params_problems(params)
    try:
        problems += experiment_problems(params, local)
    except (TypeError, AttributeError, KeyError, ValueError):  # a key of the wrong type: the schema has said so
        if not problems:
            raise
    if problems:
        raise ConfigError(f"{source}: {len(problems)} invalid parameter(s):\n  - " + "\n  - ".join(problems))
    return params


def load_run_params(path: str | Path | None = None, overrides: dict | None = None, preset_name: str | None = None,
                    local: bool = True) -> dict:
    """merge_params (a preset, a YAML file, CLI overrides), checked by check_run_params."""
    params = merge_params(path, overrides, preset_name)
    return check_run_params(params, str(path) if path else "parameters", local)



# ---- preflight: the outside world the run depends on ---------------------------------------------------------------

PASS, FAIL, SKIP = "pass", "fail", "skip"
HUB_TIMEOUT_S = 30.0
GIT_TIMEOUT_S = 60
# Files `datasets` reads as data (also compressed); a repository with none of them for a split cannot be loaded.
DATA_EXTENSIONS = (".parquet", ".jsonl", ".json", ".csv", ".tsv", ".arrow")
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
NOT_DATA = ("README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dataset_dict.json")
# datasets' split keywords (datasets.data_files.SPLIT_KEYWORDS) and the separators around them in file/folder names.
SPLIT_KEYWORDS = {"train": ("train", "training"), "validation": ("validation", "valid", "dev", "val"),
                  "test": ("test", "testing", "eval", "evaluation")}
_SEP = "[-._ 0-9]"
_SHARDED = re.compile(r"^data/(\w+(?:\.\w+)*)-\d{5}-of-\d{5}[^/]*$")
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "vocab.txt",
                   "vocab.json")
# Training memory rule: AdamW with fp32 master weights keeps 16 bytes per parameter on the GPU — weights (4),
# gradients (4) and the two moment estimates (8) — before activations, which grow with batch size and length.
TRAIN_BYTES_PER_PARAM = 16
DEFAULT_GPU_MEMORY = "80G"  # one A100/H100 80 GB, what XTREME_GRID's batch settings were sized for


class PreflightError(XstiltsError):
    """A preflight check failed; the message lists every failed row."""


@dataclass
class Check:
    check: str  # what kind of check: dataset, model, model memory, task data, toolchain, dvc remote, registry, ...
    subject: str  # what was checked: `xnli ← facebook/xnli@main`, a model id, a path, a language
    status: str  # pass, fail or skip
    detail: str  # why, in one line: what was found, or what is wrong and how to fix it


@dataclass
class PreflightReport:
    checks: list[Check] = field(default_factory=list)

    def add(self, check: str, subject: str, status: str, detail: str) -> Check:
        row = Check(check, subject, status, detail)
        self.checks.append(row)
        return row

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in (PASS, FAIL, SKIP)}

    def to_dict(self) -> dict:
        return {"ok": self.ok, "counts": self.counts(), "checks": [asdict(c) for c in self.checks]}

    def table(self, title: str = "preflight"):
        """A rich Table: check, subject, status (coloured), detail."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for column in ("check", "subject", "status", "detail"):
            table.add_column(column, overflow="fold")
        colour = {PASS: "green", FAIL: "bold red", SKIP: "dim"}
        for c in self.checks:
            table.add_row(escape(c.check), escape(c.subject), f"[{colour[c.status]}]{c.status}[/]", escape(c.detail))
        return table

    def raise_for_failures(self) -> "PreflightReport":
        """PreflightError listing every failed row (the pipeline's first step stops on it); self otherwise."""
        if self.failures:
            raise PreflightError(f"preflight: {len(self.failures)} of {len(self.checks)} check(s) failed:\n  - "
                                 + "\n  - ".join(f"{c.check} {c.subject}: {c.detail}" for c in self.failures))
        return self


def preflight(params: dict, *, local: bool = True, gpu_memory: str | int | None = None, source: str = "parameters",
              api=None) -> PreflightReport:
    """Check the run's parameters (check_run_params: a ConfigError lists their problems), then everything outside
    them that the run needs, one row each. `local`: the run reads its data and runs code here (this machine, or the
    pipeline pod calling this), so local data folders and toolchains are checked; otherwise those rows are skipped.
    `gpu_memory` ("80G", bytes as an int, None/0: not checked) is one GPU's memory. `api`: a huggingface_hub HfApi
    (default: one for HF_ENDPOINT with HF_TOKEN). The report is returned whether or not checks failed:
    `report.raise_for_failures()` stops a pipeline on the first failure."""
    check_run_params(params, source, local=False)  # folders are report rows here, not parameter errors
    report = PreflightReport()
    hub = _Hub(api)
    _check_data(params, local, hub, report)
    _check_model(params, local, hub, gpu_memory, report)
    _check_toolchains(params, local, report)
    _check_remotes(params, report)
    return report


def require_preflight(params: dict, **kwargs) -> PreflightReport:
    """preflight(), raising PreflightError when a check failed: what a pipeline's first step calls."""
    return preflight(params, **kwargs).raise_for_failures()


def parse_memory(value: str | int | float | None) -> int | None:
    """'80G', '80GB', '80GiB', '141g', '81920M', '80' (GiB) or a byte count → bytes (binary units); None/0 → None."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value) if value > 0 else None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(value), flags=re.I)
    if not match:
        raise ConfigError(f"GPU memory {value!r}: expected a size such as 80G, 80GiB or 81920M")
    number, unit = float(match.group(1)), match.group(2).upper() or "G"
    size = int(number * 1024 ** ("KMGT".index(unit) + 1))
    return size or None


def _gib(size: float) -> str:
    return f"{size / 1024 ** 3:.1f} GiB"


def _short(sha: str | None) -> str:
    return (sha or "?")[:7]


def dataset_revision(params: dict, task: str, source: HubSource) -> str:
    """The revision a task's hub data is read at: `hf_revisions[task]` (per-task pins, when the parameters have
    them), else `hf_revision` (one for every task), else the registry's pin on the source."""
    per_task = params.get("hf_revisions")
    return source.revision_for(task, per_task if isinstance(per_task, dict) else None, params.get("hf_revision"))


# ---- the hub ----------------------------------------------------------------------------------------------------

class _Hub:
    """huggingface_hub calls, each (repo, revision) asked once, with failures turned into one-line reasons."""

    def __init__(self, api=None):
        self._api = api
        self._info: dict[tuple, tuple[object | None, str | None]] = {}

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=os.environ.get("HF_TOKEN") or None)
        return self._api

    @property
    def endpoint(self) -> str:
        return getattr(self.api, "endpoint", None) or "https://huggingface.co"

    def _offline(self) -> str | None:
        from huggingface_hub import constants

        if constants.is_offline_mode():
            return "offline mode is on (HF_HUB_OFFLINE=1): the hub cannot be checked; unset it"
        return None

    def prefetch(self, kind: str, keys: list[tuple[str, str]]) -> None:
        """Ask for many (repo, revision) infos at once (a grid names ~20 dataset repositories)."""
        todo = [k for k in dict.fromkeys(keys) if (kind, *k) not in self._info]
        if len(todo) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
                list(pool.map(lambda k: self.info(kind, *k), todo))

    def info(self, kind: str, repo: str, revision: str):
        """(DatasetInfo/ModelInfo, None) or (None, why it failed)."""
        key = (kind, repo, revision)
        if key not in self._info:
            offline = self._offline()
            if offline:
                self._info[key] = (None, offline)
            else:
                try:
                    if kind == "dataset":
                        found = self.api.dataset_info(repo, revision=revision, timeout=HUB_TIMEOUT_S)
                    else:
                        found = self.api.model_info(repo, revision=revision, timeout=HUB_TIMEOUT_S, files_metadata=True)
                    self._info[key] = (found, None)
                except Exception as e:  # noqa: BLE001 - every failure becomes the row's reason
                    self._info[key] = (None, self.explain(e, kind, repo, revision))
        return self._info[key]

    def access(self, kind: str, repo: str) -> str | None:
        """None if this token may download from a gated repository, else why not."""
        try:
            self.api.auth_check(repo, repo_type=kind)
            return None
        except Exception as e:  # noqa: BLE001
            return self.explain(e, kind, repo, None)

    def parquet_export(self, repo: str) -> bool:
        """Whether the dataset has the hub's Parquet export (`refs/convert/parquet`)."""
        try:
            refs = self.api.list_repo_refs(repo, repo_type="dataset")
        except Exception:  # noqa: BLE001 - only a hint
            return False
        return any(ref.ref == "refs/convert/parquet" for ref in refs.converts)

    def explain(self, e: Exception, kind: str, repo: str, revision: str | None) -> str:
        from huggingface_hub.errors import (DisabledRepoError, GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled,
                                            RepositoryNotFoundError, RevisionNotFoundError)

        status = getattr(getattr(e, "response", None), "status_code", None)
        what = f"{kind} {repo}"
        if isinstance(e, RevisionNotFoundError) or (status == 404 and revision and _error_code(e) == "RevisionNotFound"):
            return f"revision {revision!r} not found in {what} (a branch, tag or commit of that repository)"
        if isinstance(e, GatedRepoError) or _error_code(e) == "GatedRepo":
            return (f"{what} is gated ({status}): accept its conditions on the hub with the account whose token "
                    f"HF_TOKEN holds")
        if isinstance(e, DisabledRepoError):
            return f"{what} is disabled on the hub"
        if isinstance(e, RepositoryNotFoundError) or status in (401, 404):
            why = "does not exist, or is private and this token cannot read it"
            token = "HF_TOKEN is set" if os.environ.get("HF_TOKEN") else "no HF_TOKEN set"
            return f"{what} not found ({status}): the id {why} ({token})"
        if status == 403:
            return f"{what}: access forbidden (403): the token lacks permission"
        if isinstance(e, OfflineModeIsEnabled):
            return "offline mode is on (HF_HUB_OFFLINE=1): the hub cannot be checked; unset it"
        if isinstance(e, HfHubHTTPError):
            return f"{what}: hub error {status}: {str(e).splitlines()[0]}"
        return f"cannot reach the hub at {self.endpoint} for {what}: {type(e).__name__}: {str(e)[:200]}"


def _error_code(e: Exception) -> str | None:
    response = getattr(e, "response", None)
    return response.headers.get("X-Error-Code") if response is not None else None


def _files(info) -> list[str]:
    return [s.rfilename for s in (info.siblings or [])]


def _glob(pattern: str) -> re.Pattern:
    """An fsspec/hub glob (`*`, `**`, `?`, `[...]`) as a regex over repository paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _is_data(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    if name in NOT_DATA or any(part.startswith(".") for part in path.split("/")):
        return False
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    return name.endswith(DATA_EXTENSIONS)


def _under(files: list[str], folder: str | None) -> list[str]:
    """Paths below `folder`, relative to it (all of them for None)."""
    if not folder:
        return list(files)
    prefix = folder.strip("/") + "/"
    return [f[len(prefix):] for f in files if f.startswith(prefix)]


def _rooted(splits: dict[str, list[str]], folder: str | None) -> dict[str, list[str]]:
    """Split → paths relative to `folder` made repository paths again."""
    prefix = folder.strip("/") + "/" if folder else ""
    return {split: [prefix + f for f in found] for split, found in splits.items()}


def infer_splits(files: list[str]) -> dict[str, list[str]]:
    """Split → data files, as `datasets` infers them without a `configs:` declaration: `data/<split>-NNNNN-of-NNNNN`
    shards, else a split keyword in a folder name (`<config>/<split>/0000.parquet`, refs/convert/parquet's layout),
    else in the file name (`<config>/<split>-*.parquet`), else everything is `train`."""
    data = [f for f in files if _is_data(f)]
    sharded: dict[str, list[str]] = {}
    for f in data:
        match = _SHARDED.match(f)
        if match:
            sharded.setdefault(match.group(1), []).append(f)
    if sharded:
        return sharded
    for in_folder in (True, False):
        found: dict[str, list[str]] = {}
        for split, keywords in SPLIT_KEYWORDS.items():
            for keyword in keywords:
                regex = re.compile(rf"^(?:.*{_SEP})?{keyword}(?:{_SEP}.*)?$" if in_folder
                                   else rf"^(?:.*{_SEP})?{keyword}{_SEP}.*$")
                for f in data:
                    parts = f.split("/")
                    names = parts[:-1] if in_folder else parts[-1:]
                    if any(regex.match(name) for name in names) and f not in found.get(split, []):
                        found.setdefault(split, []).append(f)
        if found:
            return found
    return {"train": data} if data else {}


def _declared_splits(entry: dict, files: list[str]) -> dict[str, list[str]]:
    """Split → files of one `configs:` entry of a dataset card (data_files as a pattern, a list, split/path dicts or
    a mapping; else its data_dir's inferred splits)."""
    base = _under(files, entry.get("data_dir"))
    data_files = entry.get("data_files")
    if data_files is None:
        return _rooted(infer_splits(base), entry.get("data_dir"))
    if isinstance(data_files, (str, list)) and not (isinstance(data_files, list) and data_files
                                                    and isinstance(data_files[0], dict)):
        declared = {"train": data_files}
    elif isinstance(data_files, dict):
        declared = data_files
    else:
        declared = {d.get("split", "train"): d.get("path") for d in data_files if isinstance(d, dict)}
    splits = {}
    for split, patterns in declared.items():
        patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
        regexes = [_glob(p) for p in patterns if isinstance(p, str)]
        splits[str(split)] = [f for f in base if any(r.match(f) for r in regexes)]
    return _rooted(splits, entry.get("data_dir"))


def resolve_source(files: list[str], card: dict | None, path: str, config: str | None, data_dir: str | None,
                   ) -> tuple[dict[str, list[str]] | None, str]:
    """(split → files, where they came from) for one config of a dataset repository's file list, the way `datasets`
    (>= 4, no loading scripts) resolves `load_dataset(path, config, data_dir=...)`; (None, why not) when it cannot."""
    script = path.rsplit("/", 1)[-1] + ".py"
    if script in files:
        return None, f"a loading script ({script}): `datasets` >= 4 no longer runs them"
    configs = [c for c in (card or {}).get("configs") or [] if isinstance(c, dict) and c.get("config_name")]
    if data_dir:  # datasets reads the folder's files with its default patterns
        below = _under(files, data_dir)
        if not below:
            return None, f"no folder {data_dir!r}"
        return _rooted(infer_splits(below), data_dir), f"folder {data_dir}/"
    if configs:
        names = [c["config_name"] for c in configs]
        if config is None:
            chosen = ([c for c in configs if c.get("default")] or [c for c in configs if c["config_name"] == "default"]
                      or (configs if len(configs) == 1 else []))
            if not chosen:
                return None, f"no config given and none is the default; configs: {_listing(names)}"
            entry = chosen[0]
        else:
            entry = next((c for c in configs if c["config_name"] == config), None)
            if entry is None:
                return None, f"no config {config!r}; configs: {_listing(names)}"
        return _declared_splits(entry, files), f"config {entry['config_name']}"
    if config in (None, "default"):
        return infer_splits(files), "inferred layout"
    folder = _under(files, config)
    if card is None and folder:  # no dataset card in the answer: the folder layout is the best evidence
        return _rooted(infer_splits(folder), config), f"folder {config}/"
    hint = f" (a folder {config}/ exists: name it as data_dir)" if folder else ""
    return None, f"no config {config!r}: the dataset card declares no configs, so only 'default' exists{hint}"


def _listing(names: list[str], limit: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "") if names else "none"


@dataclass(frozen=True)
class _Load:
    """One `load_dataset` call the run will make."""

    config: str | None
    data_dir: str | None
    split: str  # the hub's split name; `a+b` concatenates


def _loads(source: HubSource, split: str, languages: tuple[str, ...]) -> list[_Load]:
    template = source.splits[split]
    if not source.per_language(split):
        return [_Load(source.config, source.data_dir, template)]
    return list(dict.fromkeys(_Load(source.config_for(lang), source.data_dir_for(lang), source._fill(template, lang))
                              for lang in languages))


def _check_source(hub: _Hub, report: PreflightReport, subject: str, source: HubSource, revision: str,
                  loads: list[_Load]) -> None:
    """One report row for a hub source: repository, revision, gate, and every (config, split) the run loads."""
    info, error = hub.info("dataset", source.path, revision)
    if error:
        report.add("dataset", subject, FAIL, error)
        return
    if getattr(info, "disabled", False):
        report.add("dataset", subject, FAIL, f"dataset {source.path} is disabled on the hub")
        return
    if getattr(info, "gated", False):
        denied = hub.access("dataset", source.path)
        if denied:
            report.add("dataset", subject, FAIL, denied)
            return
    files = _files(info)
    card = info.card_data.to_dict() if getattr(info, "card_data", None) is not None else None
    problems, formats, configs, splits = [], set(), set(), set()
    for load in loads:
        resolved, where = resolve_source(files, card, source.path, load.config, load.data_dir)
        if resolved is None:
            if "loading script" in where:
                hint = (f"; its Parquet export exists: pin revision refs/convert/parquet and data_dir "
                        f"'{load.config or '<config>'}'" if hub.parquet_export(source.path) else "")
                report.add("dataset", subject, FAIL, f"{source.path}@{revision}: only {where}{hint}")
                return
            problems.append(where)
            continue
        configs.add(load.config or load.data_dir or "default")
        for part in load.split.split("+"):
            found = resolved.get(part)
            if not found:
                problems.append(f"{where}: no split {part!r} (has {_listing(sorted(resolved))})")
                continue
            data = [f for f in found if _is_data(f)]
            if not data:
                problems.append(f"{where} split {part}: no Parquet/JSON/CSV files ({_listing(found, 3)})")
                continue
            splits.add(part)
            formats.update(_format(f) for f in data)
    if problems:
        unique = list(dict.fromkeys(problems))
        report.add("dataset", subject, FAIL, f"{source.path}@{revision}: " + "; ".join(unique[:3])
                   + (f"; … {len(unique) - 3} more" if len(unique) > 3 else ""))
        return
    access = "private, readable with the token" if getattr(info, "private", False) else "public"
    shown = sorted(configs)
    report.add("dataset", subject, PASS,
               f"{access} · {revision} = {_short(info.sha)} · {len(shown)} config(s) "
               f"{_listing(shown, 3)} · split(s) {', '.join(sorted(splits))} · {', '.join(sorted(formats))}")


def _format(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    return name.rsplit(".", 1)[-1]


def _check_data(params: dict, local: bool, hub: _Hub, report: PreflightReport) -> None:
    """Every source of every task the run loads: hub sources through the hub API, local folders on disk (`local`),
    DVC sources and the data repository through git."""
    from xstilts.data.load import HUB_PREFIX
    from xstilts.data.validate import _plan, default_source

    targets = [get_task(name) for name in params["target_tasks"]]
    intermediates = {t.name: t for condition in params["conditions"] for t in condition_tasks(condition)}
    plan = _plan(targets, list(intermediates.values()), params["languages"] or None)
    hub_rows, dvc_sources = [], {}
    for name, (splits, eval_languages) in plan.items():
        task = get_task(name)
        root = default_source(params["task_data"].get(name, params["data"]))
        if root.startswith(HUB_PREFIX):
            if task.hub is None:
                report.add("dataset", name, FAIL, f"no hub source: {task.source_note or 'supply local files'} "
                           f"(set task_data.{name})")
                continue
            missing = [s for s in splits if s not in task.hub.splits]
            if missing:
                report.add("dataset", name, FAIL, f"{task.hub.path} has no split for {', '.join(missing)}")
                continue
            loads = [load for split in splits for load in _loads(task.hub, split, task.split_languages(split, eval_languages))]
            revision = dataset_revision(params, name, task.hub)
            hub_rows.append((f"{name} ← {task.hub.path}", task.hub, revision, list(dict.fromkeys(loads))))
            if "train" in splits:
                for extra in task.extra_train:  # pinned by their own revisions, as data.load reads them
                    hub_rows.append((f"{name} (extra train) ← {extra.path}", extra, extra.revision,
                                     [_Load(extra.config, extra.data_dir, extra.splits["train"])]))
        elif is_dvc_source(root):
            dvc_sources.setdefault(root, []).append(name)
        elif params["data_repo"]:
            continue  # a path inside data_repo: checked below with the repository
        elif not local:
            report.add("task data", f"{name} ← {root}", SKIP, "a path where the run executes: checked there "
                       "(run preflight with --local on that machine, or the pipeline's first step)")
        else:
            report.add("task data", f"{name} ← {root}", *_local_task_files(Path(root), task, splits, eval_languages))
    hub.prefetch("dataset", [(source.path, revision) for _, source, revision, _ in hub_rows])
    for subject, source, revision, loads in hub_rows:
        _check_source(hub, report, f"{subject}@{revision}" if revision != "main" else subject, source, revision, loads)
    for root, names in dvc_sources.items():
        from xstilts.data.dvc import parse_source

        try:
            repo = parse_source(root)["repo"]
        except XstiltsError as e:
            report.add("data repo", root, FAIL, str(e))
            continue
        report.add("data repo", f"{repo} ({', '.join(names)})", *_git_reachable(repo))
    if params["data_repo"]:
        report.add("data repo", params["data_repo"], *_git_reachable(params["data_repo"]))


def _local_task_files(root: Path, task, splits, eval_languages=None) -> tuple[str, str]:
    """A local root holds each split as <task>/<split>.jsonl|parquet, or as the task's official release files."""
    from xstilts.data.official import has_official_format, official_sources

    if not root.exists():
        return FAIL, f"data folder {root} does not exist"
    found, missing = [], []
    for split in splits:
        candidates = [root / task.name / f"{split}{suffix}" for suffix in (".jsonl", ".parquet")] if root.is_dir() else []
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is not None:
            found.append(f"{task.name}/{hit.name}")
            continue
        if has_official_format(task):
            try:
                found.extend(sorted(official_sources(root, task, split, task.split_languages(split, eval_languages))))
                continue
            except XstiltsError as e:
                missing.append(f"{split}: {e}")
                continue
        missing.append(f"{task.name}/{split}.jsonl (or .parquet)")
    if missing:
        note = f" ({task.source_note})" if task.source_note else ""
        return FAIL, f"missing under {root}: {'; '.join(missing)}{note}"
    return PASS, f"{', '.join(dict.fromkeys(found))} under {root}"


# ---- the model --------------------------------------------------------------------------------------------------

def _check_model(params: dict, local: bool, hub: _Hub, gpu_memory, report: PreflightReport) -> None:
    name, revision = params["model_name"], params["model_revision"] or None
    limit = parse_memory(gpu_memory)
    if name in (TINY, TINY_CAUSAL):
        report.add("model", name, SKIP, "built in code (no download)")
        return
    folder = Path(name).expanduser()
    if folder.is_dir() or name.startswith(("/", "./", "../", "~")):
        if not local:
            report.add("model", name, SKIP, "a local folder: checked where the run executes")
            return
        if not folder.is_dir():
            report.add("model", name, FAIL, f"model folder {name} does not exist")
            return
        sizes = {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
        _model_rows(report, name, "local folder", sizes, None, limit)
        return
    at = revision or "main"
    info, error = hub.info("model", name, at)
    if error:
        report.add("model", f"{name}@{at}", FAIL, error)
        return
    if getattr(info, "gated", False):
        denied = hub.access("model", name)
        if denied:
            report.add("model", f"{name}@{at}", FAIL, denied)
            return
    sizes = {s.rfilename: (s.size if s.size is not None else (s.lfs.size if s.lfs else None)) for s in info.siblings or []}
    access = "private, readable with the token" if getattr(info, "private", False) else "public"
    parameters = getattr(getattr(info, "safetensors", None), "total", None)
    _model_rows(report, f"{name}@{at}", f"{access} · {at} = {_short(info.sha)}", sizes, parameters, limit)


def _model_rows(report: PreflightReport, subject: str, where: str, sizes: dict[str, int | None],
                parameters: int | None, limit: int | None) -> None:
    """The model's files (config.json, a tokenizer, weights) and its training memory against `limit` bytes."""
    top = {f: s for f, s in sizes.items() if "/" not in f}  # transformers reads the repository root
    safetensors = {f: s for f, s in top.items() if f.endswith(".safetensors")}
    bins = {f: s for f, s in top.items() if re.fullmatch(r"pytorch_model.*\.bin", f)}
    weights = safetensors or bins  # transformers prefers safetensors
    missing = []
    if "config.json" not in top:
        missing.append("config.json")
    if not any(f in top for f in TOKENIZER_FILES):
        missing.append(f"a tokenizer ({', '.join(TOKENIZER_FILES)})")
    if not weights:
        missing.append("weights (*.safetensors or pytorch_model*.bin)")
    if missing:
        report.add("model", subject, FAIL, f"{where} · missing {'; '.join(missing)}")
        return
    total = sum(s or 0 for s in weights.values())
    kind = "safetensors" if safetensors else "PyTorch .bin"
    report.add("model", subject, PASS, f"{where} · config.json, tokenizer, {len(weights)} {kind} file(s), "
               f"{_gib(total)}")
    if parameters:
        counted = f"{parameters / 1e6:,.0f}M parameters"
    elif total:
        parameters = total // 4
        counted = f"~{parameters / 1e6:,.0f}M parameters (weights' size / 4 bytes: fp32 assumed)"
    else:
        report.add("model memory", subject, SKIP, "weight sizes unknown")
        return
    need = parameters * TRAIN_BYTES_PER_PARAM
    rule = f"{counted} × {TRAIN_BYTES_PER_PARAM} B (AdamW: fp32 weights, gradients, 2 moments) = {_gib(need)}"
    if limit is None:
        report.add("model memory", subject, SKIP, f"{rule}; no GPU memory given (--gpu-memory)")
    elif need > limit:
        report.add("model memory", subject, FAIL, f"{rule} > {_gib(limit)} GPU memory, before activations: use a "
                   f"smaller model or a bigger GPU")
    else:
        report.add("model memory", subject, PASS, f"{rule} ≤ {_gib(limit)} GPU memory "
                   f"({_gib(limit - need)} left for activations)")


# ---- toolchains, remotes ----------------------------------------------------------------------------------------

def code_languages(params: dict) -> list[str]:
    """Programming languages whose programs the run executes: the selected languages of a code target whose
    languages are programming languages (MBXP), Python for the other generation tasks (HumanEval, HumanEval-XL,
    MBPP-style intermediates)."""
    from xstilts.codeexec.languages import LANGUAGES

    targets = [get_task(name) for name in params["target_tasks"]]
    selected = languages_for(targets, params["languages"] or None) if targets else {}
    tasks = targets + [t for c in params["conditions"] for t in condition_tasks(c)]
    found: list[str] = []
    for task in tasks:
        if task.kind != GENERATION:
            continue
        if set(task.languages) <= set(LANGUAGES):
            found += selected.get(task.name, task.languages)
        else:
            found.append("python")
    return list(dict.fromkeys(found))


def _check_toolchains(params: dict, local: bool, report: PreflightReport) -> None:
    from xstilts.codeexec import languages as codeexec

    for language in code_languages(params):
        if not local:
            report.add("toolchain", language, SKIP, "checked where the evaluation runs (the image; --local there)")
            continue
        try:
            toolchain = codeexec.find_toolchain(codeexec.get_language(language))
        except XstiltsError as e:
            report.add("toolchain", language, FAIL, str(e))
            continue
        report.add("toolchain", language, PASS, ", ".join(toolchain.paths.values()))


def _git_reachable(repo: str) -> tuple[str, str]:
    """(status, detail) of `git ls-remote` on a repository (no prompts; XSTILTS_GIT_TOKEN through GIT_ASKPASS)."""
    import tempfile

    from xstilts.ops.promotion import _git_env

    with tempfile.TemporaryDirectory(prefix="xstilts-preflight-") as tmp:
        try:
            out = subprocess.run(["git", "ls-remote", "--heads", "--tags", repo], env=_git_env(Path(tmp)),
                                 capture_output=True, text=True, timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            return FAIL, "git is not installed"
        except subprocess.TimeoutExpired:
            return FAIL, f"git ls-remote did not answer in {GIT_TIMEOUT_S} s"
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return FAIL, f"git ls-remote failed: {lines[-1] if lines else f'exit {out.returncode}'}"
    refs = [line for line in out.stdout.splitlines() if line.strip()]
    return PASS, f"reachable, {len(refs)} branch(es)/tag(s)"


def _check_remotes(params: dict, report: PreflightReport) -> None:
    remote = params["dvc_remote"]
    if not remote:
        report.add("dvc remote", "dvc_remote", SKIP, "not set: trained models are not pushed")
    else:
        from xstilts.ops.artifact_store import _explain, open_remote, redact

        try:
            opened, url = open_remote(remote)
            exists = opened.fs.exists(opened.path)
        except XstiltsError as e:
            report.add("dvc remote", redact(remote), FAIL, str(e))
        except Exception as e:  # noqa: BLE001 - credentials, network: explained
            report.add("dvc remote", redact(remote), FAIL, _explain(e, redact(remote)))
        else:
            report.add("dvc remote", redact(remote), PASS,
                       f"{url}: " + ("reachable" if exists else "reachable, empty (the first push creates it)"))
    registry = params["registry_repo"]
    if not registry:
        report.add("registry", "registry_repo", SKIP, "not set: no promotion gate")
    else:
        report.add("registry", registry, *_git_reachable(registry))
