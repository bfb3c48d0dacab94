from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def target_finetune(target_task: str, dataset: Input[Dataset], intermediate_model: Input[Model],
                    train_params: dict, model: Output[Model], metrics: Output[Metrics], dvc_remote: str = ""):
    """Fine-tune the intermediate model's encoder (heads dropped) on the target task's English data (retrieval
    targets: the encoder passes through untrained), data-parallel over every GPU of the pod (torchrun; one process
    on one GPU or a CPU). With `dvc_remote`, the model folder is pushed there and its DVC md5 recorded as `dvc_md5`.
    Local runs reuse a cached result of the same inputs, parameters and code (xstilts.ops.stepcache)."""
    from functools import partial

    from xstilts.ops.artifact_store import push_metadata
    from xstilts.provenance import metadata, scalar_metrics
    from xstilts.ops.stepcache import lazy, run_cached
    from xstilts.config import TrainConfig

    # The condition is read from the intermediate model (kfp.local mis-resolves an outer loop item in a nested loop).
    result = run_cached("target", partial(lazy("xstilts.train.distributed:run_data_parallel"),
                                          lazy("xstilts.train.finetune:target_finetune")),
                        inputs={"dataset_dir": dataset.path, "intermediate_model": intermediate_model.path},
                        outputs={"out_dir": model.path},
                        params={"task_name": target_task, "config": TrainConfig.from_dict(train_params)})
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)
    model.metadata.update({"condition": result["condition"], "task": target_task, "framework": "pytorch+safetensors",
                           **metadata(model.path), **push_metadata(model.path, dvc_remote)})
