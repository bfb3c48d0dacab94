from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def intermediate_finetune(condition: str, dataset: Input[Dataset], model_name: str, model_revision: str,
                          train_params: dict, model: Output[Model], metrics: Output[Metrics], dvc_remote: str = ""):
    """Fine-tune the pretrained encoder on an English intermediate task (`none`: pass the pretrained model through),
    data-parallel over every GPU of the pod (torchrun; one process on one GPU or a CPU). With `dvc_remote`, the model
    folder is pushed there and its DVC md5 recorded as `dvc_md5`."""
    from xstilts.artifact_store import push_metadata
    from xstilts.distributed import run_data_parallel
    from xstilts.lineage import metadata
    from xstilts.training import TrainConfig, intermediate_finetune as finetune, scalar_metrics

    result = run_data_parallel(finetune, condition=condition, dataset_dir=dataset.path, model_name=model_name,
                               out_dir=model.path, config=TrainConfig.from_dict(train_params),
                               model_revision=model_revision or None)
    for name, value in scalar_metrics(result).items():
        metrics.log_metric(name, value)
    model.metadata.update({"condition": condition, "base_model": model_name, "framework": "pytorch+safetensors",
                           **metadata(model.path), **push_metadata(model.path, dvc_remote)})
