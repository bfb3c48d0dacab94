from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def zero_shot_eval(onnx_model: Input[Model], dataset: Input[Dataset], results: Output[Artifact],
                   metrics: Output[Metrics], table_md: Output[Markdown], table_html: Output[HTML],
                   generation: dict = {}):
    """Score the ONNX model in onnxruntime on every evaluation language's test split (the task kind's metric; code
    generation: sampled completions executed in the sandbox, pass@k, with the `generation` settings). Local runs reuse
    a cached result of the same inputs, parameters and code (xstilts.ops.stepcache)."""
    from xstilts.provenance import metadata
    from xstilts.ops.stepcache import lazy, run_cached

    result = run_cached("evaluate", lazy("xstilts.evaluate.zero_shot:zero_shot_eval"), inputs={"onnx_dir": onnx_model.path, "dataset_dir": dataset.path},
                        outputs={"out_dir": results.path, "html_path": table_html.path, "md_path": table_md.path},
                        params={"generation": generation})
    for language, score in result["scores"].items():
        metrics.log_metric(f"{result['task']}_{language}", score)
    metrics.log_metric(f"{result['task']}_average", result["average"])
    results.metadata.update({"condition": result["condition"], "seed": result.get("seed"), "task": result["task"],
                             "metric": result["metric"], "provider": result["provider"], "average": result["average"], **metadata(results.path)})
