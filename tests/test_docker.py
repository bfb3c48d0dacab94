"""Every Dockerfile passes hadolint (skips are justified inline with `# hadolint ignore=`)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.mark.parametrize("dockerfile", sorted(REPO.glob("docker/**/Dockerfile*")), ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint(dockerfile):
    out = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_image_matches_the_pipeline_settings():
    text = (REPO / "docker" / "Dockerfile").read_text()
    from pipelines.xstilts import ClusterSettings

    mount = ClusterSettings().cache_mount
    assert f"HF_HOME={mount}/huggingface" in text and f"XSTILTS_CHECKPOINTS={mount}/checkpoints" in text
    assert "USER 10001" in text and "constraints.txt" in text
