from typing import NamedTuple

from kfp import dsl

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def resolve_data(data: str, task_data: dict, data_repo: str, data_rev: str) -> NamedTuple(
        "ResolvedData", data=str, task_data=dict, data_md5=str, data_commit=str):
    """Pin the run's data before anything runs: DVC sources to their resolved commit, and one md5 over every
    source's content. Never cached; the md5 goes into the validate step's caching key, so unchanged data reuses
    cached steps and changed data retrains."""
    from collections import namedtuple

    from xstilts.data.dvc import resolve_run_data

    resolved = resolve_run_data(data, task_data, data_repo, data_rev)
    for source, version in resolved["versions"].items():
        print(f"data {source} → {version['source']} md5 {version['md5'] or '(hub: named by hf_revision)'}")
    outputs = namedtuple("ResolvedData", ["data", "task_data", "data_md5", "data_commit"])
    return outputs(resolved["data"], resolved["task_data"], resolved["data_md5"], resolved["data_commit"])
