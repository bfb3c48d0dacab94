from typing import List

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def gather_results(results: Input[List[Artifact]], gathered: Output[Artifact]):
    """One condition's zero-shot results over all target tasks, in one artifact (the inner loop's fan-in)."""
    from xstilts.provenance import metadata
    from xstilts.evaluate.report import gather_condition
    from xstilts.ops.stepcache import run_cached

    data = run_cached("gather", gather_condition, inputs={"result_files": [r.path for r in results]},
                      outputs={"out_dir": gathered.path})
    gathered.metadata.update({"condition": data["condition"], "targets": [r["task"] for r in data["results"]],
                              **metadata(gathered.path)})
