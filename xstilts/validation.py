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

from .data import HUB_PREFIX, SOURCE_ROW, load_split
from .errors import ConfigError, DataValidationError
from .fsutil import atomic_dir, atomic_write_text, write_json
from .render import esc, html_page, html_table, markdown_table
from .tasks import Task, check_languages, get_task

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


def build_suite(task: Task, languages: tuple[str, ...]):
    """The expectations a canonical split must meet, derived from the task's declaration."""
    import great_expectations.expectations as gxe  # 3 s import: keep it off the CLI's start-up path

    expectations = [gxe.ExpectColumnToExist(column=c) for c in ("id", "language", "text_a", "label")]
    text_columns = ["text_a", "text_b"] if task.is_pair else ["text_a"]
    if task.is_pair:
        expectations.append(gxe.ExpectColumnToExist(column="text_b"))
    for col in text_columns:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=col))
        expectations.append(gxe.ExpectColumnValueLengthsToBeBetween(column=col, min_value=1, max_value=task.max_text_chars))
    expectations += [
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(task.labels)),
        gxe.ExpectColumnValuesToBeInSet(column="language", value_set=list(languages)),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
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


def run_suite(context, df: pd.DataFrame, task: Task, split: str, languages: tuple[str, ...]) -> list[ExpectationOutcome]:
    import great_expectations as gx

    batch_definition = (context.data_sources.get("xstilts")
                        .add_dataframe_asset(f"{task.name}-{split}")
                        .add_batch_definition_whole_dataframe("all-rows"))
    suite = context.suites.add(gx.ExpectationSuite(name=f"{task.name}-{split}", expectations=build_suite(task, languages)))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        column = cfg.kwargs.get("column", "")
        indices = r.result.get("unexpected_index_list") or []
        examples = [{"row": int(df.at[i, SOURCE_ROW]), "id": str(df.at[i, "id"]), "value": _plain(df.at[i, column])}
                    for i in indices[:MAX_EXAMPLES] if column in df]
        outcomes.append(ExpectationOutcome(task.name, split, df.attrs.get("source", ""), cfg.type, column, bool(r.success),
                                           int(r.result.get("unexpected_count") or 0),
                                           int(r.result.get("element_count") or len(df)), examples))
    return outcomes


def _plain(value):
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def validate_tasks(task_names: list[str], data: str, out_dir: str | Path, report_html: str | Path,
                   report_md: str | Path, languages: list[str] | None = None, hf_revision: str | None = None) -> dict:
    """Load and validate every split of every task; write canonical Parquet tables under out_dir/<task>/.

    `languages` restricts the evaluation languages of tasks that have a test split.
    Returns the summary written to out_dir/manifest.json. Raises DataValidationError on failure — after writing
    both reports, so the failing run still shows what was wrong.
    """
    tasks = [get_task(name) for name in dict.fromkeys(task_names)]  # de-duplicated, order kept
    tables: dict[tuple[str, str], pd.DataFrame] = {}
    outcomes: list[ExpectationOutcome] = []
    context = ephemeral_context()
    manifest = {"source": data, "hf_revision": hf_revision, "tasks": {}}
    for task in tasks:
        eval_languages = check_languages(task, languages) if "test" in task.splits else task.languages
        manifest["tasks"][task.name] = {"kind": task.kind, "labels": list(task.labels), "metric": task.metric,
                                        "languages": list(eval_languages), "splits": {}}
        for split in task.splits:
            split_langs = task.split_languages(split, eval_languages)
            df = load_split(task, split, data, split_langs, hf_revision)
            outcomes += run_suite(context, df, task, split, split_langs)
            tables[(task.name, split)] = df
            manifest["tasks"][task.name]["splits"][split] = {
                "rows": len(df), "rows_per_language": {k: int(v) for k, v in df["language"].value_counts().sort_index().items()}}
    failed = [o for o in outcomes if not o.success]
    manifest["expectations"] = {"evaluated": len(outcomes), "failed": len(failed)}
    _write_reports(outcomes, manifest, report_html, report_md)
    if failed:
        raise DataValidationError(f"data validation failed: {len(failed)} of {len(outcomes)} expectations failed\n"
                                  + "\n".join("  - " + o.describe() for o in failed))
    with atomic_dir(out_dir) as tmp:
        for (task_name, split), df in tables.items():
            (tmp / task_name).mkdir(exist_ok=True)
            df.drop(columns=[SOURCE_ROW]).to_parquet(tmp / task_name / f"{split}.parquet", index=False)
        write_json(tmp / "manifest.json", manifest)
    return manifest


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
    """Accept `hf` as shorthand for the hub."""
    return HUB_PREFIX if data in ("hf", "hub", HUB_PREFIX) else data


def validate_experiment(target_task: str, conditions: list[str], data: str, out_dir: str | Path, report_html: str | Path,
                        report_md: str | Path, languages: list[str] | None = None, hf_revision: str | None = None) -> dict:
    """Step 1: validate the target task and every intermediate task of the experiment's conditions."""
    repeated = sorted({c for c in conditions if conditions.count(c) > 1})
    if repeated:  # two branches would train the same model into the same checkpoint directory
        raise ConfigError(f"conditions list {', '.join(repeated)} more than once: {conditions}")
    tasks = [target_task] + [c for c in conditions if c != "none"]
    return validate_tasks(tasks, default_source(data), out_dir, report_html, report_md, languages, hf_revision)
