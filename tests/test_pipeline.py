"""The compiled pipeline: committed, fresh, and carrying the cluster settings kfp.local ignores."""

import ast
from pathlib import Path

import yaml

from pipelines.xstilts import COMPILED, compile_pipeline

REPO = Path(__file__).resolve().parents[1]


def test_compiled_yaml_is_fresh(tmp_path):
    fresh = compile_pipeline(tmp_path / "xstilts.yaml")
    assert COMPILED.exists(), "run `make compile` and commit pipelines/compiled/xstilts.yaml"
    # Compared parsed: the compiler's header comment lists dict defaults in an order that varies between runs.
    assert list(yaml.safe_load_all(fresh.read_text())) == list(yaml.safe_load_all(COMPILED.read_text())), \
        "pipelines/compiled/xstilts.yaml is stale: run `make compile`"


def load_docs(path):
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def test_dag_shape_and_gpu_settings():
    spec, platform = load_docs(COMPILED)
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"resolve-data", "validate-data", "for-loop-1", "promotion-gate", "report"}
    # The data md5 is an input of validate (so of its caching key); resolve and the gate always run.
    validate_inputs = root["validate-data"]["inputs"]["parameters"]
    assert validate_inputs["data_md5"]["taskOutputParameter"] == {"outputParameterKey": "data_md5",
                                                                  "producerTask": "resolve-data"}
    assert validate_inputs["data"]["taskOutputParameter"]["producerTask"] == "resolve-data"
    assert not root["resolve-data"]["cachingOptions"].get("enableCache")
    assert not root["promotion-gate"]["cachingOptions"].get("enableCache")
    assert root["validate-data"]["cachingOptions"]["enableCache"]
    assert root["report"]["inputs"]["artifacts"]["decision"]["taskOutputArtifact"]["producerTask"] == "promotion-gate"
    assert root["for-loop-1"]["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--conditions"
    # Per condition: a loop over the seeds (restarts), then a gather of its seeds.
    conditions = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]
    assert set(conditions) == {"for-loop-2", "gather-results-2"}
    assert conditions["for-loop-2"]["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--seeds"
    # Per condition × seed: one intermediate model (trained with that seed), reused by every target task of the inner
    # loop, then one gather.
    loop = spec["components"]["comp-for-loop-2"]["dag"]["tasks"]
    assert set(loop) == {"intermediate-finetune", "for-loop-3", "gather-results"}
    assert loop["intermediate-finetune"]["inputs"]["parameters"]["seed"]["componentInputParameter"] == \
        "pipelinechannel--seeds-loop-item"
    assert loop["for-loop-3"]["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--target_tasks"
    inner = spec["components"]["comp-for-loop-3"]["dag"]["tasks"]
    assert set(inner) == {"target-finetune", "export-onnx", "zero-shot-eval"}
    assert (inner["target-finetune"]["inputs"]["artifacts"]["intermediate_model"]["componentInputArtifact"]
            == "pipelinechannel--intermediate-finetune-model")
    assert root["report"]["inputs"]["artifacts"]["results"]["taskOutputArtifact"]["producerTask"] == "for-loop-1"
    for name, tasks in (("intermediate-finetune", loop), ("target-finetune", inner)):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 3 and tasks[name]["cachingOptions"]["enableCache"]
    executors = spec["deploymentSpec"]["executors"]
    for name in ("exec-intermediate-finetune", "exec-target-finetune", "exec-zero-shot-eval"):
        resources = executors[name]["container"]["resources"]
        assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu" and resources["accelerator"]["resourceCount"] == "1"
        assert resources["resourceCpuRequest"] and resources["resourceMemoryRequest"]
    assert "accelerator" not in executors["exec-gather-results"]["container"].get("resources", {})
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-intermediate-finetune", "exec-target-finetune", "exec-zero-shot-eval"):
        cfg = k8s[name]
        assert cfg["emptyDirMounts"][0]["mountPath"] == "/dev/shm" and cfg["emptyDirMounts"][0]["medium"] == "Memory"
        assert cfg["pvcMount"][0]["mountPath"] == "/mnt/cache"
        assert cfg["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
        assert cfg["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert k8s["exec-validate-data"]["pvcMount"][0]["mountPath"] == "/mnt/cache"  # hub datasets are cached too
    registry = k8s["exec-promotion-gate"]["secretAsEnv"][0]  # git credentials only by Secret reference
    assert registry["secretName"] == "xstilts-registry" and registry["optional"]
    assert {m["envVar"] for m in registry["keyToEnv"]} == {"XSTILTS_GIT_TOKEN", "XSTILTS_GIT_USER"}
    for name, cfg in k8s.items():  # every step runs as the image's non-root user
        assert cfg["securityContext"] == {"runAsUser": "10001", "runAsGroup": "10001", "runAsNonRoot": True}, name
    assert set(k8s) == {f"exec-{c.removeprefix('comp-')}" for c in spec["components"] if "dag" not in spec["components"][c]}


def test_cluster_defaults_are_the_xtreme_grid_preset():
    from xstilts.config import XTREME_GRID

    spec, _ = load_docs(COMPILED)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["model_name"]["defaultValue"] == "FacebookAI/xlm-roberta-large"
    assert params["target_tasks"]["defaultValue"] == XTREME_GRID["target_tasks"]
    assert params["conditions"]["defaultValue"] == XTREME_GRID["conditions"]
    assert len(params["conditions"]["defaultValue"]) == 11 and len(params["target_tasks"]["defaultValue"]) == 9
    assert params["seeds"]["defaultValue"] == [1, 2, 3]
    assert params["data"]["defaultValue"] == "hf" and params["retrieval_layer"]["defaultValue"] == 0


def test_image_is_a_compile_parameter(tmp_path):
    out = compile_pipeline(tmp_path / "p.yaml", image="registry.example/xstilts:dev")
    images = {e["container"]["image"] for e in load_docs(out)[0]["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example/xstilts:dev"}


def test_multi_gpu_pods_and_multi_node_trainjobs(tmp_path):
    """--gpus N: every training pod asks for N GPUs (the components run torchrun over them). --num-nodes M: the
    intermediate step becomes the TrainJob launcher, a CPU pod on the shared cache PVC that asks for M nodes × N."""
    from pipelines.xstilts import ClusterSettings

    spec, _ = load_docs(compile_pipeline(tmp_path / "gpus.yaml", cluster=ClusterSettings(gpus=4)))
    executors = spec["deploymentSpec"]["executors"]
    for name in ("exec-intermediate-finetune", "exec-target-finetune"):
        assert executors[name]["container"]["resources"]["accelerator"]["resourceCount"] == "4"
        assert "partial(run_data_parallel, finetune)" in "".join(executors[name]["container"]["command"])

    spec, platform = load_docs(compile_pipeline(tmp_path / "nodes.yaml", cluster=ClusterSettings(gpus=8, num_nodes=3),
                                                image="registry.example/xstilts:dev"))
    loop = spec["components"]["comp-for-loop-2"]["dag"]["tasks"]
    assert set(loop) == {"trainjob-launcher", "for-loop-3", "gather-results"}
    inputs = loop["trainjob-launcher"]["inputs"]["parameters"]
    assert inputs["num_nodes"]["runtimeValue"]["constant"] == 3
    assert inputs["gpus_per_node"]["runtimeValue"]["constant"] == 8
    assert inputs["image"]["runtimeValue"]["constant"] == "registry.example/xstilts:dev"
    assert inputs["shared_pvc"]["runtimeValue"]["constant"] == "xstilts-model-cache"
    inner = spec["components"]["comp-for-loop-3"]["dag"]["tasks"]
    assert (inner["target-finetune"]["inputs"]["artifacts"]["intermediate_model"]["componentInputArtifact"]
            == "pipelinechannel--trainjob-launcher-model")
    launcher = spec["deploymentSpec"]["executors"]["exec-trainjob-launcher"]["container"]
    assert "accelerator" not in launcher["resources"]
    mounts = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-trainjob-launcher"]["pvcMount"]
    assert mounts[0]["mountPath"] == "/mnt/cache"


def test_library_never_imports_kfp():
    # The Kubeflow commands of the CLI (xstilts/cli/kfp.py) call into pipelines/, but only inside each command,
    # so importing them (every other command, `--help`) loads no kfp: there only module-level imports are checked.
    commands = REPO / "xstilts" / "cli" / "kfp.py"
    for path in (REPO / "xstilts").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in (tree.body if path == commands else ast.walk(tree)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("kfp", "components", "pipelines") for n in names), f"{path} imports {names}"
