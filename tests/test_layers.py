"""The house's layer rule (.importlinter, README "Layout"): each room of xstilts/ imports only from rooms below it,
and the library never imports kfp. Checked with import-linter over the real import graph (function-level imports
included)."""

from __future__ import annotations

import configparser
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_layer_contracts_are_kept(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Contracts: 2 kept, 0 broken." in out


def test_every_room_of_the_package_is_a_layer():
    """A new subpackage must be placed in the layer order, or the contract would not check it."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"]
    named = {name.strip() for line in layers.splitlines() for name in line.split("|") if name.strip()}
    rooms = {f"xstilts.{p.name}" for p in (ROOT / "xstilts").iterdir() if (p / "__init__.py").exists()}
    modules = {f"xstilts.{p.stem}" for p in (ROOT / "xstilts").glob("*.py") if p.stem != "__init__"}
    assert rooms | modules <= named, sorted((rooms | modules) - named)
