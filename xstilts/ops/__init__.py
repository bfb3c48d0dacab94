"""Operations around the pipeline's steps: the local step cache (stepcache), lineage audits (lineage), the
promotion gate with GTO (promotion), DVC remotes for model folders (artifact_store) and multi-node Kubeflow
TrainJobs (trainjob). It may import the base modules and, inside functions, the rooms whose steps it drives (train,
evaluate); of the library only the components (run_cached, push_metadata) and the CLI import it.
"""
