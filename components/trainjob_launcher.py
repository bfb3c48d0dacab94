from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def trainjob_launcher(condition: str, seed: int, dataset: Input[Dataset], model_name: str, model_revision: str,
                      train_params: dict, model: Output[Model], metrics: Output[Metrics], image: str,
                      num_nodes: int = 2, gpus_per_node: int = 1, cpu_per_node: str = "8",
                      memory_per_node: str = "64G", runtime: str = "torch-distributed",
                      shared_pvc: str = "xstilts-model-cache", shared_mount: str = "/mnt/cache", env: dict = {},
                      backend: str = "kubernetes", dvc_remote: str = ""):
    """The intermediate fine-tune as a Kubeflow Trainer v2 TrainJob on `num_nodes` nodes (torchrun data-parallel
    over every node's GPUs) with random seed `seed` (it replaces train_params' seed); this pod only submits it,
    streams its logs and fails when it fails. The nodes run
    `image` and share `shared_pvc` (mounted at `shared_mount` here too) with this pod."""
    from xstilts.ops.artifact_store import push_metadata
    from xstilts.provenance import metadata, scalar_metrics
    from xstilts.config import TrainConfig
    from xstilts.ops.trainjob import TrainJobSettings, intermediate_trainjob

    resources = {"cpu": cpu_per_node, "memory": memory_per_node, **({"gpu": gpus_per_node} if gpus_per_node else {})}
    settings = TrainJobSettings(image=image, num_nodes=num_nodes, resources_per_node=resources, runtime=runtime,
                                shared_pvc=shared_pvc, shared_mount=shared_mount, env=env, backend=backend)
    config = TrainConfig.from_dict({**train_params, "seed": int(seed)})
    result = intermediate_trainjob(condition, dataset.path, model_name, model.path, config,
                                   model_revision or None, settings)
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)
    model.metadata.update({"condition": condition, "seed": int(seed), "base_model": model_name,
                           "framework": "pytorch+safetensors",
                           "trainjob": result["trainjob"] or "", "num_nodes": result["num_nodes"],
                           **metadata(model.path), **push_metadata(model.path, dvc_remote)})
