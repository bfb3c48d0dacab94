from typing import List

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def report(results: Input[List[Artifact]], decision: Input[Artifact], summary: Output[Artifact],
           report_html: Output[HTML], report_md: Output[Markdown]):
    """Every (condition, target task) score: task × condition table with XTREME average and deltas vs `none`,
    best intermediate per target, the promotion gate's decision, heatmaps, Markdown/HTML report, summary.json."""
    from xstilts.provenance import metadata
    from xstilts.ops.stepcache import lazy, run_cached

    result = run_cached("report", lazy("xstilts.evaluate.report:build_report", light=True),
                        inputs={"result_files": [r.path for r in results], "decision": decision.path},
                        outputs={"out_dir": summary.path, "html_path": report_html.path, "md_path": report_md.path})
    summary.metadata.update({"targets": result["targets"], "conditions": result["conditions"],
                             "xtreme_average": result["xtreme_average"], **metadata(summary.path)})
