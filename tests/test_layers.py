"""The house's layers (.importlinter, README "Layout"): each room of xstilts/ imports only from rooms below it and the
library never imports kfp (import-linter over the real import graph, function-level imports included); the CLI
starts without torch or kfp (a command imports what it needs when it runs); XSTILTS_* variables are read in one
place, xstilts/env.py."""

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "kfp")


def loaded_after(code: str) -> dict:
    """Run `code` in a fresh interpreter; which of HEAVY it left in sys.modules, and what it printed last."""
    script = code + f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def invoke(*args: str) -> str:
    """Code that runs `xstilts ARGS` in-process (typer's CliRunner) and fails unless it exits 0."""
    return ("from typer.testing import CliRunner\nfrom xstilts.cli.main import app\n"
            f"result = CliRunner().invoke(app, {list(args)!r})\n"
            "assert result.exit_code == 0, (result.exit_code, result.output, result.exception)\n")


def test_importing_the_cli_loads_neither_torch_nor_kfp():
    assert loaded_after("import xstilts.cli.main") == {"torch": False, "kfp": False}


@pytest.mark.parametrize("args", [["--help"], ["runs", "--help"]])
def test_help_loads_neither_torch_nor_kfp(args):
    assert loaded_after(invoke(*args)) == {"torch": False, "kfp": False}


def test_every_command_help_works_without_torch_or_kfp():
    walk = ("import typer\nfrom typer.testing import CliRunner\nfrom xstilts.cli.main import app\n"
            "def paths(command, path):\n"
            "    yield path\n"
            "    for name, sub in getattr(command, 'commands', {}).items():\n"
            "        yield from paths(sub, [*path, name])\n"
            "seen = 0\n"
            "for path in paths(typer.main.get_command(app), []):\n"
            "    result = CliRunner().invoke(app, [*path, '--help'])\n"
            "    assert result.exit_code == 0 and 'Usage' in result.output, (path, result.output)\n"
            "    seen += 1\n"
            "assert seen > 25, seen\n")
    assert loaded_after(walk) == {"torch": False, "kfp": False}


def test_tasks_command_does_not_import_torch():
    assert loaded_after(invoke("tasks"))["torch"] is False


def test_xstilts_variables_are_read_only_through_env_module():
    read = re.compile(r"""environ(\.get)?\s*[\[(]\s*["']XSTILTS_|getenv\(\s*["']XSTILTS_""")
    offenders = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                 for folder in ("xstilts", "pipelines", "components") for path in sorted((REPO / folder).rglob("*.py"))
                 if path != REPO / "xstilts" / "env.py"
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if read.search(line)]
    assert offenders == [], "read XSTILTS_* variables through xstilts.env:\n" + "\n".join(offenders)


def test_env_accessors_read_at_call_time(monkeypatch, tmp_path):
    from xstilts import env

    monkeypatch.delenv(env.STEP_CACHE, raising=False)
    assert env.step_cache_dir() is None
    monkeypatch.setenv(env.STEP_CACHE, f" {tmp_path} ")
    assert env.step_cache_dir() == tmp_path
    monkeypatch.setenv(env.NO_PROGRESS, "1")
    assert not env.progress_enabled()
    monkeypatch.setenv(env.NO_PROGRESS, "0")
    assert env.progress_enabled()
    monkeypatch.setenv(env.CACHE, str(tmp_path / "c"))
    assert env.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(env.CHECKPOINTS, raising=False)
    assert env.checkpoints_dir(default=tmp_path / "k") == tmp_path / "k"
    monkeypatch.setenv(env.CHECKPOINTS, str(tmp_path / "ck"))
    assert env.checkpoints_dir(default=tmp_path / "k") == tmp_path / "ck"
    monkeypatch.setenv(env.FORKSERVER, "0")
    assert not env.forkserver_enabled()
    monkeypatch.delenv(env.DVC_REMOTE_ENDPOINT, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws")
    assert env.dvc_remote_endpoint() == "http://aws"
    monkeypatch.setenv(env.DVC_REMOTE_ENDPOINT, "http://minio")
    assert env.dvc_remote_endpoint() == "http://minio"
    assert env.tool_variable("g++") == "XSTILTS_GXX"
    monkeypatch.setenv("XSTILTS_GXX", "/opt/g++")
    assert env.tool_override("g++") == "/opt/g++"


def test_dvc_stages_depend_on_files_that_exist():
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    deps = {dep for stage in stages.values() for dep in (stage.get("do") or stage).get("deps", [])}
    missing = sorted(d for d in deps if d.startswith("xstilts/") and not (REPO / d).exists())
    assert missing == [], f"dvc.yaml names modules that moved: {missing}"


def test_layer_contracts_are_kept(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / ".importlinter"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Contracts: 2 kept, 0 broken." in out


def test_every_room_of_the_package_is_a_layer():
    """A new subpackage must be placed in the layer order, or the contract would not check it."""
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"]
    named = {name.strip() for line in layers.splitlines() for name in line.split("|") if name.strip()}
    rooms = {f"xstilts.{p.name}" for p in (REPO / "xstilts").iterdir() if (p / "__init__.py").exists()}
    modules = {f"xstilts.{p.stem}" for p in (REPO / "xstilts").glob("*.py") if p.stem != "__init__"}
    assert rooms | modules <= named, sorted((rooms | modules) - named)
