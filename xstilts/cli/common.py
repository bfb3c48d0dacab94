"""What every command group shares: the error console and the XstiltsError → one-line message wrapper."""

from __future__ import annotations

import functools

import typer
from rich.console import Console

from xstilts.errors import XstiltsError

console = Console(stderr=True)

PARAMS_HELP = "YAML parameter file (keys as in params.yaml); embedded defaults fill what it omits."


def friendly_errors(func):
    """Turn XstiltsError into `error: <message>` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except XstiltsError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
