from typing import List

from kfp import dsl
from kfp.dsl import Artifact, Input, Markdown, Output

from components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def promotion_gate(results: Input[List[Artifact]], registry_repo: str, promotion_targets: list,
                   promotion_tolerance: float, promotion_condition: str, run_name: str, decision: Output[Artifact],
                   decision_md: Output[Markdown]):
    """Register this run's model as a new GTO version and promote it to `prod` only if its zero-shot average is not
    worse than production's by more than the tolerance (skipped when `registry_repo` is empty). `run_name` names
    the candidate record committed to the registry (the pipeline passes the KFP run's name)."""
    import os
    import shutil

    from xstilts.provenance import metadata
    from xstilts.ops.promotion import gate_run

    result = gate_run([r.path for r in results], decision.path, registry_repo, promotion_targets, promotion_tolerance,
                      promotion_condition or None, run_name=run_name)
    shutil.copyfile(os.path.join(decision.path, "decision.md"), decision_md.path)
    decision.metadata.update({"skipped": result["skipped"],
                              "decisions": {d["artifact"]: d["decision"] for d in result["decisions"]},
                              **metadata(decision.path)})
