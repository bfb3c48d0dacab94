"""Training across nodes: submit a Kubeflow Trainer v2 TrainJob through the `kubeflow` SDK, wait, stream its logs,
and raise when it fails.

The TrainJob runs our own image and command on `num_nodes` nodes of the `torch-distributed` runtime, which sets
torchrun's PET_* variables (nodes, processes per node, rendezvous), so the command is simply
`torchrun --no-python xstilts step intermediate ...` (see `torchrun_command`): the same data-parallel loop as in one
pod (xstilts/train/distributed.py). Nodes and the launcher share files through the model-cache PVC (`shared_pvc`).

`backend="local"` runs the command through the SDK's local process backend instead (no cluster): what the tests use.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
import yaml
from xstilts.errors import XstiltsError
from xstilts.io import atomic_dir, read_json


COMPLETE, FAILED, RUNNING = "Complete", "Failed", "Running"  # kubeflow.trainer.constants' TrainJob statuses
BACKENDS = ("kubernetes", "local")
NODE_CONTAINER = "node"  # the trainer container and replicated job of the torch-distributed runtime


class TrainJobError(XstiltsError):
    """The TrainJob could not be submitted, failed, or did not finish in time."""


@dataclass(frozen=True)
class TrainJobSettings:
    image: str = ""  # the training image (kubernetes backend; the runtime's default when empty)
    num_nodes: int = 1
    resources_per_node: dict = field(default_factory=dict)  # e.g. {"gpu": 8, "cpu": 32, "memory": "512Gi"}
    runtime: str = "torch-distributed"
    namespace: str = ""  # kubernetes backend; empty: the current context's (in a pod: its own namespace)
    shared_pvc: str = ""  # mounted at `shared_mount` on every node (datasets in, models out)
    shared_mount: str = "/mnt/cache"  # the pipeline's model-cache mount (ClusterSettings.cache_mount)
    env: dict = field(default_factory=dict)
    timeout_s: int = 7 * 24 * 3600
    poll_s: int = 10
    backend: str = "kubernetes"


def torchrun_command(step_args: list[str]) -> list[str]:
    """`xstilts <step_args>` under torchrun, which takes nodes and processes per node from the TrainJob's PET_* env."""
    return ["torchrun", "--no-python", "xstilts", *step_args]


def _run_command(args: dict) -> None:
    """The local backend's training function: it runs in a bare venv, so it only starts our command (which
    brings its own interpreter) and passes its exit code on. Self-contained: the SDK copies its source."""
    import subprocess
    import sys

    sys.exit(subprocess.run(args["command"], check=False).returncode)


def _client_and_trainer(command: list[str], settings: TrainJobSettings):
    from kubeflow.trainer import (CustomTrainer, CustomTrainerContainer, KubernetesBackendConfig,
                                  LocalProcessBackendConfig, TrainerClient)
    from kubeflow.trainer.options import (ContainerPatch, JobSetSpecPatch, JobSetTemplatePatch, JobSpecPatch,
                                          JobTemplatePatch, PodSpecPatch, PodTemplatePatch, ReplicatedJobPatch,
                                          RuntimePatch, TrainerCommand, TrainingRuntimeSpecPatch)

    if settings.backend == "local":
        client = TrainerClient(LocalProcessBackendConfig())
        # The local runtime would start the function with torchrun from a fresh, empty venv (installing torch from
        # an index first); our command starts torchrun itself, so the function runs under the venv's plain python.
        runtime = copy.deepcopy(client.get_runtime(settings.runtime))
        runtime.trainer.framework = "python"
        env = {**os.environ, **settings.env}  # the local backend starts the job with exactly this environment
        trainer = CustomTrainer(func=_run_command, func_args={"command": command}, env=env)
        return client, runtime, trainer, []
    client = TrainerClient(KubernetesBackendConfig(namespace=settings.namespace or None))
    trainer = CustomTrainerContainer(image=settings.image or None, num_nodes=settings.num_nodes,
                                     resources_per_node=settings.resources_per_node or None,
                                     env=settings.env or None)
    options = [TrainerCommand(command=command)]
    if settings.shared_pvc:
        pod = PodSpecPatch(volumes=[{"name": "shared", "persistentVolumeClaim": {"claimName": settings.shared_pvc}}],
                           containers=[ContainerPatch(name=NODE_CONTAINER, volume_mounts=[
                               {"name": "shared", "mountPath": settings.shared_mount}])])
        node = ReplicatedJobPatch(name=NODE_CONTAINER, template=JobTemplatePatch(
            spec=JobSpecPatch(template=PodTemplatePatch(spec=pod))))
        options.append(RuntimePatch(training_runtime_spec=TrainingRuntimeSpecPatch(
            template=JobSetTemplatePatch(spec=JobSetSpecPatch(replicated_jobs=[node])))))
    return client, settings.runtime, trainer, options


def launch_trainjob(command: list[str], settings: TrainJobSettings = TrainJobSettings(), log=None) -> dict:
    """Submit `command` as a TrainJob, wait for it, stream node 0's logs to `log` (default: stdout), delete the job,
    and return {"name", "status", "num_nodes"}; raise TrainJobError with the log's tail when it fails."""
    if settings.backend not in BACKENDS:
        raise TrainJobError(f"TrainJob backend must be one of {', '.join(BACKENDS)}, got {settings.backend!r}")
    if settings.num_nodes < 1:
        raise TrainJobError(f"TrainJob num_nodes must be >= 1, got {settings.num_nodes}")
    if not command:
        raise TrainJobError("TrainJob command is empty")
    log = log or (lambda line: print(line, flush=True))
    local = settings.backend == "local"
    try:
        client, runtime, trainer, options = _client_and_trainer(command, settings)
        name = client.train(runtime=runtime, trainer=trainer, options=options or None)
    except (ValueError, RuntimeError, TimeoutError) as e:
        raise TrainJobError(f"could not submit the TrainJob ({settings.backend} backend, runtime "
                            f"{settings.runtime}): {e}") from e
    print(f"TrainJob {name}: {settings.num_nodes} node(s), runtime {settings.runtime}", file=sys.stderr, flush=True)
    lines: list[str] = []
    try:
        client.wait_for_job_status(name, {RUNNING, COMPLETE, FAILED}, timeout=settings.timeout_s,
                                   polling_interval=settings.poll_s)
        for chunk in client.get_job_logs(name, follow=True):
            for line in str(chunk).splitlines():
                lines.append(line)
                if not local:  # the local backend echoes its output itself
                    log(line)
        job = client.wait_for_job_status(name, {COMPLETE, FAILED}, timeout=settings.timeout_s,
                                         polling_interval=settings.poll_s)
    except TimeoutError as e:
        raise TrainJobError(f"TrainJob {name} did not finish within {settings.timeout_s} s") from e
    finally:
        try:
            client.delete_job(name)
        except (ValueError, RuntimeError, TimeoutError) as e:  # already gone; nothing to clean up
            print(f"TrainJob {name}: not deleted ({e})", file=sys.stderr)
    if job.status != COMPLETE:
        tail = "\n".join(lines[-20:])
        raise TrainJobError(f"TrainJob {name} {job.status.lower()} (command: {' '.join(command)}); "
                            f"last log lines:\n{tail}")
    return {"name": name, "status": job.status, "num_nodes": settings.num_nodes}


def intermediate_trainjob(condition: str, dataset_dir: str | Path, model_name: str, out_dir: str | Path, config,
                          model_revision: str | None = None, settings: TrainJobSettings = TrainJobSettings(),
                          shared_root: str | Path | None = None) -> dict:
    """Step 3 (intermediate fine-tune, `xstilts step intermediate`) as a TrainJob across `settings.num_nodes` nodes.

    The nodes cannot see this pod's artifact paths, so the dataset goes to a fresh folder on the shared volume
    (`shared_root`, default `<shared_mount>/trainjobs`), the job writes the model there, and it is moved to
    `out_dir`. Returns the training metrics (training.json) plus the TrainJob's name. The `none` condition trains
    nothing, so it passes the pretrained model through here, without a TrainJob."""
    from xstilts.tasks.registry import condition_tasks
    from xstilts.train.finetune import intermediate_finetune

    if not condition_tasks(condition):
        return {**intermediate_finetune(condition, dataset_dir, model_name, out_dir, config, model_revision),
                "trainjob": None, "num_nodes": 0}
    work = Path(shared_root or Path(settings.shared_mount) / "trainjobs") / f"{condition}-{uuid.uuid4().hex[:12]}"
    try:
        shutil.copytree(dataset_dir, work / "dataset")
        (work / "params.yaml").write_text(yaml.safe_dump({
            "model_name": model_name, "model_revision": model_revision or "",
            "intermediate_train": dataclasses.asdict(config)}), encoding="utf-8")
        command = torchrun_command(["step", "intermediate", "--condition", condition, "--dataset",
                                    str(work / "dataset"), "--out", str(work / "model"),
                                    "--params", str(work / "params.yaml"), "--seed", str(config.seed)])
        job = launch_trainjob(command, settings)
        if not (work / "model" / "training.json").exists():
            raise TrainJobError(f"TrainJob {job['name']} completed but wrote no model to {work / 'model'}")
        with atomic_dir(out_dir) as tmp:
            shutil.copytree(work / "model", tmp, dirs_exist_ok=True)
        return {**read_json(Path(out_dir) / "training.json"), "trainjob": job["name"], "num_nodes": settings.num_nodes}
    finally:
        shutil.rmtree(work, ignore_errors=True)
