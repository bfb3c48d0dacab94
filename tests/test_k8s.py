"""Every manifest of the kustomize base validates against the Kubernetes schema (strict: no unknown fields)."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

BASE = Path(__file__).resolve().parents[1] / "k8s" / "base"
K8S_VERSION = "1.31.0"


def kustomize_resources():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    return kustomization, [BASE / r for r in kustomization["resources"]]


def test_kustomization_lists_every_manifest_once():
    _, resources = kustomize_resources()
    on_disk = {p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert set(resources) == on_disk and len(resources) == len(set(resources))


@pytest.mark.parametrize("manifest", kustomize_resources()[1], ids=lambda p: p.name)
def test_manifest_is_valid(manifest):
    kustomization, _ = kustomize_resources()
    for doc in yaml.safe_load_all(manifest.read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace", kustomization["namespace"]) == kustomization["namespace"]


def test_base_has_namespace_serviceaccount_and_cache_pvc():
    docs = [d for p in kustomize_resources()[1] for d in yaml.safe_load_all(p.read_text())]
    kinds = {d["kind"]: d for d in docs}
    labels = kinds["Namespace"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline" and labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert kinds["ServiceAccount"]["metadata"]["name"] == "xstilts-pipeline-runner"
    pvc = kinds["PersistentVolumeClaim"]
    from pipelines.xstilts import ClusterSettings

    assert pvc["metadata"]["name"] == ClusterSettings().cache_pvc  # the name the compiled pipeline mounts
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # parallel branches share it
