"""What every command group shares: the error console and the XstiltsError → one-line message wrapper."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from xstilts.errors import XstiltsError
from xstilts.io import check_output_dir, replacing_foreign_outputs

console = Console(stderr=True)

PARAMS_HELP = "YAML parameter file (keys as in params.yaml); embedded defaults fill what it omits."


def friendly_errors(func):
    """Turn XstiltsError into `error: <message>` on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except XstiltsError as e:
            console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


FORCE_HELP = ("Replace --out even when it holds files xstilts did not write (never the working, home or root "
              "folder). Without it such a folder is refused; one xstilts wrote is replaced.")


@contextlib.contextmanager
def output_folder(out: Path, force: bool) -> Iterator[None]:
    """Check `--out` before any work is done, and let the command replace a foreign folder under `--force`."""
    with replacing_foreign_outputs() if force else contextlib.nullcontext():
        check_output_dir(out)
        yield
