"""DVC: data.dvc matches the regenerated sample data, and `dvc repro` runs the pipeline's steps without Kubeflow."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")


def dvc(*args, cwd, timeout=600):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    return subprocess.run([DVC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def dvc_project(tmp_path, sample_root):
    shutil.copytree(sample_root.parent, tmp_path / "data")
    for name in ("dvc.yaml", "data.dvc", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "xstilts", tmp_path / "xstilts", ignore=shutil.ignore_patterns("__pycache__"))
    assert dvc("init", "--no-scm", "-q", cwd=tmp_path).returncode == 0
    return tmp_path


def test_data_dvc_tracks_the_bundled_sample(tmp_path, sample_root):
    """The generator reproduces exactly what data.dvc recorded, so a clone without a DVC remote has the same data."""
    project = dvc_project(tmp_path, sample_root)
    (project / "data.dvc").unlink()
    out = dvc("add", "data", cwd=project)
    assert out.returncode == 0, out.stderr
    recorded = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]
    regenerated = yaml.safe_load((project / "data.dvc").read_text())["outs"][0]
    assert regenerated["md5"] == recorded["md5"], "sample data changed: run `make sample-data && dvc add data`"
    assert regenerated["nfiles"] == recorded["nfiles"] == 41


def test_dvc_repro_runs_every_step_and_reuses_unchanged_ones(tmp_path, sample_root):
    project = dvc_project(tmp_path, sample_root)
    fast = {"epochs": 0, "max_steps": 8, "batch_size": 16, "learning_rate": 1e-3, "max_length": 48, "patience": 0}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(target_tasks=["xnli", "tatoeba"], conditions=["none", "sst2"], languages=["en", "fr"],
                  intermediate_train=fast, target_train=fast)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    first = dvc("repro", cwd=project)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for stage in ("validate", "intermediate@none", "intermediate@sst2", "target@sst2-xnli", "target@none-tatoeba",
                  "export@none-xnli", "evaluate@sst2-tatoeba", "report"):
        assert f"Running stage '{stage}'" in first.stdout
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=project).stdout)
    summary = next(iter(metrics.values()))["data"]["outputs/report/summary.json"]["data"]
    # `dvc metrics show` keeps the numeric part of summary.json
    assert set(summary["xtreme_average"]) == {"none", "sst2"} and set(summary["task_average"]) == {"tatoeba", "xnli"}
    again = dvc("repro", cwd=project)
    assert again.returncode == 0 and "Running stage" not in again.stdout  # nothing changed, nothing reruns
