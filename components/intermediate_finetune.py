from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def intermediate_finetune(condition: str, seed: int, dataset: Input[Dataset], model_name: str, model_revision: str,
                          train_params: dict, model: Output[Model], metrics: Output[Metrics], dvc_remote: str = ""):
    """Fine-tune the pretrained encoder on an English intermediate task (`none`: pass the pretrained model through)
    with random seed `seed` (one restart: it replaces train_params' seed, and the target steps after it use it too),
    data-parallel over every GPU of the pod (torchrun; one process on one GPU or a CPU). With `dvc_remote`, the model
    folder is pushed there and its DVC md5 recorded as `dvc_md5`. Local runs reuse a cached result of the same
    inputs, parameters and code (xstilts.ops.stepcache)."""
    from functools import partial

    from xstilts.ops.artifact_store import push_metadata
    from xstilts.provenance import metadata, scalar_metrics
    from xstilts.ops.stepcache import lazy, run_cached
    from xstilts.config import TrainConfig

    result = run_cached("intermediate", partial(lazy("xstilts.train.distributed:run_data_parallel"),
                                                lazy("xstilts.train.finetune:intermediate_finetune")),
                        inputs={"dataset_dir": dataset.path},
                        outputs={"out_dir": model.path},
                        params={"condition": condition, "model_name": model_name,
                                "config": TrainConfig.from_dict({**train_params, "seed": int(seed)}),
                                "model_revision": model_revision or None})
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)
    model.metadata.update({"condition": condition, "seed": int(seed), "base_model": model_name,
                           "framework": "pytorch+safetensors",
                           **metadata(model.path), **push_metadata(model.path, dvc_remote)})
