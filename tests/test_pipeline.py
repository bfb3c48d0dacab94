"""The compiled pipeline: committed, fresh, and carrying the cluster settings kfp.local ignores."""

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipelines.xstilts import COMPILED, PASS_THROUGH_TARGETS, compile_pipeline

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


def subdag(spec, task: dict) -> dict:
    return spec["components"][task["componentRef"]["name"]]["dag"]["tasks"]


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
    conditions = subdag(spec, root["for-loop-1"])
    (seeds_loop,) = [name for name in conditions if name.startswith("for-loop")]
    assert set(conditions) == {seeds_loop, "gather-results-2"}
    assert conditions[seeds_loop]["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--seeds"
    # Per condition × seed: one intermediate model (`none`: passed through in its own branch) trained with that seed,
    # reused by every target task of the inner loop, then one gather.
    loop = subdag(spec, conditions[seeds_loop])
    (branches,) = [name for name in loop if name.startswith("condition-branches")]
    (inner_loop,) = [name for name in loop if name.startswith("for-loop")]
    assert set(loop) == {branches, inner_loop, "gather-results"}
    arms = subdag(spec, loop[branches])
    leaves = {name: subdag(spec, arm) for name, arm in arms.items()}
    assert sorted(next(iter(t)) for t in leaves.values()) == ["intermediate-finetune", "intermediate-pass-through"]
    (passed,) = [arms[n] for n, t in leaves.items() if "intermediate-pass-through" in t]
    assert passed["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--conditions-loop-item'] == 'none'"
    for arm in leaves.values():
        (task,) = arm.values()
        assert task["inputs"]["parameters"]["seed"]["componentInputParameter"] == "pipelinechannel--seeds-loop-item"
    assert loop[inner_loop]["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--target_tasks"
    inner = subdag(spec, loop[inner_loop])
    (target_branches,) = [name for name in inner if name.startswith("condition-branches")]
    assert set(inner) == {target_branches, "export-onnx", "zero-shot-eval"}
    # One CPU pass-through branch per retrieval target, one GPU training branch for the rest; export takes the one
    # model that ran (dsl.OneOf).
    target_arms = subdag(spec, inner[target_branches])
    by_leaf = {next(iter(subdag(spec, arm))): arm["triggerPolicy"]["condition"] for arm in target_arms.values()}
    assert set(PASS_THROUGH_TARGETS) == {"bucc18", "tatoeba"}
    assert set(by_leaf) == {"target-finetune"} | {f"target-pass-through-{name}" for name in PASS_THROUGH_TARGETS}
    for name in PASS_THROUGH_TARGETS:
        assert by_leaf[f"target-pass-through-{name}"].endswith(
            f"inputs.parameter_values['pipelinechannel--target_tasks-loop-item'] == '{name}'")
    assert all(f"!(inputs.parameter_values['pipelinechannel--target_tasks-loop-item'] == '{name}')"
               in by_leaf["target-finetune"] for name in PASS_THROUGH_TARGETS)
    selectors = spec["components"][inner[target_branches]["componentRef"]["name"]]["dag"]["outputs"]["artifacts"]
    assert len(next(iter(selectors.values()))["artifactSelectors"]) == len(PASS_THROUGH_TARGETS) + 1
    assert inner["export-onnx"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == target_branches
    for arm in target_arms.values():  # every target step reads the condition's intermediate model
        (task,) = subdag(spec, arm).values()
        assert task["inputs"]["artifacts"]["intermediate_model"]["componentInputArtifact"].endswith(
            f"{branches}-oneof-1")
    assert root["report"]["inputs"]["artifacts"]["results"]["taskOutputArtifact"]["producerTask"] == "for-loop-1"
    for name, tasks in (("intermediate-finetune", leaves), ("target-finetune", {n: subdag(spec, a) for n, a in target_arms.items()})):
        (task,) = [t[name] for t in tasks.values() if name in t]
        assert task["retryPolicy"]["maxRetryCount"] == 3 and task["cachingOptions"]["enableCache"]
    executors = spec["deploymentSpec"]["executors"]
    for name in GPU_EXECUTORS:
        resources = executors[name]["container"]["resources"]
        assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu" and resources["accelerator"]["resourceCount"] == "1"
        assert resources["resourceCpuRequest"] and resources["resourceMemoryRequest"]
    assert "accelerator" not in executors["exec-gather-results"]["container"].get("resources", {})
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in GPU_EXECUTORS:
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


GPU_EXECUTORS = ("exec-intermediate-finetune", "exec-target-finetune", "exec-zero-shot-eval")
PASS_THROUGH_EXECUTORS = ("exec-intermediate-pass-through", *(f"exec-target-pass-through-{name}" for name in PASS_THROUGH_TARGETS))


def test_pass_throughs_ask_for_no_gpu():
    """The `none` intermediate and the retrieval targets only copy a model: CPU pods, on no GPU node, running the
    same code as the training steps (so the same outputs and cached results)."""
    spec, platform = load_docs(COMPILED)
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    gpu = {name for name, e in executors.items() if "accelerator" in e["container"].get("resources", {})}
    assert gpu == set(GPU_EXECUTORS)
    for name in PASS_THROUGH_EXECUTORS:
        resources = executors[name]["container"]["resources"]
        assert "accelerator" not in resources and resources["resourceCpuLimit"] and resources["resourceMemoryLimit"]
        assert "nodeSelector" not in k8s[name] and "tolerations" not in k8s[name] and "emptyDirMounts" not in k8s[name]
        assert k8s[name]["pvcMount"][0]["mountPath"] == "/mnt/cache"
        trained = executors[re.sub(r"pass-through.*", "finetune", name)]["container"]
        assert executors[name]["container"]["command"] == trained["command"]
        assert executors[name]["container"]["args"] == trained["args"]


def walk_pods(spec: dict, values: dict) -> Counter:
    """The pods one run with these parameter `values` starts, per executor: every loop over its items, every branch
    whose condition holds (the compiled CEL conditions, evaluated here with Python's eval, independently of
    pipelines/liveview.py's evaluate_condition)."""
    components, pods = spec["components"], Counter()

    def holds(condition: str, env: dict) -> bool:
        python = re.sub(r"inputs\.parameter_values\['([^']+)'\]", lambda m: repr(env[m[1]]), condition)
        return eval(python.replace("&&", " and ").replace("!(", " not ("), {"__builtins__": {}})

    def walk(tasks: dict, env: dict) -> None:
        for task in tasks.values():
            if "condition" in task.get("triggerPolicy", {}) and not holds(task["triggerPolicy"]["condition"], env):
                continue
            component = components[task["componentRef"]["name"]]
            loop = task.get("parameterIterator")
            for scope in ([{**env, loop["itemInput"]: v} for v in env[loop["items"]["inputParameter"]]] if loop else [env]):
                if "dag" in component:
                    walk(component["dag"]["tasks"], scope)
                else:
                    pods[component["executorLabel"]] += 1

    walk(spec["root"]["dag"]["tasks"], {f"pipelinechannel--{k}": v for k, v in values.items()})
    return pods


PRESETS = ("tiny", "tiny-seeds", "xtreme-grid", "code-mbxp", "codexglue-xtreme", "english-humaneval", "codegen-nonenglish",
           "english-vs-nonenglish")


@pytest.mark.parametrize("preset", PRESETS)
def test_gpu_pods_per_preset(preset):
    """pod_counts (what `xstilts compile` prints: the live view's plan of the run) is what the compiled DAG starts
    for the preset's defaults, counted here independently; with every train/eval step on a GPU (before the
    pass-throughs had their own branches) it was conditions × (1 + 2 × targets)."""
    from pipelines.xstilts import pod_counts
    from xstilts.config import CLUSTER_PRESETS

    spec, _ = load_docs(COMPILED)
    defaults = CLUSTER_PRESETS[preset]
    pods = walk_pods(spec, defaults)
    executors = spec["deploymentSpec"]["executors"]
    gpu = sum(n for name, n in pods.items() if "accelerator" in executors[name]["container"].get("resources", {}))
    counts = pod_counts(defaults)
    assert counts["gpu_pods"] == gpu and counts["gpus"] == gpu
    assert counts["cpu_pods"] == sum(pods.values()) - gpu
    conditions, targets, seeds = len(defaults["conditions"]), len(defaults["target_tasks"]), len(defaults["seeds"])
    assert counts["gpu_pods"] + counts["pass_throughs"] == seeds * conditions * (1 + 2 * targets)
    assert pods["exec-zero-shot-eval"] == pods["exec-export-onnx"] == seeds * conditions * targets
    assert pods["exec-intermediate-pass-through"] == seeds * defaults["conditions"].count("none")
    assert pods["exec-intermediate-finetune"] == seeds * (conditions - defaults["conditions"].count("none"))
    passed = sum(defaults["target_tasks"].count(name) for name in PASS_THROUGH_TARGETS)
    assert pods["exec-target-finetune"] == seeds * conditions * (targets - passed)


def test_gpu_pods_of_the_presets():
    """The figures the README quotes: per seed, the xtreme-grid (11 conditions × 9 targets) asked for 209 GPU pods,
    23 of them pass-throughs (`none` and 2 retrieval targets × 11 conditions), now 186; with its 3 seeds 558.
    --gpus multiplies GPUs, not pods; --num-nodes counts the TrainJob nodes of the trained conditions (the launchers
    are CPU pods)."""
    from pipelines.xstilts import ClusterSettings, pod_counts
    from xstilts.config import CLUSTER_PRESETS

    expected = {"tiny": (23, 4), "tiny-seeds": (69, 12), "xtreme-grid": (558, 69), "code-mbxp": (15, 3),
                "codexglue-xtreme": (69, 15), "english-humaneval": (24, 3), "codegen-nonenglish": (15, 3),
                "english-vs-nonenglish": (51, 3)}
    assert set(expected) == set(CLUSTER_PRESETS) == set(PRESETS)
    for preset, (gpu, passed) in expected.items():
        counts = pod_counts(CLUSTER_PRESETS[preset])
        assert (counts["gpu_pods"], counts["pass_throughs"]) == (gpu, passed), preset
    one_seed = pod_counts({**CLUSTER_PRESETS["xtreme-grid"], "seeds": [1]})
    assert one_seed == {"gpu_pods": 186, "gpus": 186, "cpu_pods": 2 + (1 + 22 + 99 + 11) + 11 + 2, "pass_throughs": 23}
    grid = pod_counts()
    assert grid == {"gpu_pods": 3 * 186, "gpus": 3 * 186, "cpu_pods": 2 + 3 * (1 + 22 + 99 + 11) + 11 + 2,
                    "pass_throughs": 3 * 23}
    assert pod_counts(cluster=ClusterSettings(gpus=4)) == {**grid, "gpus": 4 * 3 * 186}
    nodes = pod_counts(cluster=ClusterSettings(gpus=8, num_nodes=3))
    assert nodes["gpu_pods"] == 3 * (10 * 3 + 11 * 7 + 99) and nodes["gpus"] == 8 * nodes["gpu_pods"]
    assert nodes["cpu_pods"] == 2 + 3 * (10 + 1 + 22 + 99 + 11) + 11 + 2  # 10 launchers per seed, `none` passed through


def test_gpu_pods_multiply_over_every_loop():
    """pod_counts takes its loops from the pipeline's parameters, however deep they nest (a seeds loop inside the
    conditions loop multiplies every step inside it) and counts only the branch that runs."""
    from kfp import dsl

    from pipelines.xstilts import pod_counts

    @dsl.component(base_image="python:3.11")
    def train(condition: str, seed: int, target: str) -> str:
        return condition

    @dsl.pipeline(name="grid")
    def grid(conditions: list = ["none"], seeds: list = [1], target_tasks: list = ["xnli"]):
        with dsl.ParallelFor(conditions) as condition:
            with dsl.ParallelFor(seeds) as seed:
                with dsl.ParallelFor(target_tasks) as target:
                    with dsl.If(condition == "none"):
                        train(condition=condition, seed=seed, target=target).set_cpu_limit("1")
                    with dsl.Else():
                        train(condition=condition, seed=seed, target=target).set_accelerator_type(
                            "nvidia.com/gpu").set_accelerator_limit(2)

    counts = pod_counts({"conditions": ["none", "mnli", "squad"], "seeds": [1, 2, 3], "target_tasks": ["xnli", "panx"]},
                        spec=grid.pipeline_spec)
    assert counts == {"gpu_pods": 2 * 3 * 2, "gpus": 2 * 2 * 3 * 2, "cpu_pods": 1 * 3 * 2, "pass_throughs": 0}


def test_compile_prints_the_gpu_pods_of_each_preset(tmp_path):
    import subprocess
    import sys

    def compile_(*args):
        out = subprocess.run([sys.executable, "-m", "xstilts.cli.main", "compile", "--out", str(tmp_path / "p.yaml"),
                              *args], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    lines = compile_()
    assert lines[1].startswith("GPU pods per run of preset xtreme-grid: 558; CPU pods: 414, 69 of them pass-throughs")
    assert lines[2] == ("GPU pods per run of each preset: tiny 23, tiny-seeds 69, xtreme-grid 558, code-mbxp 15, "
                        "codexglue-xtreme 69, english-humaneval 24, codegen-nonenglish 15, english-vs-nonenglish 51")
    assert compile_("--preset", "tiny")[1].startswith("GPU pods per run of preset tiny: 23; CPU pods: 26, 4 of them")
    assert compile_("--gpus", "4", "--num-nodes", "2")[1].startswith(
        "GPU pods per run of preset xtreme-grid: 588 (2352 GPUs), TrainJob nodes included; CPU pods: 444")


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
        assert "partial(lazy(\"xstilts.train.distributed:run_data_parallel\")" in "".join(executors[name]["container"]["command"])

    spec, platform = load_docs(compile_pipeline(tmp_path / "nodes.yaml", cluster=ClusterSettings(gpus=8, num_nodes=3),
                                                image="registry.example/xstilts:dev"))
    (seeds_loop,) = [n for n in spec["components"]["comp-for-loop-1"]["dag"]["tasks"] if n.startswith("for-loop")]
    loop = subdag(spec, spec["components"]["comp-for-loop-1"]["dag"]["tasks"][seeds_loop])
    (inner_loop,) = [name for name in loop if name.startswith("for-loop")]
    (branches,) = [name for name in loop if name.startswith("condition-branches")]
    assert set(loop) == {branches, inner_loop, "gather-results"}  # `none` passes through on a CPU pod
    arms = [subdag(spec, arm) for arm in subdag(spec, loop[branches]).values()]
    assert sorted(next(iter(arm)) for arm in arms) == ["intermediate-pass-through", "trainjob-launcher"]
    (launcher_task,) = [arm["trainjob-launcher"] for arm in arms if "trainjob-launcher" in arm]
    inputs = launcher_task["inputs"]["parameters"]
    assert inputs["num_nodes"]["runtimeValue"]["constant"] == 3
    assert inputs["gpus_per_node"]["runtimeValue"]["constant"] == 8
    assert inputs["image"]["runtimeValue"]["constant"] == "registry.example/xstilts:dev"
    assert inputs["shared_pvc"]["runtimeValue"]["constant"] == "xstilts-model-cache"
    inner = subdag(spec, loop[inner_loop])
    (target_branches,) = [name for name in inner if name.startswith("condition-branches")]
    for arm in subdag(spec, inner[target_branches]).values():
        (task,) = subdag(spec, arm).values()
        assert task["inputs"]["artifacts"]["intermediate_model"]["componentInputArtifact"].endswith(
            f"{branches}-oneof-1")
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
