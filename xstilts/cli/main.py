"""The `xstilts` command line: one Typer app composed of command groups, one module each.

Errors from bad input print one clear message and exit non-zero, without a traceback. Each command imports what it
needs when it runs, so `xstilts tasks` or `xstilts runs --help` never import torch, and only the Kubeflow commands
(`cli/kfp.py`) import kfp.
"""

from __future__ import annotations

import typer

from xstilts.cli import artifacts, bench, code, data, kfp, ops, score, steps

app = typer.Typer(help="xstilts: English intermediate-task training for zero-shot cross-lingual transfer.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
# `xstilts --help` lists commands in this order (the order they had before the groups were split into modules).
app.add_typer(data.app)  # tasks, validate, sample-data
app.add_typer(ops.app)  # promote, preflight
app.add_typer(code.app)  # code-eval, generate
app.add_typer(kfp.app)  # run, compile, upload, submit, schedule, runs, lineage
app.add_typer(steps.app, name="step")  # step validate|intermediate|target|export|evaluate|report|promote
app.add_typer(artifacts.app, name="artifacts")  # artifacts push|pull
app.add_typer(bench.app, name="bench")  # bench eval|train
app.add_typer(score.app)  # score PREDICTIONS_DIR, compare RUN_A RUN_B


def main() -> None:
    app()


if __name__ == "__main__":
    main()
