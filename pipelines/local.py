"""Run the compiled-for-Kubeflow pipeline on this machine with kfp.local (SubprocessRunner, no containers)."""

import builtins
import os
import warnings
from pathlib import Path

from xstilts.errors import XstiltsError


LOCAL_PARALLEL_BRANCHES = 2  # kfp.local's orchestrator caps parallel tasks at 2


class PipelineFailed(XstiltsError):
    pass


def run_local(params: dict, workdir: Path) -> Path:
    """Run every step locally; returns the report directory (report.html, report.md, heatmap.png, summary.json).

    Checkpoints go to <workdir>/checkpoints (so a killed run resumes), artifacts to <workdir>/kfp/<run>/.
    """
    from kfp import local

    from pipelines.xstilts import build_pipeline

    workdir = workdir.resolve()
    params = dict(params)

    def absolute(root: str) -> str:  # steps run in other working directories
        return root if root.startswith("hf") or "://" in root else str(Path(root).resolve())

    params["data"] = absolute(params["data"])
    params["task_data"] = {task: absolute(root) for task, root in params["task_data"].items()}
    os.environ.setdefault("XSTILTS_CHECKPOINTS", str(workdir / "checkpoints"))
    # kfp.local runs up to LOCAL_PARALLEL_BRANCHES branches at once; share the cores instead of oversubscribing
    # them (on 2 cores this takes `make run` from ~1m40s to ~1m20s).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // LOCAL_PARALLEL_BRANCHES)))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(workdir / "kfp"),
               raise_on_error=True)
    original_print = builtins.print
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")  # our image is a Python image
        # GPU, resource and kfp-kubernetes settings are for the cluster; kfp.local says so once per task.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
        try:
            run = build_pipeline()(**params)
        except RuntimeError as e:
            raise PipelineFailed(f"the local pipeline failed: {e}. The failing step's log is printed above.") from None
        finally:
            # kfp.local indents subprocess output by swapping builtins.print per task; parallel tasks can restore
            # each other's swapped function, leaving later output indented. Put the real one back.
            builtins.print = original_print
    report_dir = Path(run.outputs["summary"].path)
    latest = workdir / "latest"
    tmp_link = workdir / ".latest.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    tmp_link.symlink_to(report_dir)
    os.replace(tmp_link, latest)
    return report_dir
