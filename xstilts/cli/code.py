"""`xstilts code-eval` and `xstilts generate`: sandboxed execution of code samples, and sampling from an
exported causal LM."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
import typer
from xstilts.config import split_csv
from xstilts.cli.common import FORCE_HELP, friendly_errors, output_folder

app = typer.Typer()


@app.command("code-eval")
@friendly_errors
def code_eval_command(
        problems: Optional[Path] = typer.Option(None, "--problems", help="HumanEval/MBXP JSONL: task_id, prompt, "
                                                "test, entry_point, language [, canonical_solution]."),
        samples: Optional[Path] = typer.Option(None, "--samples", help="JSONL of task_id, completion (n per "
                                               "problem for pass@k with k <= n)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Output folder: samples.jsonl, problems.jsonl, "
                                           "pass_at_k.json, pass_at_k.md (written whole or not at all)."),
        k: str = typer.Option("1,10", "--k", help="Comma-separated k values for pass@k (k > n is reported skipped)."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Programs run in parallel "
                                              "(default: CPU count)."),
        timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Wall-clock seconds per program run "
                                      "(CPU limit: the same, +1 s)."),
        compile_timeout: float = typer.Option(60.0, "--compile-timeout", min=0.1, help="Seconds per compilation."),
        memory_mb: int = typer.Option(512, "--memory-mb", min=16, help="Memory per program (MB)."),
        allow_no_isolation: bool = typer.Option(False, "--allow-no-isolation", help="Run with resource limits "
                                                "only where namespaces (bwrap) are unavailable. Only inside an "
                                                "already isolated environment."),
        typescript_mode: str = typer.Option("strict", "--typescript-mode", help="TypeScript type checking: "
                                            "`strict` (type errors are compile errors) or `mxeval-compatible` (run "
                                            "the JavaScript tsc emits despite type errors, as mxeval does)."),
        compilation: str = typer.Option("batched", "--compilation", help="`batched`: Java, TypeScript and Go "
                                        "programs compiled many to a compiler process, C++ with a shared precompiled "
                                        "header; `naive`: one compiler process per program, as mxeval does. Same "
                                        "results; each program runs in its own sandbox either way."),
        bench: bool = typer.Option(False, "--bench", help="Print throughput (programs/s) on the built-in fixture "
                                   "problems instead of evaluating files: batched and naive compilation, in the same "
                                   "run, and their ratio."),
        bench_languages: str = typer.Option("python,cpp", "--bench-languages", help="Languages for --bench."),
        bench_programs: int = typer.Option(24, "--bench-programs", min=1, help="Programs per language for --bench."),
        force: bool = typer.Option(False, "--force", help=FORCE_HELP)):
    """Run generated code in a sandbox (Python, JavaScript, TypeScript, Java, C++, Go) and report pass@k per
    problem and per language."""
    from xstilts.codeexec import harness as ce
    from xstilts.config import TYPESCRIPT_MODES

    if typescript_mode not in TYPESCRIPT_MODES:
        raise typer.BadParameter(f"{typescript_mode!r}: expected one of {', '.join(TYPESCRIPT_MODES)}",
                                 param_hint="--typescript-mode")
    if compilation not in ce.COMPILATIONS:
        raise typer.BadParameter(f"{compilation!r}: expected one of {', '.join(ce.COMPILATIONS)}",
                                 param_hint="--compilation")
    if bench:
        from xstilts.bench.codeeval import bench as bench_code_eval
        from xstilts.bench.codeeval import table
        from xstilts.codeexec.languages import get_language

        languages = tuple(split_csv(bench_languages))
        for language in languages:
            get_language(language)  # an unknown one is an error before anything runs
        print(table(bench_code_eval(languages, programs=bench_programs, workers=workers,
                                    allow_no_isolation=allow_no_isolation)), end="")
        return
    for value, flag in ((problems, "--problems"), (samples, "--samples"), (out, "--out")):
        if value is None:
            raise typer.BadParameter("required (unless --bench)", param_hint=flag)
    with output_folder(out, force):
        evaluation = ce.code_eval(problems, samples, out, ks=ce.parse_ks(k), workers=workers, timeout_s=timeout,
                                  compile_timeout_s=compile_timeout, memory_mb=memory_mb,
                                  allow_no_isolation=allow_no_isolation, typescript_mode=typescript_mode,
                                  compilation=compilation)
    print(ce.markdown_table(evaluation), end="")
    print(f"results: {out}")


@app.command()
@friendly_errors
def generate(model: Path = typer.Option(..., "--model", help="An exported causal model (the export step's "
                                        "onnx_model/ of a generation task: model.onnx with a KV cache, task.json)."),
             problems: Path = typer.Option(..., "--problems", help="HumanEval/MBXP problems JSONL (task_id, prompt, "
                                           "language), or a validated dataset folder (its --task test split)."),
             out: Path = typer.Option(..., "--out", help="Output folder: samples.jsonl (code-eval format), "
                                      "problems.jsonl, generation.json (written whole or not at all)."),
             task: Optional[str] = typer.Option(None, "--task", help="Dataset folder only: the generation task "
                                                "(default: the model's)."),
             n: int = typer.Option(1, "--n", help="Samples per problem (n > 1 needs --temperature > 0)."),
             temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy; > 0 samples."),
             top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling: keep the most likely tokens up to "
                                         "this probability mass (1 = all)."),
             max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Tokens generated per sample at most."),
             seed: int = typer.Option(0, "--seed", help="Sampling seed (each problem and sample has its own stream)."),
             batch_size: int = typer.Option(16, "--batch-size", help="Samples decoded together (left-padded)."),
             languages: Optional[str] = typer.Option(None, "--languages", help="Only problems of these task "
                                                     "languages, comma-separated (e.g. de,fr or python,go)."),
             force: bool = typer.Option(False, "--force", help=FORCE_HELP)):
    """Generate code completions with an exported causal LM on onnxruntime, reusing its KV cache, cut at each
    programming language's stop sequences; then score them with `xstilts code-eval --problems OUT/problems.jsonl
    --samples OUT/samples.jsonl`."""
    from xstilts.evaluate.generate import generate_samples

    with output_folder(out, force):
        summary = generate_samples(model, problems, out, n=n, temperature=temperature, top_p=top_p,
                                   max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size, task=task,
                                   languages=split_csv(languages) if languages else None)
    print(f"{summary['samples']} samples for {summary['problems']} problems ({summary['generated_tokens']} tokens, "
          f"{summary['tokens_per_second']} tokens/s, {summary['provider']}): {out / 'samples.jsonl'}")
