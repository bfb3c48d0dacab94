from typing import List

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def gather_results(results: Input[List[Artifact]], gathered: Output[Artifact]):
    """One condition's zero-shot results and their per-example predictions in one artifact: a loop's fan-in, used
    twice (one condition × seed's target tasks, then one condition's seeds)."""
    from xstilts.provenance import metadata
    from xstilts.ops.stepcache import lazy, run_cached

    data = run_cached("gather", lazy("xstilts.evaluate.summary:gather_results", light=True), inputs={"result_files": [r.path for r in results]},
                      outputs={"out_dir": gathered.path})
    gathered.metadata.update({"condition": data["condition"], "seeds": data["seeds"],
                              "targets": sorted({r["task"] for r in data["results"]}), **metadata(gathered.path)})
