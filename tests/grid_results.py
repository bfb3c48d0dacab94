"""Zero-shot results as an eval step writes them (results.json and predictions/<task>/<language>.jsonl), for report,
gather, promotion and compare tests: each language's per-example scores average to exactly its score."""

import json
from pathlib import Path

from xstilts.kinds.base import QA, TAGGING
from xstilts.tasks.registry import get_task

EXAMPLES = 100  # per language: scores with two decimals are exact means of 0/1 examples


def example_rows(task: str, score: float, n: int = EXAMPLES, flips: tuple[int, ...] = ()) -> list[dict]:
    """n rows of 0/1 scores whose mean is `score` (rounded to 1/n); `flips`: example numbers whose score is inverted
    (the mean moves), to make two systems differ on chosen examples."""
    kind = get_task(task).kind
    correct = round(score * n)
    rows = []
    for i in range(n):
        value = float((i < correct) != (i in flips))
        row = {"id": f"{task}-{i}", "prediction": "a" if value else "b", "gold": "a", "score": value}
        if kind == QA:
            row.update(prediction="x" if value else "y", gold=["x"], exact_match=value, f1=value)
        if kind == TAGGING:
            row.update(prediction=["B-PER"] if value else ["O"], gold=["B-PER"], counts=[int(value), int(value), 1])
        rows.append(row)
    return rows


def write_result(folder: Path, task: str, condition: str, scores: dict, metric: str = "accuracy",
                 seed: int | None = 1, n: int = EXAMPLES, flips: dict | None = None) -> Path:
    """folder/results.json and folder/predictions/<task>/<language>.jsonl; returns folder."""
    folder.mkdir(parents=True)
    rows = {lang: example_rows(task, s, n, (flips or {}).get(lang, ())) for lang, s in scores.items()}
    exact = {lang: sum(r["score"] for r in rs) / n for lang, rs in rows.items()}
    if get_task(task).kind == TAGGING:
        exact = {lang: 2 * sum(r["counts"][0] for r in rs) / sum(r["counts"][1] + r["counts"][2] for r in rs)
                 for lang, rs in rows.items()}
    result = {"task": task, "kind": get_task(task).kind, "condition": condition, "seed": seed, "metric": metric,
              "provider": "CPUExecutionProvider", "scores": exact, "examples": {lang: n for lang in scores}}
    (folder / "results.json").write_text(json.dumps(result))
    predictions = folder / "predictions" / task
    predictions.mkdir(parents=True)
    (predictions / "metric.json").write_text(json.dumps({"task": task, "kind": result["kind"], "metric": metric,
                                                         "languages": list(scores)}))
    for lang, language_rows in rows.items():
        (predictions / f"{lang}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in language_rows))
    return folder
