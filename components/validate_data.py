from kfp import dsl
from kfp.dsl import HTML, Dataset, Markdown, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate_data(target_tasks: list, conditions: list, data: str, task_data: dict, languages: list, hf_revision: str,
                  dataset: Output[Dataset], report_html: Output[HTML], report_md: Output[Markdown],
                  data_md5: str = "", data_repo: str = "", data_rev: str = "", hf_revisions: dict = {}):
    """Load every target and intermediate task's splits into canonical Parquet and check them with great-expectations.

    `data`/`task_data` come pinned from the resolve step; `data_md5` (its content md5) is here so that it is part of
    this step's caching key (KFP's, and locally xstilts.ops.stepcache's); `data_repo`/`data_rev` are recorded as the
    user asked for them."""
    from xstilts.provenance import metadata
    from xstilts.ops.stepcache import lazy, run_cached

    manifest = run_cached("validate", lazy("xstilts.data.validate:validate_experiment", light=True), inputs={},
                          outputs={"out_dir": dataset.path, "report_html": report_html.path, "report_md": report_md.path},
                          params={"target_tasks": target_tasks, "conditions": conditions, "data": data,
                                  "languages": languages or None, "hf_revision": hf_revision or None,
                                  "hf_revisions": hf_revisions or None,
                                  "task_data": task_data, "data_md5": data_md5})
    version = manifest.get("data_version") or {}
    dataset.metadata.update({"source": data, "hf_revision": hf_revision, "tasks": sorted(manifest["tasks"]),
                             "expectations": manifest["expectations"]["evaluated"], **metadata(dataset.path),
                             # as the user asked for them (metadata() has the pinned commit's rev)
                             "data_repo": data_repo or version.get("repo", ""), "data_rev": data_rev or version.get("rev", ""),
                             "dvc_md5": version.get("dvc_md5", "")})
