from kfp import dsl
from kfp.dsl import HTML, Dataset, Markdown, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate_data(target_tasks: list, conditions: list, data: str, task_data: dict, languages: list, hf_revision: str,
                  dataset: Output[Dataset], report_html: Output[HTML], report_md: Output[Markdown]):
    """Load every target and intermediate task's splits into canonical Parquet and check them with great-expectations."""
    from xstilts.lineage import metadata
    from xstilts.validation import validate_experiment

    manifest = validate_experiment(target_tasks, conditions, data, dataset.path, report_html.path, report_md.path,
                                   languages or None, hf_revision or None, task_data)
    dataset.metadata.update({"source": data, "hf_revision": hf_revision, "tasks": sorted(manifest["tasks"]),
                             "expectations": manifest["expectations"]["evaluated"], **metadata(dataset.path)})
