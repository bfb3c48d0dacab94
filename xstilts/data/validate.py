"""Validate a task's data with a great-expectations 1.x suite built from the task's schema.

Writes one canonical Parquet table per split (the Dataset artifact), plus an HTML and a Markdown report.
On failure nothing is written to the dataset path and `DataValidationError` lists every failed expectation
with example rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
import pandas as pd
from xstilts.data import dvc as dvcdata
from xstilts.data.load import (CHECK_PREFIX, HUB_PREFIX, OK, PAIRS_SUFFIX, SOURCE_ROW, canonical_columns, load_split)
from xstilts.errors import ConfigError, DataError, DataValidationError
from xstilts.io import atomic_dir, atomic_write_text, write_json
from xstilts.progress import phase
from xstilts.provenance import Provenance, source_files
from xstilts.io import esc, html_page, html_table, markdown_table, plain
from xstilts.kinds.base import get_spec
from xstilts.tasks.registry import (Task, all_tasks, condition_tasks, get_task, languages_for)


MAX_EXAMPLES = 5


@dataclass
class ExpectationOutcome:
    task: str
    split: str
    source: str  # the file (or hub dataset) the rows came from; example rows are numbered as there
    expectation: str
    column: str
    success: bool
    unexpected_count: int = 0
    element_count: int = 0
    examples: list[dict] = field(default_factory=list)  # offending rows: id, field, value

    def describe(self) -> str:
        head = f"{self.task}/{self.split} ({self.source}): {self.expectation}({self.column})"
        if self.success:
            return head + ": ok"
        examples = "; ".join(f"row {e['row']} id={e['id']!r} {self.column}={e['value']!r}" for e in self.examples)
        return f"{head}: {self.unexpected_count} of {self.element_count} rows failed" + (f" — e.g. {examples}" if examples else "")


def build_suite(task: Task, languages: tuple[str, ...], labels: tuple[str, ...], columns: list[str],
                split: str = "train"):
    """The expectations a canonical split must meet, derived from the task's kind and declaration."""
    import great_expectations.expectations as gxe  # 3 s import: keep it off the CLI's start-up path

    expectations = [gxe.ExpectColumnToExist(column=c) for c in canonical_columns(task.kind)]
    # The kind's own: present texts of bounded length, labels in the label set, ... (KindSpec.expectations).
    expectations += get_spec(task.kind).expectations(gxe, task, labels, split)
    # Cross-field checks computed while loading (answer inside its context, one tag per token, ...): "ok" or why not.
    expectations += [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=[OK]) for c in columns if c.startswith(CHECK_PREFIX)]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column="language", value_set=list(languages)),
        # Ids are unique within a language (XQuAD and MLQA reuse one question id across its translations).
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["language", "id"]),
    ]
    return expectations


def ephemeral_context():
    """One in-memory great-expectations context (no files), with its per-metric progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("xstilts")
    return context


def run_suite(context, df: pd.DataFrame, task: Task, split: str, languages: tuple[str, ...],
              labels: tuple[str, ...]) -> list[ExpectationOutcome]:
    import great_expectations as gx

    batch_definition = (context.data_sources.get("xstilts")
                        .add_dataframe_asset(f"{task.name}-{split}")
                        .add_batch_definition_whole_dataframe("all-rows"))
    suite = context.suites.add(gx.ExpectationSuite(name=f"{task.name}-{split}",
                                                   expectations=build_suite(task, languages, labels, list(df.columns),
                                                                            split)))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        column = cfg.kwargs.get("column") or "+".join(cfg.kwargs.get("column_list", []))
        indices = r.result.get("unexpected_index_list") or []
        columns = cfg.kwargs.get("column_list") or [column]
        examples = [{"row": int(df.at[i, SOURCE_ROW]), "id": str(df.at[i, "id"]),
                     "value": "/".join(str(plain(df.at[i, c])) for c in columns) if len(columns) > 1 else plain(df.at[i, column])}
                    for i in indices[:MAX_EXAMPLES] if all(c in df for c in columns)]
        outcomes.append(ExpectationOutcome(task.name, split, df.attrs.get("source", ""), cfg.type, column, bool(r.success),
                                           int(r.result.get("unexpected_count") or 0),
                                           int(r.result.get("element_count") or len(df)), examples))
    return outcomes


def _plan(targets: list[Task], intermediates: list[Task], languages) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Task name → (splits to load, evaluation languages). A target trained on another task's data (XQuAD on SQuAD)
    brings that task's train/validation splits along."""
    plan: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    eval_languages = languages_for(targets, languages) if targets else {}
    for task in targets:
        plan[task.name] = (task.own_splits(), eval_languages[task.name])
        if task.train_task:
            plan.setdefault(task.train_task, (get_task(task.train_task).splits, ("en",)))
    for task in intermediates:
        if task.name not in plan:
            plan[task.name] = (tuple(s for s in task.splits if s != "test"), (task.train_language,))
    return plan


def _labels(task: Task, tables: dict[tuple[str, str], pd.DataFrame]) -> tuple[str, ...]:
    """The declared label set, or for open tag sets (CCG) the train split's tags in sorted order."""
    spec = get_spec(task.kind)
    if task.labels or not spec.open_labels:
        return task.labels
    train = tables.get((task.name, "train"))
    if train is None:
        raise ConfigError(f"task {task.name!r} takes its label set from its train split, which was not loaded")
    return spec.train_labels(train)


def validate_tasks(task_names: list[str], data: str, out_dir: str | Path, report_html: str | Path,
                   report_md: str | Path, languages: list[str] | None = None, hf_revision: str | None = None,
                   intermediates: list[str] | None = None, task_data: dict[str, str] | None = None,
                   lineage_params: dict | None = None, hf_revisions: dict[str, str] | None = None) -> dict:
    """Load and validate the splits of the target tasks `task_names` (and of `intermediates`); write canonical
    Parquet tables under out_dir/<task>/ and out_dir/manifest.json.

    `languages` restricts the evaluation languages (each target keeps the ones it has); `task_data` gives some
    tasks another data root than `data` (e.g. licensed CCGbank files next to hub data).
    Returns the manifest. Raises DataValidationError on failure — after writing both reports, so the failing run
    still shows what was wrong. `lineage_params` adds to the parameters out_dir/lineage.json records.
    """
    provenance = Provenance("validate", params={"target_tasks": list(task_names), "intermediates": list(intermediates or []),
                                                "languages": list(languages or []), **(lineage_params or {})})
    targets = [get_task(name) for name in dict.fromkeys(task_names)]  # de-duplicated, order kept
    inter = [get_task(name) for name in dict.fromkeys(intermediates or [])]
    plan = _plan(targets, inter, languages)
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    outcomes: list[ExpectationOutcome] = []
    with phase("load"):  # great-expectations: its import and an in-memory context
        context = ephemeral_context()
    manifest = {"source": data, "task_data": dict(task_data or {}), "hf_revision": hf_revision,
                "hf_revisions": dict(hf_revisions or {}), "targets": [t.name for t in targets], "tasks": {}}
    roots, versions = _dvc_roots(data, task_data or {}, list(plan))
    if data in versions:
        manifest["data_version"] = versions[data]
    task_versions = {t: versions[s] for t, s in (task_data or {}).items() if s in versions}
    if task_versions:
        manifest["task_data_versions"] = task_versions
    for name, (splits, eval_languages) in plan.items():
        task = get_task(name)
        with phase("load"):
            for split in splits:
                source = default_source((task_data or {}).get(name, data))
                root = roots.get(source, source)
                try:
                    revision = task.hub.revision_for(name, hf_revisions, hf_revision) if task.hub else None
                    tables[(name, split)] = load_split(task, split, root, task.split_languages(split, eval_languages),
                                                       revision)
                except DataError as e:
                    raise DataError(_trained_on(name, targets, root) + str(e)) from None
        labels = _labels(task, tables)
        manifest["tasks"][name] = {"kind": task.kind, "labels": list(labels), "metric": task.metric,
                                   "languages": list(eval_languages), "train_task": task.data_task,
                                   "role": "target" if task in targets else "intermediate", "splits": {}}
        with phase("compute"):  # the expectations
            for split in splits:
                df = tables[(name, split)]
                outcomes += run_suite(context, df, task, split, task.split_languages(split, eval_languages), labels)
                manifest["tasks"][name]["splits"][split] = {
                    "rows": len(df), "rows_per_language": {k: int(v) for k, v in df["language"].value_counts().sort_index().items()}}
    failed = [o for o in outcomes if not o.success]
    manifest["expectations"] = {"evaluated": len(outcomes), "failed": len(failed)}
    with phase("write"):  # the reports, then (if every expectation holds) the Parquet tables
        _write_reports(outcomes, manifest, report_html, report_md)
        if failed:
            raise DataValidationError(f"data validation failed: {len(failed)} of {len(outcomes)} expectations failed\n"
                                      + "\n".join("  - " + o.describe() for o in failed))
        with atomic_dir(out_dir) as tmp:
            for (task_name, split), df in tables.items():
                (tmp / task_name).mkdir(exist_ok=True)
                keep = [c for c in df.columns if c != SOURCE_ROW and not c.startswith(CHECK_PREFIX)]
                df[keep].to_parquet(tmp / task_name / f"{split}.parquet", index=False)
            write_json(tmp / "manifest.json", manifest)
            sources = [Path(df.attrs["source"]) for df in tables.values() if not data_is_hub(df.attrs.get("source", ""))]
            sources += [p.with_name(p.name.split(".")[0] + PAIRS_SUFFIX) for p in sources]  # retrieval gold pairs
            official = {f"{t}/{s}": df.attrs["official_files"] for (t, s), df in tables.items() if df.attrs.get("official_files")}
            sources += [Path(tables[tuple(key.split("/"))].attrs["official_root"]) / rel
                        for key, files in official.items() for rel in files]  # official release files read
            provenance.data = {"source": data, "task_data": dict(task_data or {}), "hf_revision": hf_revision,
                               "files": source_files(sources), **({"official_files": official} if official else {})}
            for key in ("data_version", "task_data_versions"):
                if key in manifest:
                    provenance.data[key] = manifest[key]
            provenance.record(tmp)
    return manifest


def _trained_on(name: str, targets: list[Task], root: str) -> str:
    """The reason a task's data is needed when only a target that trains on it was asked for (xquad → squad)."""
    users = [t.name for t in targets if t.train_task == name and t.name != name]
    if not users or name in {t.name for t in targets} or str(root).startswith(HUB_PREFIX):
        return ""
    from xstilts.data.official import expectations

    task = get_task(name)
    names = ", ".join(e.shown for split in task.splits for e in expectations(task, split, task.train_language)[:1])
    where = (f"`data` is the single file {root}: point it at a folder holding both tasks' files, or give {name} its "
             f"own root in task_data" if Path(root).is_file() else f"put {name}'s files under {Path(root) / name}/ "
             f"({', '.join(task.splits)} .jsonl/.parquet{', or ' + names if names else ''})")
    return f"{' and '.join(users)} {'trains' if len(users) == 1 else 'train'} on {name}'s English data (train_task): {where}. "


def data_is_hub(source: str) -> bool:
    """Whether a loaded table's `source` names a hub dataset rather than a local file."""
    return not source or not Path(source).is_file()


def _write_reports(outcomes: list[ExpectationOutcome], manifest: dict, report_html, report_md) -> None:
    ok = all(o.success for o in outcomes)
    status = "passed" if ok else "FAILED"
    headers = ["task/split", "expectation", "column", "result", "failed rows", "examples"]
    rows, classes = [], []
    for o in outcomes:
        examples = "; ".join(f"row {e['row']} ({e['id']}): {e['value']!r}" for e in o.examples)
        rows.append([f"{o.task}/{o.split}", o.expectation, o.column, "pass" if o.success else "fail",
                     f"{o.unexpected_count}/{o.element_count}", examples])
        classes.append(["", "", "", "pass" if o.success else "fail", "", ""])
    size_rows = [[f"{t}/{s}", info["rows"], ", ".join(f"{k}:{v}" for k, v in info["rows_per_language"].items())]
                 for t, tinfo in manifest["tasks"].items() for s, info in tinfo["splits"].items()]
    md = (f"# Data validation {status}\n\nSource: `{manifest['source']}` · "
          f"{len(outcomes) - sum(not o.success for o in outcomes)}/{len(outcomes)} expectations met\n\n"
          + markdown_table(["task/split", "rows", "rows per language"], size_rows) + "\n"
          + markdown_table(headers, [r for r, o in zip(rows, outcomes) if not o.success] or [["—", "all expectations met", "", "", "", ""]]))
    body = (f"<p>Source: <code>{esc(str(manifest['source']))}</code> · status: "
            f"<span class=\"{'pass' if ok else 'fail'}\">{status}</span></p><h2>Splits</h2>"
            + html_table(["task/split", "rows", "rows per language"], size_rows)
            + "<h2>Expectations</h2>" + html_table(headers, rows, classes))
    atomic_write_text(report_md, md)
    atomic_write_text(report_html, html_page(f"xstilts data validation — {status}", body))


def default_source(data: str) -> str:
    """Accept `hf` as shorthand for the hub. A `dvc+<repo>?rev=<rev>&path=<path>` source is checked and kept as is
    (validate_tasks fetches it, so the manifest and lineage can record the version)."""
    if dvcdata.is_dvc_source(data):
        dvcdata.parse_source(data)  # a malformed string fails here, naming the expected form
        return data
    return HUB_PREFIX if data in ("hf", "hub", HUB_PREFIX) else data


def _dvc_roots(data: str, task_data: dict[str, str], tasks: list[str]) -> tuple[dict[str, str], dict[str, dict]]:
    """Fetch each DVC source used by `tasks` once: ({source: local root}, {source: data-version record})."""
    roots, versions = {}, {}
    for source in dict.fromkeys(default_source(task_data.get(t, data)) for t in tasks):
        if dvcdata.is_dvc_source(source):
            fetched = dvcdata.fetch_source(source)
            roots[source], versions[source] = fetched["local"], dvcdata.version_record(fetched)
    return roots, versions


def validate_experiment(target_tasks: list[str] | str, conditions: list[str], data: str, out_dir: str | Path,
                        report_html: str | Path, report_md: str | Path, languages: list[str] | None = None,
                        hf_revision: str | None = None, task_data: dict[str, str] | None = None,
                        data_md5: str = "", hf_revisions: dict[str, str] | None = None) -> dict:
    """Step 2: validate every target task and every intermediate task of the experiment's conditions.
    `data_md5`: the run's data md5 from the resolve step, recorded in lineage as the data version's md5."""
    targets = [target_tasks] if isinstance(target_tasks, str) else list(target_tasks)
    for what, values in (("conditions", conditions), ("target_tasks", targets)):
        repeated = sorted({c for c in values if values.count(c) > 1})
        if repeated:  # two branches would train the same model into the same checkpoint directory
            raise ConfigError(f"{what} list {', '.join(repeated)} more than once: {values}")
        if not values:
            raise ConfigError(f"{what} is empty: give at least one")
    not_targets = [t for t in targets if get_task(t).role != "target"]
    if not_targets:
        raise ConfigError(f"{', '.join(not_targets)} {'is' if len(not_targets) == 1 else 'are'} not a cross-lingual "
                          f"target task; targets: {', '.join(t.name for t in all_tasks() if t.role == 'target')}")
    intermediates = [t.name for c in conditions for t in condition_tasks(c)]
    manifest = validate_tasks(targets, default_source(data), out_dir, report_html, report_md, languages, hf_revision,
                              intermediates=intermediates, task_data=task_data,
                              hf_revisions=hf_revisions,
                              lineage_params={"conditions": list(conditions),
                                              **({"hf_revisions": dict(hf_revisions)} if hf_revisions else {}),
                                              **({"data_md5": data_md5} if data_md5 else {})})
    return manifest
