"""The GTO promotion gate: version/stage tags in a temp git repo, the gate, dry run, rollback, errors, CLI."""

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.ops.promotion import PromotionError, current_prod, load_candidate, promote, read_registry, rollback

XSTILTS = str(Path(sys.executable).parent / "xstilts")
ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=ENV).stdout


def commit(repo, msg="retrain"):
    git(repo, "commit", "-q", "--allow-empty", "-m", msg)


def tags(repo):
    return sorted(git(repo, "tag", "--list").split())


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "registry"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "t")
    git(repo, "config", "user.email", "t@example.com")
    commit(repo, "init")
    return repo


def summary(path, xnli=None, grid=None):
    xnli = xnli or {"none": 0.70, "squad": 0.75}
    data = {"targets": ["xnli", "pawsx"], "conditions": sorted(xnli), "metric": {"xnli": "accuracy"},
            "task_average": {"xnli": xnli, "pawsx": {c: 0.8 for c in xnli}},
            "xtreme_average": grid or {c: (v + 0.8) / 2 for c, v in xnli.items()}}
    path.write_text(json.dumps(data))
    return path


def test_candidate_defaults_to_best_condition_and_grid(tmp_path):
    s = summary(tmp_path / "s.json")
    assert load_candidate(s, "xnli")["condition"] == "squad"
    c = load_candidate(s, None, "none")
    assert c["target"] is None and c["score"] == pytest.approx(0.75) and len(c["summary_md5"]) == 32


def test_gate_sequence_and_tag_messages(repo, tmp_path):
    out = tmp_path / "rec" / "decision.json"
    first = promote(repo, summary(tmp_path / "s1.json", {"none": 0.70, "squad": 0.75}), target="xnli", out=out)
    assert first["decision"] == "promoted" and first["prod"] is None
    assert tags(repo) == ["xstilts-xnli#prod#1", "xstilts-xnli@v1.0.0"]
    meta = json.loads(git(repo, "tag", "-l", "--format=%(contents)", "xstilts-xnli@v1.0.0"))
    assert meta["score"] == 0.75 and meta["condition"] == "squad" and meta["target"] == "xnli" and meta["summary_md5"]

    commit(repo)
    better = promote(repo, summary(tmp_path / "s2.json", {"none": 0.70, "squad": 0.78}), target="xnli", out=out)
    assert better["decision"] == "promoted" and better["candidate"]["version"] == "v1.1.0"
    assert better["prod"]["version"] == "v1.0.0" and better["delta"] == pytest.approx(0.03)
    assert current_prod(read_registry(repo, "xstilts-xnli")) == "v1.1.0"

    commit(repo)
    worse = promote(repo, summary(tmp_path / "s3.json", {"squad": 0.70}), target="xnli", tolerance=0.01, out=out)
    assert worse["decision"] == "rejected" and not worse["passed"]
    assert "xstilts-xnli@v1.2.0" in tags(repo) and "xstilts-xnli#prod#3" not in tags(repo)
    assert current_prod(read_registry(repo, "xstilts-xnli")) == "v1.1.0"
    assert worse["candidate"]["score"] == 0.70 and worse["prod"]["score"] == 0.78
    md = out.with_suffix(".md").read_text()
    assert "not promoted" in md and "70.00" in md and "78.00" in md and "v1.2.0 is registered but prod stays on v1.1.0" in md
    assert json.loads(out.read_text())["reason"] == worse["reason"]

    commit(repo)
    within = promote(repo, summary(tmp_path / "s4.json", {"squad": 0.775}), target="xnli", tolerance=0.005,
                     bump="patch", out=out)
    assert within["decision"] == "promoted" and within["candidate"]["version"] == "v1.2.1"
    assert current_prod(read_registry(repo, "xstilts-xnli")) == "v1.2.1"

    back = rollback(repo, "xstilts-xnli", out=out)
    assert back["decision"] == "rollback" and back["prod_after"] == "v1.1.0" and back["rolled_back_from"] == "v1.2.1"
    assert current_prod(read_registry(repo, "xstilts-xnli")) == "v1.1.0"
    assert back["tags"] == ["xstilts-xnli#prod!#4", "xstilts-xnli#prod#5"]
    again = rollback(repo, "xstilts-xnli", out=out)  # walks further back, does not flip-flop to v1.2.1
    assert again["prod_after"] == "v1.0.0"
    with pytest.raises(PromotionError, match="no earlier version"):
        rollback(repo, "xstilts-xnli", out=out)

    from gto import api  # GTO itself reads the same registry

    found = api.find_versions_in_stage(str(repo), "xstilts-xnli", "prod")
    assert [v.version for v in found] == ["v1.0.0"]


def test_dry_run_creates_no_tags(repo, tmp_path):
    out = tmp_path / "d.json"
    d = promote(repo, summary(tmp_path / "s.json"), dry_run=True, out=out, version="2.0.0")
    assert d["dry_run"] and d["decision"] == "promoted" and d["artifact"] == "xstilts-grid"
    assert d["candidate"]["version"] == "v2.0.0" and d["tags"] == [] and tags(repo) == []
    assert out.exists() and "dry run" in out.with_suffix(".md").read_text()
    with pytest.raises(PromotionError, match="nothing to roll back"):
        rollback(repo, "xstilts-grid", dry_run=True, out=None)


def test_errors(repo, tmp_path):
    s = summary(tmp_path / "s.json")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(PromotionError, match="not a git repository"):
        promote(plain, s, out=None)
    with pytest.raises(PromotionError, match="does not exist"):
        promote(repo, tmp_path / "missing.json", out=None)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(PromotionError, match="not valid JSON"):
        promote(repo, tmp_path / "bad.json", out=None)
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(PromotionError, match="xtreme_average"):
        promote(repo, tmp_path / "empty.json", out=None)
    with pytest.raises(PromotionError, match="known targets: pawsx, xnli"):
        promote(repo, s, target="nope", out=None)
    with pytest.raises(PromotionError, match="known conditions: none, squad"):
        promote(repo, s, target="xnli", condition="mnli", out=None)
    with pytest.raises(PromotionError, match="non-negative"):
        promote(repo, s, tolerance=-0.1, out=None)
    promote(repo, s, out=None)
    with pytest.raises(PromotionError, match="one version per commit"):
        promote(repo, s, out=None)
    commit(repo)
    with pytest.raises(PromotionError, match="already registered"):
        promote(repo, s, version="v1.0.0", out=None)
    assert tags(repo) == ["xstilts-grid#prod#1", "xstilts-grid@v1.0.0"]


def test_cli_promote_and_rollback(repo, tmp_path):
    s = summary(tmp_path / "s.json")

    def cli(*args):
        return subprocess.run([XSTILTS, "promote", "--repo", str(repo), *args], capture_output=True, text=True,
                              timeout=120, env=ENV, cwd=tmp_path)

    ok = cli("--summary", str(s), "--target", "xnli", "--condition", "squad", "--out", "rec.json")
    assert ok.returncode == 0, ok.stderr
    assert "promoted" in ok.stdout and "xstilts-xnli#prod#1" in ok.stdout
    assert json.loads((tmp_path / "rec.json").read_text())["candidate"]["condition"] == "squad"
    assert (tmp_path / "rec.md").exists()
    bad = cli("--summary", str(s), "--target", "nope")
    assert bad.returncode == 1 and "error:" in bad.stderr and "known targets" in bad.stderr
    (tmp_path / "plain").mkdir()
    notgit = subprocess.run([XSTILTS, "promote", "--repo", str(tmp_path / "plain"), "--summary", str(s)], capture_output=True,
                            text=True, timeout=120, env=ENV)
    assert notgit.returncode == 1 and "not a git repository" in notgit.stderr
    assert cli("--rollback", "--target", "xnli").returncode == 1  # only one prod version so far


# ---- the pipeline's gate step (gate_run): clone the registry, commit the candidate record, gate, push ----------------

def results_files(root: Path, xnli_squad: float) -> list[Path]:
    """Evaluation results of a run (xnli × none/squad, 100 examples per language), as the eval step writes them."""
    from grid_results import write_result

    return [write_result(root / condition, "xnli", condition, {"en": score, "de": score})
            for condition, score in (("none", 0.70), ("squad", xnli_squad))]


@pytest.fixture
def remote(repo, tmp_path):
    """The registry as the pipeline sees it: a bare repository to clone and push to."""
    bare = tmp_path / "registry.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True, env=ENV)
    return bare


def test_gate_run_promotes_then_rejects_and_pushes(remote, tmp_path):
    from xstilts.ops.promotion import gate_run

    first = gate_run(results_files(tmp_path / "r1", 0.80), tmp_path / "g1", str(remote), ["xnli"], 0.01,
                     run_name="run-1")
    assert not first["skipped"] and [d["decision"] for d in first["decisions"]] == ["promoted"]
    assert "xstilts-xnli@v1.0.0" in tags(remote)  # pushed, not only tagged in the temporary clone
    assert json.loads(git(remote, "show", "HEAD:xstilts-runs/run-1.json"))["task_average"]["xnli"]["squad"] == 0.80
    second = gate_run(results_files(tmp_path / "r2", 0.76), tmp_path / "g2", str(remote), ["xnli"], 0.01,
                      run_name="run-2")
    d = second["decisions"][0]
    assert d["decision"] == "rejected" and d["prod"]["score"] == pytest.approx(0.80)
    assert d["candidate"]["score"] == pytest.approx(0.76) and d["prod_after"] == "v1.0.0"
    assert "xstilts-xnli@v1.1.0" in tags(remote) and current_prod(read_registry(remote, "xstilts-xnli")) == "v1.0.0"
    md = (tmp_path / "g2" / "decision.md").read_text()
    assert "not promoted" in md and "76.00" in md and "80.00" in md  # the decision and both scores
    recorded = json.loads((tmp_path / "g2" / "decisions.json").read_text())
    assert recorded["decisions"][0]["decision"] == "rejected" and (tmp_path / "g2" / "lineage.json").exists()

    # The report shows the decision next to the scores, in Markdown, HTML and summary.json.
    from xstilts.evaluate.report import build_report

    summary = build_report(results_files(tmp_path / "r3", 0.76), tmp_path / "report", decision=tmp_path / "g2")
    assert summary["promotion"]["decisions"][0]["decision"] == "rejected"
    assert "## Promotion gate" in (tmp_path / "report" / "report.md").read_text()
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Promotion gate</h2>" in html and "<table>" in html.split("Promotion gate")[-1]


def test_gate_run_grid_artifact_skip_and_errors(remote, tmp_path, monkeypatch):
    from xstilts.ops.promotion import gate_run

    grid = gate_run(results_files(tmp_path / "r1", 0.80), tmp_path / "g1", str(remote), [], 0.0, run_name="a")
    assert [d["artifact"] for d in grid["decisions"]] == ["xstilts-grid"]
    skipped = gate_run(results_files(tmp_path / "r2", 0.80), tmp_path / "g2", "", [], 0.0)
    assert skipped == {"skipped": True, "decisions": []}
    assert "not configured" in (tmp_path / "g2" / "decision.md").read_text()
    with pytest.raises(PromotionError, match="promotion_targets pawsx were not evaluated"):
        gate_run(results_files(tmp_path / "r3", 0.8), tmp_path / "g3", str(remote), ["pawsx"], 0.0)
    monkeypatch.setenv("XSTILTS_GIT_TOKEN", "s3cr3t-token")
    with pytest.raises(PromotionError, match="cloning registry") as e:
        gate_run(results_files(tmp_path / "r4", 0.8), tmp_path / "g4", str(tmp_path / "missing.git"), [], 0.0)
    assert "s3cr3t" not in str(e.value)
    assert not (tmp_path / "g3").exists() and not (tmp_path / "g4").exists()  # nothing half-written


@pytest.mark.parametrize("score, message", [(57.3, "scores are fractions in [0, 1] (summary.json's scale), got 57.3"),
                                            (-3.5, "got -3.5"), (float("nan"), "expected a finite number"),
                                            ("0.7", "expected a finite number, got '0.7'")])
def test_scores_outside_the_summary_scale_are_refused(repo, tmp_path, score, message):
    s = summary(tmp_path / "s.json", xnli={"none": score, "squad": 0.75}, grid={"none": 0.7, "squad": 0.7})
    with pytest.raises(PromotionError, match=re.escape(message)):
        promote(repo, s, target="xnli", condition="none", out=None)
    assert tags(repo) == []
