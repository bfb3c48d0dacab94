"""Step 6: zero-shot evaluation of the ONNX model in onnxruntime over every evaluation language's test split, with
the task kind's decoding and metric (accuracy, QA (EM+F1)/2, seqeval F1, BUCC F1, Tatoeba accuracy)."""

from __future__ import annotations

import time
from pathlib import Path
import numpy as np
from tqdm.auto import tqdm
from xstilts import env
from xstilts.progress import Progress, phase
from xstilts.data.load import read_split
from xstilts.errors import ConfigError
from xstilts.io import atomic_copy, atomic_dir, atomic_write_text, read_json, read_jsonl, write_json
from xstilts.io import html_page, html_table, markdown_table
from xstilts.kinds import base as kinds
from xstilts.evaluate import predictions
from xstilts.config import Settings
from xstilts.provenance import Provenance
from xstilts.kinds.base import GENERATION, RETRIEVAL
from xstilts.tasks.registry import get_task
from xstilts.evaluate.runtime import make_session, onnx_runner
from xstilts.config import generation_settings


# Code generation targets: n completions per problem on onnxruntime, each executed in the sandbox; scores are pass@k.
def code_generation_eval(onnx_dir: Path, dataset_dir: str | Path, out_dir: str | Path, condition: str | None,
                         generation: dict | None, html_path, md_path, provenance: Provenance) -> dict:
    """Generate completions for the task's test problems, execute them in the sandbox, and score pass@k per task
    language (MBXP: programming language; HumanEval-XL: the prompt's natural language). Scores are pass@{k[0]}."""
    from xstilts.codeexec.harness import code_eval, pass_at_k
    from xstilts.codeexec.languages import ToolchainUnavailableError
    from xstilts.evaluate.generate import generate_samples

    settings = generation_settings(generation)
    meta = read_json(onnx_dir / "task.json")
    task = get_task(meta["task"])
    manifest = read_json(Path(dataset_dir) / "manifest.json")
    if task.name not in manifest["tasks"]:
        raise ConfigError(f"task {task.name!r} is not in the validated dataset {dataset_dir}")
    languages = manifest["tasks"][task.name]["languages"]
    provenance.params.update({"condition": condition, "generation": settings})
    started = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        with phase("compute"):  # generation (on its own onnxruntime session) and execution in the sandbox
            generated = generate_samples(onnx_dir, dataset_dir, tmp / "generation", n=settings["n"],
                                         temperature=settings["temperature"], top_p=settings["top_p"],
                                         max_new_tokens=settings["max_new_tokens"], seed=settings["seed"],
                                         batch_size=settings["batch_size"], task=task.name, languages=languages,
                                         min_new_tokens=settings["min_new_tokens"])
            executed = code_eval(tmp / "generation" / "problems.jsonl", tmp / "generation" / "samples.jsonl",
                                 tmp / "execution", ks=settings["k"], timeout_s=settings["timeout_s"],
                                 memory_mb=settings["memory_mb"], allow_no_isolation=settings["allow_no_isolation"],
                                 typescript_mode=settings["typescript_mode"],
                                 desc=f"execute {task.name}")
        unavailable = {lang: row["unavailable"] for lang, row in executed.languages.items() if not row["available"]}
        if unavailable:  # a broken toolchain must not read as a model scoring 0
            raise ToolchainUnavailableError("; ".join(unavailable.values()) + " (see `xstilts code-eval --help` "
                                            "and `make toolchains`)")
        task_language = {row["task_id"]: row["task_language"]
                         for row in read_jsonl(tmp / "generation" / "problems.jsonl")}
        scores, details, counts, per_example = {}, {}, {}, {}
        for lang in languages:
            rows = [r for r in executed.problems if task_language[r["task_id"]] == lang]
            per_example[lang] = predictions.generation_rows(rows, executed.samples)
            if not rows:
                raise ConfigError(f"{task.name}: no test problems in language {lang!r}")
            details[lang] = {f"pass@{k}": float(np.mean([pass_at_k(r["n"], r["correct"], k) for r in rows]))
                             for k in settings["k"]}
            details[lang]["passed_samples"] = sum(r["correct"] for r in rows)
            scores[lang] = details[lang][f"pass@{settings['k'][0]}"]
            counts[lang] = len(rows)
        average = float(np.mean(list(scores.values())))
        metric = f"pass@{settings['k'][0]}"
        results = {"task": task.name, "kind": task.kind, "condition": condition, "seed": meta.get("seed"),
                   "metric": metric,
                   "provider": generated["provider"], "scores": scores, "details": details, "average": average,
                   "examples": counts, "eval_seconds": round(time.perf_counter() - started, 3),
                   "generation": {k: generated[k] for k in ("samples", "stopped", "generated_tokens",
                                                            "tokens_per_second")},
                   "sandbox": executed.settings.get("isolation", {})}
        parts = [f"pass@{k}" for k in settings["k"]] + ["passed_samples"]
        headers = ["language"] + parts + ["problems"]
        rows = [[lang] + [details[lang][p] for p in parts] + [counts[lang]] for lang in languages]
        rows.append(["average", *[float(np.mean([details[lang][p] for lang in languages])) for p in parts[:-1]],
                     sum(details[lang]["passed_samples"] for lang in languages), sum(counts.values())])
        title = f"Zero-shot {metric}: {task.name} ({condition or 'model'})"
        note = (f"{settings['n']} sample(s) per problem, temperature {settings['temperature']}, executed in the "
                f"sandbox ({results['sandbox'].get('mode', '?')}); onnxruntime provider `{generated['provider']}`")
        with phase("write"):
            write_json(tmp / "results.json", results)
            predictions.write_predictions(tmp, task, per_example, k=settings["k"], metric=metric)
            atomic_write_text(tmp / "results.md", f"# {title}\n\n{note}\n\n" + markdown_table(headers, rows))
            atomic_write_text(tmp / "results.html", html_page(title, f"<p>{note.replace('`', '')}</p>"
                                                              + html_table(headers, rows)))
        provenance.record(tmp)
    for src, dest in (("results.html", html_path), ("results.md", md_path)):
        if dest:
            atomic_copy(Path(out_dir) / src, dest)
    return results


def zero_shot_eval(onnx_dir: str | Path, dataset_dir: str | Path, out_dir: str | Path, condition: str | None = None,
                   batch_size: int = 64, html_path: str | Path | None = None, md_path: str | Path | None = None,
                   generation: dict | None = None) -> dict:
    """The task's metric per evaluation language and their average; writes results.json, results.md, results.html.
    Code generation tasks: `generation` settings (GENERATION_DEFAULTS) for sampling, pass@k and the sandbox."""
    from transformers import AutoTokenizer

    provenance = Provenance("evaluate", {"onnx_model": onnx_dir, "dataset": dataset_dir},
                            {"condition": condition, "batch_size": batch_size})
    onnx_dir = Path(onnx_dir)
    if not (onnx_dir / "task.json").exists():
        raise ConfigError(f"{onnx_dir} is not an exported model (no task.json): run the export step first")
    meta = read_json(onnx_dir / "task.json")
    task = get_task(meta["task"])
    if task.kind == GENERATION:
        return code_generation_eval(onnx_dir, dataset_dir, out_dir, condition if condition is not None
                                    else meta.get("condition"), generation, html_path, md_path, provenance)
    with phase("load"):  # the test split, the tokenizer, the onnxruntime session
        labels = tuple(meta["labels"])
        manifest = read_json(Path(dataset_dir) / "manifest.json")
        if task.name not in manifest["tasks"]:
            raise ConfigError(f"task {task.name!r} is not in the validated dataset {dataset_dir}")
        if task.kind != RETRIEVAL and list(labels) != manifest["tasks"][task.name]["labels"]:
            raise ConfigError(f"{onnx_dir}/task.json labels {list(labels)} differ from the dataset's "
                              f"{manifest['tasks'][task.name]['labels']} for task {task.name!r}")
        condition = condition if condition is not None else meta.get("condition")
        settings = Settings(**meta["settings"])
        test = read_split(dataset_dir, task.name, "test")
        languages = manifest["tasks"][task.name]["languages"]
        tokenizer = AutoTokenizer.from_pretrained(onnx_dir)
        session, provider = make_session(onnx_dir / "model.onnx")
        run = onnx_runner(session)
    with phase("compute"):
        scores, details, counts, per_example = {}, {}, {}, {}
        started = time.perf_counter()
        position = Progress("eval", len(languages))
        for lang in tqdm(languages, desc=f"zero-shot {task.name}", unit="language",
                         disable=not env.progress_enabled()):
            df = test[test["language"] == lang].reset_index(drop=True)
            if task.kind == RETRIEVAL:
                embeddings = kinds.embed(run, df["text_a"].tolist(), tokenizer, settings, batch_size)
                result = kinds.retrieval_score(task, df, embeddings)
                counts[lang] = int((df["side"] == "source").sum())
                per_example[lang] = predictions.retrieval_rows(task, df, embeddings, result)
            else:
                predicted = kinds.predict(run, task, labels, df, tokenizer, settings, batch_size)
                result = kinds.score(task, df, predicted, lang)
                counts[lang] = len(df)
                per_example[lang] = predictions.label_rows(task, df, predicted, lang)
            scores[lang] = float(result.pop("score"))
            details[lang] = result
            position.advance()
        seconds = time.perf_counter() - started
        average = float(np.mean(list(scores.values())))
        results = {"task": task.name, "kind": task.kind, "condition": condition, "seed": meta.get("seed"),
                   "metric": task.metric, "provider": provider,
                   "scores": scores, "details": details, "average": average, "examples": counts,
                   "eval_seconds": round(seconds, 3)}
        parts = sorted({k for d in details.values() for k in d})
        headers = ["language", task.metric] + parts + ["examples"]
        rows = [[lang, scores[lang]] + [details[lang].get(p, "") for p in parts] + [counts[lang]] for lang in languages]
        rows.append(["average", average] + [""] * len(parts) + [sum(counts.values())])
        title = f"Zero-shot {task.metric}: {task.name} ({condition or 'model'})"
    with phase("write"):
        with atomic_dir(out_dir) as tmp:
            write_json(tmp / "results.json", results)
            predictions.write_predictions(tmp, task, per_example)
            atomic_write_text(tmp / "results.md", f"# {title}\n\nonnxruntime provider: `{provider}`\n\n"
                              + markdown_table(headers, rows))
            atomic_write_text(tmp / "results.html", html_page(title, f"<p>onnxruntime provider: <code>{provider}</code></p>"
                                                              + html_table(headers, rows)))
            provenance.record(tmp)
        for src, dest in (("results.html", html_path), ("results.md", md_path)):
            if dest:  # KFP's HTML/Markdown artifacts are single files
                atomic_copy(Path(out_dir) / src, dest)
    return results
