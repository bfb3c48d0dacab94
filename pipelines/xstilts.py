"""The xstilts pipeline:

  resolve data → validate → ParallelFor(conditions) [ ParallelFor(seeds) [ intermediate → ParallelFor(target_tasks)
           [target → export → eval] → gather (condition × seed) ] → gather (condition) ] → promotion gate → report

Docstrings number the steps in this order: 1 resolve data, 2 validate, 3 intermediate, 4 target, 5 export, 6 eval,
7 gather, 8 promotion gate, 9 report.

`resolve data` (never cached) pins DVC data to a commit and hashes every source; its md5 is an input of `validate`,
so the md5 is part of the caching key: unchanged data reuses every cached step, changed data retrains.

Each seed is a full restart: its own intermediate model (trained once, reused by every target task of its condition
and seed) and its own target models. `gather` runs twice, each collecting one loop (kfp cannot collect across two
nested loops at once): one condition × seed's targets, then one condition's seeds; `report` collects the conditions.

`build_pipeline(image, cluster)` binds the components to an image and cluster settings; `compile_pipeline` writes
the YAML (committed as pipelines/compiled/xstilts.yaml); `pipelines.local.run_local` runs it with kfp.local.
Resources, accelerators and kfp-kubernetes settings are ignored by kfp.local but are in the compiled YAML.

Only steps that compute on a GPU ask for one. The pass-throughs — the `none` intermediate (the pretrained encoder
copied) and the retrieval targets (PASS_THROUGH_TARGETS: the intermediate encoder copied, untrained) — run the same
components on CPU pods, in `dsl.If`/`dsl.Else` branches joined by `dsl.OneOf`; kfp.local runs the same DAG
(pipelines/local.py lets it join artifact branches). Every eval keeps its GPU: even retrieval evaluation embeds
72,000 (Tatoeba) to millions of (BUCC's mining corpora) sentences with the encoder. `pod_counts` counts a run's GPU and
CPU pods from the live view's plan of it.
"""


import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kfp import compiler, dsl, kubernetes
from kfp.dsl import HTML, Artifact

from components import DEFAULT_IMAGE
from components.export_onnx import export_onnx
from components.gather_results import gather_results
from components.intermediate_finetune import intermediate_finetune
from components.promotion_gate import promotion_gate
from components.report import report
from components.resolve_data import resolve_data
from components.target_finetune import target_finetune
from components.trainjob_launcher import trainjob_launcher
from components.validate_data import validate_data
from components.zero_shot_eval import zero_shot_eval
from xstilts import env
from xstilts.config import PIPELINE_NAME, XTREME_GRID
from xstilts.errors import ConfigError
from xstilts.tasks.registry import BASELINE, all_tasks

COMPILED = Path(__file__).parent / "compiled" / "xstilts.yaml"
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

# Targets that train nothing (retrieval: the encoder is evaluated as it is), from the registry at compile time: their
# target step is a CPU pass-through. Intermediate condition BASELINE (`none`) passes the pretrained encoder through.
PASS_THROUGH_TARGETS = tuple(task.name for task in all_tasks() if not task.trains)

# Cluster defaults: the `xtreme-grid` preset (Phang et al. 2020's design on XLM-R Large), editable per run in the UI.
CLUSTER_DEFAULTS = XTREME_GRID


@dataclass(frozen=True)
class ClusterSettings:
    """Where GPU steps run. Override at compile time (`xstilts compile --gpus 2 --gpu-memory 80G ...`)."""

    accelerator: str = "nvidia.com/gpu"
    gpus: int = 1
    cpu: str = "8"
    memory: str = "64G"
    shm_size: str = "8Gi"
    cache_pvc: str = "xstilts-model-cache"
    cache_mount: str = "/mnt/cache"  # docker/Dockerfile's HF_HOME and XSTILTS_CHECKPOINTS live below it
    node_selector_key: str = "nvidia.com/gpu.present"
    node_selector_value: str = "true"
    toleration_key: str = "nvidia.com/gpu"
    retries: int = 3
    # > 1: the intermediate fine-tune runs as a Kubeflow Trainer v2 TrainJob on this many nodes of `gpus` GPUs each
    # (components/trainjob_launcher.py); the pipeline step itself is then a small CPU pod that submits and watches it.
    num_nodes: int = 1
    trainjob_runtime: str = "torch-distributed"

    def __post_init__(self) -> None:
        """Refuse values the cluster would reject at run time (a quantity it cannot parse, a name that is no DNS
        label), naming the compile option; all problems in one ConfigError."""
        from kubernetes.utils import parse_quantity

        problems = []
        for name, option in (("cpu", "--cpu"), ("memory", "--memory"), ("shm_size", "shm_size")):
            value = getattr(self, name)
            try:
                ok = parse_quantity(value) > 0
            except (ValueError, TypeError):
                ok = False
            if not ok:
                problems.append(f"{option}: {value!r} is not a positive Kubernetes quantity (e.g. 8, 500m, 64G, 8Gi)")
        for name, option, low in (("gpus", "--gpus", 1), ("num_nodes", "--num-nodes", 1), ("retries", "retries", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{option}: must be an integer >= {low}, got {value!r}")
        for name, option in (("cache_pvc", "--cache-pvc"), ("trainjob_runtime", "trainjob_runtime")):
            value = getattr(self, name)
            if not isinstance(value, str) or not DNS_SUBDOMAIN.fullmatch(value) or len(value) > 253:
                problems.append(f"{option}: {value!r} is not a Kubernetes object name (lowercase letters, digits, "
                                "'-' and '.', starting and ending with a letter or digit, at most 253 characters)")
        if not self.cache_mount.startswith("/"):
            problems.append(f"cache_mount: {self.cache_mount!r} must be an absolute path")
        if problems:
            raise ConfigError("cluster settings: " + "; ".join(problems))


IMAGE_UID = 10001  # docker/Dockerfile's USER
REGISTRY_SECRET = "xstilts-registry"  # git credentials for the promotion gate (k8s/base/registry-secret.template.yaml)
# Credentials (and a MinIO endpoint) for pushing models to `dvc_remote`: each key becomes the env var of the same name
# (k8s/base/dvc-remote-secret.template.yaml). Optional, so runs without the Secret (or without a remote) still start.
DVC_REMOTE_SECRET = "xstilts-dvc-remote"
DVC_REMOTE_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", env.DVC_REMOTE_ENDPOINT)


def _dvc_remote_env(task: dsl.PipelineTask) -> dsl.PipelineTask:
    kubernetes.use_secret_as_env(task, secret_name=DVC_REMOTE_SECRET, optional=True,
                                 secret_key_to_env={key: key for key in DVC_REMOTE_SECRET_KEYS})
    return task


def _non_root(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Run as the image's non-root user (the compiler adds no privilege escalation, capabilities dropped, seccomp)."""
    kubernetes.set_security_context(task, run_as_user=IMAGE_UID, run_as_group=IMAGE_UID, run_as_non_root=True)
    return task


def _cpu_step(task: dsl.PipelineTask, cpu: str = "2", memory: str = "8G") -> dsl.PipelineTask:
    task.set_cpu_request(cpu).set_memory_request(memory).set_cpu_limit(cpu).set_memory_limit(memory)
    return _non_root(task.set_caching_options(True))


def _mount_cache(task: dsl.PipelineTask, cluster: ClusterSettings) -> dsl.PipelineTask:
    """The model/dataset cache PVC (HF_HOME and checkpoints live there, see docker/Dockerfile)."""
    kubernetes.mount_pvc(task, pvc_name=cluster.cache_pvc, mount_path=cluster.cache_mount)
    return task


def _gpu_step(task: dsl.PipelineTask, cluster: ClusterSettings, retry: bool) -> dsl.PipelineTask:
    """A GPU pod: accelerator, CPU/memory, /dev/shm, model-cache PVC, node selector, toleration, caching, retries."""
    task.set_accelerator_type(cluster.accelerator).set_accelerator_limit(cluster.gpus)
    task.set_cpu_request(cluster.cpu).set_memory_request(cluster.memory).set_memory_limit(cluster.memory)
    task.set_caching_options(True)
    if retry:  # training steps resume from their checkpoint on the PVC after a preemption
        task.set_retry(num_retries=cluster.retries, backoff_duration="60s", backoff_factor=2.0, backoff_max_duration="3600s")
    # HF_HOME and XSTILTS_CHECKPOINTS point into cache_mount in the image (docker/Dockerfile), not here:
    # kfp.local would apply task env vars to local runs too.
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=cluster.shm_size)
    _mount_cache(task, cluster)
    kubernetes.add_node_selector(task, label_key=cluster.node_selector_key, label_value=cluster.node_selector_value)
    kubernetes.add_toleration(task, key=cluster.toleration_key, operator="Exists", effect="NoSchedule")
    return _non_root(task)


def _pass_through_step(task: dsl.PipelineTask, cluster: ClusterSettings) -> dsl.PipelineTask:
    """A CPU pod for a step that copies a model (loads and saves it: memory for a large model), with the cache PVC."""
    return _mount_cache(_cpu_step(task, cpu="2", memory="16G"), cluster)


def _with_image(component, image: str, name: str | None = None):
    """The component on `image`; with `name`, a copy under that name (its own executor, so its own resources)."""
    if image == DEFAULT_IMAGE and name is None:
        return component
    copy = dsl.component(component.python_func, base_image=image, install_kfp_package=False)
    if name is not None:
        copy.component_spec.name = copy.name = name
    return copy


def build_pipeline(image: str = DEFAULT_IMAGE, cluster: ClusterSettings = ClusterSettings(),
                   defaults: dict | None = None):
    """The pipeline function, with every component bound to `image`; `defaults` (a cluster preset, default the
    `xtreme-grid` one) are the parameter defaults the Kubeflow UI shows."""
    resolve_op = _with_image(resolve_data, image)
    validate_op = _with_image(validate_data, image)
    intermediate_op = _with_image(intermediate_finetune, image)
    intermediate_pass_op = _with_image(intermediate_finetune, image, name="intermediate-pass-through")
    launcher_op = _with_image(trainjob_launcher, image)
    target_op = _with_image(target_finetune, image)
    target_pass_ops = {name: _with_image(target_finetune, image, name=f"target-pass-through-{name}")
                       for name in PASS_THROUGH_TARGETS}  # one per branch: a task has one parent branch
    export_op = _with_image(export_onnx, image)
    eval_op = _with_image(zero_shot_eval, image)
    gather_op = _with_image(gather_results, image)
    gate_op = _with_image(promotion_gate, image)
    report_op = _with_image(report, image)
    d = defaults or CLUSTER_DEFAULTS

    class Outputs(NamedTuple):
        report_html: HTML
        summary: Artifact

    @dsl.pipeline(name=PIPELINE_NAME, description="English intermediate-task training → English target tasks → "
                  "zero-shot cross-lingual evaluation (Phang et al. 2020): one branch per intermediate condition, "
                  "each fanning out over the target tasks.")
    def xstilts(
        target_tasks: list = d["target_tasks"],
        conditions: list = d["conditions"],
        seeds: list = d["seeds"],
        data: str = d["data"],
        data_repo: str = d["data_repo"],
        data_rev: str = d["data_rev"],
        task_data: dict = d["task_data"],
        languages: list = d["languages"],
        hf_revision: str = d["hf_revision"],
        hf_revisions: dict = d["hf_revisions"],
        model_name: str = d["model_name"],
        model_revision: str = d["model_revision"],
        retrieval_layer: int = d["retrieval_layer"],
        generation: dict = d["generation"],
        intermediate_train: dict = d["intermediate_train"],
        target_train: dict = d["target_train"],
        registry_repo: str = d["registry_repo"],
        promotion_targets: list = d["promotion_targets"],
        promotion_tolerance: float = d["promotion_tolerance"],
        promotion_condition: str = d["promotion_condition"],
        dvc_remote: str = d["dvc_remote"],  # set: trained and ONNX models are pushed there (dvc_md5 on each)
    ) -> Outputs:
        resolved = _mount_cache(_cpu_step(resolve_op(
            data=data, task_data=task_data, data_repo=data_repo, data_rev=data_rev, target_tasks=target_tasks,
            conditions=conditions, seeds=seeds, languages=languages, hf_revision=hf_revision, hf_revisions=hf_revisions,
            model_name=model_name,
            model_revision=model_revision, retrieval_layer=retrieval_layer, generation=generation,
            intermediate_train=intermediate_train, target_train=target_train, registry_repo=registry_repo,
            promotion_targets=promotion_targets, promotion_tolerance=promotion_tolerance,
            promotion_condition=promotion_condition, dvc_remote=dvc_remote), cpu="1", memory="2G"), cluster)
        resolved.set_caching_options(False)  # it decides what "unchanged data" means, so it always runs
        resolved.set_display_name("resolve data")
        validated = _mount_cache(_cpu_step(validate_op(
            target_tasks=target_tasks, conditions=conditions, data=resolved.outputs["data"],
            task_data=resolved.outputs["task_data"], languages=languages, hf_revision=hf_revision,
            hf_revisions=hf_revisions,
            data_md5=resolved.outputs["data_md5"], data_repo=data_repo, data_rev=data_rev)), cluster)
        validated.set_display_name("validate data")
        with dsl.ParallelFor(conditions, name="conditions") as condition:
            with dsl.ParallelFor(seeds, name="seeds") as seed:
                def intermediate(op, **cluster_inputs):
                    return _dvc_remote_env(op(condition=condition, seed=seed, dataset=validated.outputs["dataset"],
                                              model_name=model_name, model_revision=model_revision,
                                              train_params=intermediate_train, dvc_remote=dvc_remote, **cluster_inputs))

                with dsl.If(condition == BASELINE, name="no intermediate task"):  # a copy of the pretrained encoder
                    passed = _pass_through_step(intermediate(intermediate_pass_op), cluster)
                    passed.set_display_name("intermediate pass-through")
                with dsl.Else(name="intermediate task"):
                    if cluster.num_nodes > 1:  # across nodes: this pod submits a TrainJob, the nodes share the cache PVC
                        trained = _mount_cache(_cpu_step(intermediate(
                            launcher_op, image=image, num_nodes=cluster.num_nodes, gpus_per_node=cluster.gpus,
                            cpu_per_node=cluster.cpu, memory_per_node=cluster.memory, runtime=cluster.trainjob_runtime,
                            shared_pvc=cluster.cache_pvc, shared_mount=cluster.cache_mount), cpu="1", memory="4G"), cluster)
                    else:
                        trained = _gpu_step(intermediate(intermediate_op), cluster, retry=True)
                    trained.set_display_name("intermediate fine-tune")
                inter_model = dsl.OneOf(passed.outputs["model"], trained.outputs["model"])
                with dsl.ParallelFor(target_tasks, name="target-tasks") as target_task:
                    def target(op):
                        return _dvc_remote_env(op(target_task=target_task, dataset=validated.outputs["dataset"],
                                                  intermediate_model=inter_model, train_params=target_train,
                                                  dvc_remote=dvc_remote))

                    models = []  # one branch per retrieval target (kfp conditions compare one value), then the rest
                    for i, name in enumerate(PASS_THROUGH_TARGETS):
                        with (dsl.If if i == 0 else dsl.Elif)(target_task == name, name=f"{name}: no training"):
                            passed = _pass_through_step(target(target_pass_ops[name]), cluster)
                            passed.set_display_name("target pass-through")
                            models.append(passed.outputs["model"])
                    with dsl.Else(name="target training"):
                        trained = _gpu_step(target(target_op), cluster, retry=True)
                        trained.set_display_name("target fine-tune")
                        models.append(trained.outputs["model"])
                    exported = _cpu_step(export_op(model=dsl.OneOf(*models), retrieval_layer=retrieval_layer,
                                                   dvc_remote=dvc_remote),
                                         cpu="4", memory="32G")
                    _dvc_remote_env(exported).set_display_name("export ONNX")
                    evaluated = _gpu_step(eval_op(onnx_model=exported.outputs["onnx_model"],
                                                  dataset=validated.outputs["dataset"], generation=generation),
                                          cluster, retry=False)
                    evaluated.set_display_name("zero-shot eval")
                per_seed = _cpu_step(gather_op(results=dsl.Collected(evaluated.outputs["results"])), cpu="1",
                                     memory="2G")
                per_seed.set_display_name("gather seed")
            gathered = _cpu_step(gather_op(results=dsl.Collected(per_seed.outputs["gathered"])), cpu="1", memory="2G")
            gathered.set_display_name("gather condition")
        gate = _cpu_step(gate_op(results=dsl.Collected(gathered.outputs["gathered"]), registry_repo=registry_repo,
                                 promotion_targets=promotion_targets, promotion_tolerance=promotion_tolerance,
                                 promotion_condition=promotion_condition, run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER),
                         cpu="1", memory="2G")
        gate.set_caching_options(False)  # the registry moves between runs: always decide against today's prod
        gate.set_display_name("promotion gate")
        kubernetes.use_secret_as_env(gate, secret_name=REGISTRY_SECRET, optional=True,
                                     secret_key_to_env={"token": env.GIT_TOKEN, "username": env.GIT_USER})
        reported = _cpu_step(report_op(results=dsl.Collected(gathered.outputs["gathered"]),
                                       decision=gate.outputs["decision"]))
        reported.set_display_name("report")
        return Outputs(report_html=reported.outputs["report_html"], summary=reported.outputs["summary"])

    return xstilts


def pod_counts(defaults: dict | None = None, cluster: ClusterSettings = ClusterSettings(), spec=None) -> dict:
    """The pods one run with a preset's parameters (`defaults`, default the cluster defaults) starts: the steps the
    live view plans (pipelines/liveview.plan_steps: every loop over its parameter's items, nested loops multiplied,
    of each dsl.If/Else the branch that runs), each a GPU pod if its executor asks for an accelerator. `gpu_pods`
    (with --num-nodes, each TrainJob launcher's nodes too), `gpus` (the GPUs they ask for), `cpu_pods` (every other
    step, TrainJob launchers included) and `pass_throughs`: the CPU steps that copy a model (`none`, retrieval
    targets), which asked for a GPU before they ran in their own branches. `spec`: the pipeline spec built with
    `cluster` (default: built here), its parameter defaults under the preset's."""
    from google.protobuf import json_format

    from pipelines.liveview import plan_steps

    d = defaults or CLUSTER_DEFAULTS
    spec = spec or build_pipeline(cluster=cluster, defaults=d).pipeline_spec
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    counts = {"gpu_pods": 0, "gpus": 0, "cpu_pods": 0, "pass_throughs": 0}
    for step in plan_steps(spec, d):
        resources = executors[spec.components[step.component].executor_label]["container"].get("resources", {})
        gpus = int(resources["accelerator"]["resourceCount"]) if "accelerator" in resources else 0
        if step.component == "comp-trainjob-launcher":  # a CPU pod that starts a TrainJob on num_nodes GPU nodes
            counts["gpu_pods"] += cluster.num_nodes
            counts["gpus"] += cluster.num_nodes * cluster.gpus
        counts["gpu_pods" if gpus else "cpu_pods"] += 1
        counts["gpus"] += gpus
        counts["pass_throughs"] += "pass-through" in step.component
    return counts


def compile_pipeline(out: "str | Path" = COMPILED, image: str = DEFAULT_IMAGE, cluster: ClusterSettings = ClusterSettings(),
                     defaults: dict | None = None) -> Path:
    """Write the pipeline YAML (atomically)."""
    import os
    import tempfile

    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name the pipeline file to write, e.g. {out / 'xstilts.yaml'}")
    if out.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"--out {out}: a pipeline file ends in .yaml")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    os.close(fd)
    try:
        compiler.Compiler().compile(build_pipeline(image, cluster, defaults), tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
