from typing import NamedTuple

from kfp import dsl

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def resolve_data(data: str, task_data: dict, data_repo: str, data_rev: str, target_tasks: list, conditions: list,
                 seeds: list, languages: list, hf_revision: str, hf_revisions: dict, model_name: str, model_revision: str, retrieval_layer: int,
                 generation: dict, intermediate_train: dict, target_train: dict, registry_repo: str,
                 promotion_targets: list, promotion_tolerance: float, promotion_condition: str,
                 dvc_remote: str) -> NamedTuple("ResolvedData", data=str, task_data=dict, data_md5=str,
                                                data_commit=str):
    """The run's first step. Check every parameter as the UI passed it and what the run needs beyond them (hub
    datasets and model, data folders, toolchains, DVC remote, registry: xstilts.ops.preflight; all problems at once,
    before any training), then pin the run's data: DVC sources to their resolved commit, and one md5 over every source's content. Never
    cached; the md5 goes into the validate step's caching key, so unchanged data reuses cached steps and changed
    data retrains."""
    from collections import namedtuple

    from xstilts.data.dvc import resolve_run_data
    from xstilts.ops.preflight import require_preflight

    report = require_preflight(dict(
        data=data, task_data=task_data, data_repo=data_repo, data_rev=data_rev, target_tasks=target_tasks,
        conditions=conditions, seeds=seeds, languages=languages, hf_revision=hf_revision, hf_revisions=hf_revisions,
        model_name=model_name,
        model_revision=model_revision, retrieval_layer=retrieval_layer, generation=generation,
        intermediate_train=intermediate_train, target_train=target_train, registry_repo=registry_repo,
        promotion_targets=promotion_targets, promotion_tolerance=promotion_tolerance,
        promotion_condition=promotion_condition, dvc_remote=dvc_remote), source="pipeline parameters", local=True)
    print(f"preflight: {report.counts()}")
    resolved = resolve_run_data(data, task_data, data_repo, data_rev)
    for source, version in resolved["versions"].items():
        print(f"data {source} → {version['source']} md5 {version['md5'] or '(hub: named by hf_revision)'}")
    outputs = namedtuple("ResolvedData", ["data", "task_data", "data_md5", "data_commit"])
    return outputs(resolved["data"], resolved["task_data"], resolved["data_md5"], resolved["data_commit"])
