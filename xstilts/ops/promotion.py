"""Promotion gate for scheduled retraining, on DVC GTO's git-tag model registry.

A model is a GTO artifact (default `xstilts-<target>`, or `xstilts-grid` for the XTREME average over tasks):

  * registration = an annotated GTO version tag   `xstilts-xnli@v1.3.0`  (on the candidate's commit)
  * promotion    = an annotated GTO stage tag      `xstilts-xnli#prod#N`  (N: GTO's per-artifact counter)

  * rollback     = `xstilts-xnli#prod!#N` (GTO unassignment of the current version) + `xstilts-xnli#prod#N+1`
                   (re-assignment of the previous prod version)

All are written with the `gto` Python API (`gto.api.register` / `assign` / `unassign`), so `gto show` and
`gto history` read them; GTO shows as `#prod` the highest semver whose assignment is still active, which is why a
rollback unassigns. The registry is *read* here from `git for-each-ref` (parsed with GTO's own tag parser), ordering
stage events by their #N counter rather than by second-resolution tag timestamps.

Each tag message is JSON carrying the candidate's score and provenance (summary path, md5 of summary.json, target,
condition), so a later gate reads the current prod score from the tags alone, without the old files.

The gate: promote iff the lower end of the candidate's 95 % interval (summary.json's statistics: Student's t over
seeds, or a bootstrap over test examples with one seed) is ≥ `prod - tolerance` (absolute, in score fractions): the
candidate is not worse than prod beyond the tolerance, with 95 % confidence (non-inferiority). A summary without
intervals (an older format) falls back to the point estimate. No current prod → promote.
Either way a new version is registered; `prod` is assigned only when the gate passes. A decision record is written
as JSON plus a Markdown snippet for the report.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import subprocess
from pathlib import Path
from typing import Any
from xstilts.env import git_token
from xstilts.errors import XstiltsError
from xstilts.io import atomic_write_text, read_json, shorten, write_json


STAGE = "prod"
PREFIX = "xstilts-"
GRID = "grid"
BUMPS = ("patch", "minor", "major")
FIRST_VERSION = "v1.0.0"
SCHEMA = "xstilts-promotion/1"
EPS = 1e-12  # float slack so that e.g. 0.79 >= 0.80 - 0.01 holds


class PromotionError(XstiltsError):
    """The promotion gate cannot run: bad repo, summary, target/condition, tolerance or registry state."""


# ---------------------------------------------------------------- candidate


def artifact_name(target: str | None) -> str:
    return PREFIX + (target or GRID)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _score(value: Any, where: str) -> float:
    """A score as summary.json holds it: a fraction in [0, 1] (57.3 is a percentage, -3.5 no score at all)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PromotionError(f"{where}: expected a finite number, got {shorten(value)}")
    if not 0 <= value <= 1:
        raise PromotionError(f"{where}: scores are fractions in [0, 1] (summary.json's scale), got {value!r}")
    return float(value)


def load_candidate(summary: str | Path, target: str | None = None, condition: str | None = None) -> dict:
    """The candidate's score from a report's summary.json: `task_average[target][condition]`, or
    `xtreme_average[condition]` when no target is given. No condition → the best-scoring one."""
    path = Path(summary)
    if not path.is_file():
        raise PromotionError(f"summary {path} does not exist (expected the report's summary.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PromotionError(f"summary {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise PromotionError(f"summary {path}: expected a JSON object, got {type(data).__name__}")
    if target is None:
        key, table = "xtreme_average", data.get("xtreme_average")
        if not isinstance(table, dict) or not table:
            raise PromotionError(f"summary {path}: missing or empty `xtreme_average` {{condition: score}}")
    else:
        averages = data.get("task_average")
        if not isinstance(averages, dict) or not averages:
            raise PromotionError(f"summary {path}: missing or empty `task_average` {{target: {{condition: score}}}}")
        if target not in averages:
            raise PromotionError(f"unknown target {target!r} in {path}; known targets: {', '.join(sorted(averages))}")
        key, table = f"task_average[{target}]", averages[target]
        if not isinstance(table, dict) or not table:
            raise PromotionError(f"summary {path}: `{key}` must be a non-empty {{condition: score}} object")
    scores = {str(c): _score(v, f"summary {path}: `{key}[{c}]`") for c, v in table.items()}
    if condition is None:
        condition = max(sorted(scores), key=lambda c: scores[c])
    elif condition not in scores:
        raise PromotionError(f"unknown condition {condition!r} in {path} `{key}`; known conditions: "
                             f"{', '.join(sorted(scores))}")
    metric = data.get("metric", {}).get(target) if target and isinstance(data.get("metric"), dict) else None
    return {"score": scores[condition], "target": target, "condition": condition, "metric": metric,
            **_interval(data, path, target, condition), "summary": str(path.resolve()), "summary_md5": _md5(path)}


def _interval(data: dict, path: Path, target: str | None, condition: str) -> dict:
    """The candidate score's 95 % interval from summary.json's statistics (format 2), or {} for an older summary."""
    statistics = data.get("statistics")
    if not isinstance(statistics, dict):
        return {}
    table = statistics.get("xtreme_average") if target is None else statistics.get("task_average", {}).get(target)
    entry = table.get(condition) if isinstance(table, dict) else None
    ci = entry.get("ci95") if isinstance(entry, dict) else None
    if not (isinstance(ci, list) and len(ci) == 2):
        raise PromotionError(f"summary {path}: statistics without a ci95 for "
                             f"{'the XTREME average' if target is None else target} × {condition}")
    low, high = (_score(v, f"summary {path}: ci95 of {condition}") for v in ci)
    return {"ci95": [low, high], "ci95_method": entry.get("ci95_method", ""), "n_seeds": entry.get("n_seeds")}


# ---------------------------------------------------------------- registry (read)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise PromotionError(f"git {' '.join(args)} failed in {repo}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def check_repo(repo: str | Path) -> Path:
    repo = Path(repo)
    if not repo.is_dir():
        raise PromotionError(f"--repo {repo} is not a directory")
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if out.returncode != 0:
        raise PromotionError(f"--repo {repo} is not a git repository (GTO keeps the registry in git tags); "
                             "run `git init` and commit, or point --repo at one")
    top = Path(out.stdout.strip())
    if subprocess.run(["git", "-C", str(top), "rev-parse", "--verify", "-q", "HEAD"], capture_output=True).returncode:
        raise PromotionError(f"git repository {top} has no commits yet; commit something to tag")
    return top


def _meta(message: str) -> dict:
    try:
        meta = json.loads(message)
    except (json.JSONDecodeError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def read_registry(repo: Path, artifact: str) -> dict:
    """{"versions": {version: {tag, commit, meta}}, "stage": [{tag, counter, action, commit, version, meta}] by counter}."""
    from gto.constants import COUNTER, Action
    from gto.tag import parse_name

    raw = _git(repo, "for-each-ref", "refs/tags",
               "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(contents)%00%1e")
    versions: dict[str, dict] = {}
    deregistered: set[str] = set()
    stage: list[dict] = []
    for record in raw.split("\x1e"):
        record = record.lstrip("\n")
        if not record:
            continue
        name, obj, peeled, contents = (record.split("\x00") + ["", "", ""])[:4]
        parsed = parse_name(name, raise_on_fail=False)
        if not parsed or parsed.get("name") != artifact:
            continue
        commit = peeled or obj
        action = parsed.get("action")
        if action == Action.REGISTER:
            versions[parsed["version"]] = {"tag": name, "commit": commit, "meta": _meta(contents)}
        elif action == Action.DEREGISTER:
            deregistered.add(parsed["version"])
        elif action in (Action.ASSIGN, Action.UNASSIGN) and parsed.get("stage") == STAGE and COUNTER in parsed:
            stage.append({"tag": name, "counter": parsed[COUNTER], "action": action.value, "commit": commit,
                          "meta": _meta(contents)})
    for v in deregistered:
        versions.pop(v, None)
    by_commit = {info["commit"]: v for v, info in versions.items()}
    for entry in stage:
        entry["version"] = entry["meta"].get("version") or by_commit.get(entry["commit"])
    stage.sort(key=lambda e: e["counter"])
    return {"versions": versions, "stage": stage}


def current_prod(registry: dict) -> str | None:
    """The version `prod` points at now: the newest stage event (an unassignment leaves no prod)."""
    if not registry["stage"]:
        return None
    last = registry["stage"][-1]
    return last["version"] if last["action"] == "assign" else None


def _sort_key(version: str):
    from gto.versions import SemVer

    return SemVer(version)  # ordered by semver precedence


def latest_version(registry: dict) -> str | None:
    return max(registry["versions"], key=_sort_key, default=None)


def _normalize(version: str) -> str:
    from gto.exceptions import GTOException
    from gto.versions import SemVer

    version = version if version.startswith("v") else "v" + version
    try:
        return SemVer(version).version
    except GTOException:
        raise PromotionError(f"--version {version!r} is not a semantic version like v1.2.0") from None


def next_version(registry: dict, bump: str = "minor", version: str | None = None) -> str:
    from gto.versions import SemVer

    if bump not in BUMPS:
        raise PromotionError(f"--bump must be one of {', '.join(BUMPS)}, got {bump!r}")
    if version:
        version = _normalize(version)
        if version in registry["versions"]:
            raise PromotionError(f"version {version} is already registered ({registry['versions'][version]['tag']})")
        return version
    last = latest_version(registry)
    if last is None:
        return FIRST_VERSION
    return SemVer(last).bump(**{f"bump_{bump}": True}).version


def prod_score(registry: dict, version: str) -> dict:
    info = registry["versions"].get(version)
    meta = info["meta"] if info else {}
    if "score" not in meta:
        raise PromotionError(f"current prod version {version} has no xstilts score in its tag message "
                             f"({info['tag'] if info else 'version tag missing'}); cannot gate against it")
    return meta


# ---------------------------------------------------------------- decisions


def _fmt(score: float | None) -> str:
    return "—" if score is None else f"{100 * score:.2f}"


def decision_markdown(d: dict) -> str:
    cand, prod = d.get("candidate") or {}, d.get("prod") or {}
    lines = [f"### Promotion gate — `{d['artifact']}`", ""]
    if d["decision"] == "rollback":
        lines += [f"**Decision: rollback** — `{STAGE}` moved from {d['rolled_back_from']} back to {d['prod_after']}"
                  + (" (dry run, no tags written)" if d["dry_run"] else "") + ".", ""]
    else:
        verdict = "promoted" if d["decision"] == "promoted" else "not promoted"
        lines += [f"**Decision: {verdict}** — {d['reason']}" + (" (dry run, no tags written)" if d["dry_run"] else ""),
                  ""]
    lines += ["| | version | score (×100) | condition |", "|---|---|---|---|",
              f"| {'restored' if d['decision'] == 'rollback' else 'candidate'} | {cand.get('version', '—')} | {_fmt(cand.get('score'))} | {cand.get('condition') or '—'} |",
              f"| prod before | {prod.get('version') or '—'} | {_fmt(prod.get('score'))} | "
              f"{prod.get('condition') or '—'} |", ""]
    delta = d.get("delta")
    ci = cand.get("ci95")
    gate = ("lower end of the candidate's 95 % CI ≥ prod − tolerance" if ci else "candidate ≥ prod − tolerance")
    if ci:
        lines.append(f"Candidate 95 % CI [{_fmt(ci[0])}, {_fmt(ci[1])}] ({cand.get('ci95_method') or 'see summary'}); "
                     "prod's score is taken as fixed (the registry keeps scores, not predictions: `xstilts compare` "
                     "pairs two runs example by example).")
    lines.append(f"Δ {'—' if delta is None else f'{100 * delta:+.2f}'} points · tolerance {100 * d['tolerance']:.2f} "
                 f"points (gate: {gate}) · prod after: {d.get('prod_after') or '—'}"
                 + (f" · summary md5 `{cand['summary_md5'][:8]}`" if cand.get("summary_md5") else ""))
    if d.get("tags"):
        lines.append("Tags: " + ", ".join(f"`{t}`" for t in d["tags"]))
    return "\n".join(lines) + "\n"


def write_decision(decision: dict, out: str | Path) -> tuple[Path, Path]:
    out = Path(out)
    md = out.with_suffix(".md")
    write_json(out, decision)
    atomic_write_text(md, decision_markdown(decision))
    return out, md


def _gto(func, *args, **kwargs):
    from gto.exceptions import GTOException

    try:
        return func(*args, **kwargs)
    except GTOException as e:
        raise PromotionError(f"gto: {e}") from None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def promote(repo: str | Path, summary: str | Path, *, target: str | None = None, condition: str | None = None,
            artifact: str | None = None, tolerance: float = 0.0, version: str | None = None, bump: str = "minor",
            ref: str = "HEAD", dry_run: bool = False, out: str | Path | None = "decision.json") -> dict:
    """Register the candidate as a new version and assign `prod` iff it passes the gate. Returns the decision."""
    from gto import api

    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise PromotionError(f"--tolerance must be a non-negative number (absolute score fraction), got {tolerance}")
    repo = check_repo(repo)
    cand = load_candidate(summary, target, condition)
    artifact = artifact or artifact_name(target)
    commit = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    registry = read_registry(repo, artifact)
    warnings = []
    for v, info in registry["versions"].items():
        if info["commit"] == commit:
            warnings.append(f"commit {commit[:10]} already carries {artifact} {v} ({info['tag']}); GTO registers one "
                                 "version per commit — commit the retrained model's pointers (e.g. dvc.lock) first, "
                                 "or pass --ref")
    if warnings and not dry_run:
        raise PromotionError(warnings[0])
    new_version = next_version(registry, bump, version)
    prod_version = current_prod(registry)
    prod = None
    if prod_version:
        meta = prod_score(registry, prod_version)
        if (meta.get("target") or None) != target:
            raise PromotionError(f"{artifact} prod {prod_version} was scored on target {meta.get('target') or GRID!r}, "
                                 f"the candidate on {target or GRID!r}; pass the matching --target or --artifact")
        prod = {"version": prod_version, "score": float(meta["score"]), "condition": meta.get("condition"),
                "summary_md5": meta.get("summary_md5")}
    if prod is None:
        passed, delta = True, None
        reason = f"no current {STAGE} version, so the first candidate is promoted"
    elif "ci95" in cand:  # non-inferiority at 95 %: the interval's lower end must clear prod − tolerance
        delta = cand["score"] - prod["score"]
        low, high = cand["ci95"]
        passed = low >= prod["score"] - tolerance - EPS
        cmp = "≥" if passed else "<"
        reason = (f"candidate {_fmt(cand['score'])}, 95 % CI [{_fmt(low)}, {_fmt(high)}]: its lower end {_fmt(low)} "
                  f"{cmp} prod {prod['version']} {_fmt(prod['score'])} − tolerance {_fmt(tolerance)} "
                  f"(Δ {100 * delta:+.2f} points, Δ interval [{100 * (low - prod['score']):+.2f}, "
                  f"{100 * (high - prod['score']):+.2f}])")
    else:
        delta = cand["score"] - prod["score"]
        passed = cand["score"] >= prod["score"] - tolerance - EPS
        cmp = "≥" if passed else "<"
        reason = (f"candidate {_fmt(cand['score'])} {cmp} prod {prod['version']} {_fmt(prod['score'])} − tolerance "
                  f"{_fmt(tolerance)} (Δ {100 * delta:+.2f} points; an older summary without intervals: point "
                  "estimate only)")
        if not passed:
            reason += f"; {new_version} is registered but {STAGE} stays on {prod['version']}"
    candidate = {**cand, "version": new_version, "commit": commit}
    decision = {"schema": SCHEMA, "decision": "promoted" if passed else "rejected", "passed": passed, "reason": reason,
                "artifact": artifact, "stage": STAGE, "repo": str(repo), "candidate": candidate, "prod": prod,
                "delta": delta, "tolerance": float(tolerance), "threshold": None if prod is None else
                prod["score"] - tolerance, "prod_after": new_version if passed else (prod or {}).get("version"),
                "dry_run": dry_run, "tags": [], "warnings": warnings, "decided_at": _now()}
    if not dry_run:
        message = json.dumps({"schema": SCHEMA, **{k: candidate[k] for k in (
            "score", "target", "condition", "metric", "summary", "summary_md5") if k in candidate},
            **({"ci95": candidate["ci95"]} if "ci95" in candidate else {})}, sort_keys=True)
        event = _gto(api.register, str(repo), artifact, commit, version=new_version, message=message)
        decision["tags"].append(getattr(event, "tag", f"{artifact}@{new_version}"))
        if passed:
            stage_msg = json.dumps({"schema": SCHEMA, "version": new_version, "score": cand["score"],
                                    "prod_before": prod_version, "tolerance": float(tolerance)}, sort_keys=True)
            event = _gto(api.assign, str(repo), artifact, STAGE, version=new_version, message=stage_msg, force=True)
            decision["tags"].append(getattr(event, "tag", None) or _latest_stage_tag(repo, artifact))
    if out:
        write_decision(decision, out)
    return decision


def _latest_stage_tag(repo: Path, artifact: str) -> str | None:
    stage = read_registry(repo, artifact)["stage"]
    return stage[-1]["tag"] if stage else None


def rollback_target(registry: dict) -> tuple[str, str]:
    """(current prod, version to restore): the newest earlier prod assignment whose version was neither the current
    one nor rolled back from before — so repeated rollbacks walk further back instead of flip-flopping."""
    current = current_prod(registry)
    if current is None:
        raise PromotionError(f"no version is in `{STAGE}`; nothing to roll back")
    skip = {current} | {e["meta"].get("rollback_from") for e in registry["stage"]} \
        | {e["version"] for e in registry["stage"] if e["action"] == "unassign"}
    for entry in reversed(registry["stage"][:-1]):
        if entry["action"] == "assign" and entry["version"] and entry["version"] not in skip \
                and entry["version"] in registry["versions"]:
            return current, entry["version"]
    raise PromotionError(f"{STAGE} history has no earlier version to roll back to (current: {current})")


def rollback(repo: str | Path, artifact: str, *, dry_run: bool = False,
             out: str | Path | None = "decision.json") -> dict:
    from gto import api

    repo = check_repo(repo)
    registry = read_registry(repo, artifact)
    current, previous = rollback_target(registry)
    meta_of = lambda v: registry["versions"][v]["meta"]  # noqa: E731
    summarize = lambda v: {"version": v, "score": meta_of(v).get("score"),  # noqa: E731
                           "condition": meta_of(v).get("condition"), "summary_md5": meta_of(v).get("summary_md5")}
    restored, before = summarize(previous), summarize(current)
    delta = None if restored["score"] is None or before["score"] is None else restored["score"] - before["score"]
    decision = {"schema": SCHEMA, "decision": "rollback", "passed": True, "artifact": artifact, "stage": STAGE,
                "repo": str(repo), "reason": f"{STAGE} rolled back from {current} to {previous}",
                "rolled_back_from": current, "candidate": restored, "prod": before, "delta": delta,
                "tolerance": 0.0, "prod_after": previous, "dry_run": dry_run, "tags": [], "decided_at": _now()}
    if not dry_run:
        # GTO shows the highest semver with an active assignment as the stage's version, so the rolled-back version
        # is unassigned (`name#prod!#N`) before `prod` is re-assigned to the previous one (`name#prod#N+1`).
        msg = json.dumps({"schema": SCHEMA, "version": current, "rollback_to": previous}, sort_keys=True)
        event = _gto(api.unassign, str(repo), artifact, stage=STAGE, version=current, message=msg)
        decision["tags"].append(getattr(event, "tag", None) or _latest_stage_tag(repo, artifact))
        msg = json.dumps({"schema": SCHEMA, "version": previous, "score": restored["score"],
                          "rollback_from": current}, sort_keys=True)
        event = _gto(api.assign, str(repo), artifact, STAGE, version=previous, message=msg, force=True)
        decision["tags"].append(getattr(event, "tag", None) or _latest_stage_tag(repo, artifact))
    if out:
        write_decision(decision, out)
    return decision


# ---------------------------------------------------------------- the pipeline's gate step

DECISIONS_FILE = "decisions.json"
POINTER_DIR = "xstilts-runs"  # candidate records committed to the registry repo, one file per run
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "xstilts pipeline", "GIT_AUTHOR_EMAIL": "xstilts@localhost",
                "GIT_COMMITTER_NAME": "xstilts pipeline", "GIT_COMMITTER_EMAIL": "xstilts@localhost"}


def _git_env(tmp: Path) -> dict:
    """git's environment for the registry: no prompts; a token (if any) from XSTILTS_GIT_TOKEN through GIT_ASKPASS,
    so it never appears in a URL, an argument list or a log line."""
    import os

    env = {**os.environ, **GIT_IDENTITY, "GIT_TERMINAL_PROMPT": "0"}
    if git_token():
        askpass = tmp / "askpass.sh"
        askpass.write_text('#!/bin/sh\ncase "$1" in Username*) echo "${XSTILTS_GIT_USER:-x-access-token}";; '
                           '*) echo "$XSTILTS_GIT_TOKEN";; esac\n')
        askpass.chmod(0o700)
        env["GIT_ASKPASS"] = str(askpass)
    return env


def _run_git(args: list[str], cwd: Path | None, env: dict, what: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise PromotionError(f"{what} failed: {lines[-1] if lines else f'git exited with {out.returncode}'}")
    return out.stdout


def gate_run(result_files: list[str | Path], out_dir: str | Path, registry_repo: str = "",
             targets: list[str] | None = None, tolerance: float = 0.0, condition: str | None = None,
             run_name: str = "", push: bool = True) -> dict:
    """The pipeline's promotion step, after a (scheduled) run's evaluations.

    Scores the run's results (the report's summary), then — if `registry_repo` (a git URL or path holding the GTO
    tags) is set — clones it, commits a record of this run's candidate (xstilts-runs/<run>.json: scores and md5s)
    so each run has its own commit to tag, applies the gate to each artifact (`xstilts-<target>` for each of
    `targets`, or `xstilts-grid` on the XTREME average when none are given), and pushes the commit and tags.
    Writes out_dir/{summary.json, decisions.json, decision.md}; returns {"decisions": [...], "skipped": bool}."""
    import tempfile

    from xstilts.provenance import Provenance
    from xstilts.ops.stepcache import lazy, run_cached

    provenance = Provenance("promote", inputs={f"results[{i}]": f for i, f in enumerate(result_files)},
                            params={"registry_repo": registry_repo, "targets": list(targets or []),
                                    "tolerance": tolerance, "condition": condition or ""})
    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise PromotionError(f"promotion_tolerance must be a non-negative number (score fraction), got {tolerance}")
    with tempfile.TemporaryDirectory(prefix="xstilts-summary-") as scratch:  # locally: a cached step of its own
        run_cached("summarize", lazy("xstilts.evaluate.summary:write_summary", light=True),
                   inputs={"result_files": [str(f) for f in result_files]},
                   outputs={"out_path": str(Path(scratch) / "summary.json")}, whole_step=False)
        summary = read_json(Path(scratch) / "summary.json")
    unknown = sorted(set(targets or []) - set(summary["targets"]))
    if unknown:
        raise PromotionError(f"promotion_targets {', '.join(unknown)} were not evaluated in this run "
                             f"(targets: {', '.join(summary['targets'])})")
    from xstilts.io import atomic_dir

    from xstilts.evaluate.summary import SUMMARY_INPUTS, results_fingerprint

    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "summary.json", summary)
        write_json(tmp / SUMMARY_INPUTS, results_fingerprint(result_files))  # the report reuses the summary
        decisions: list[dict] = []
        if registry_repo:
            with tempfile.TemporaryDirectory(prefix="xstilts-registry-") as work:
                work = Path(work)
                env = _git_env(work)
                clone = work / "registry"
                _run_git(["clone", "-q", registry_repo, str(clone)], None, env, f"cloning registry {registry_repo!r}")
                _run_git(["fetch", "-q", "--tags"], clone, env, "fetching registry tags")
                name = run_name or f"run-{_now().replace(':', '')}"
                record = {"schema": SCHEMA, "run": name, "summary_md5": _md5(tmp / "summary.json"),
                          "task_average": summary["task_average"], "xtreme_average": summary["xtreme_average"]}
                pointer = clone / POINTER_DIR / f"{name}.json"
                pointer.parent.mkdir(exist_ok=True)
                pointer.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
                _run_git(["add", str(pointer.relative_to(clone))], clone, env, "staging the candidate record")
                _run_git(["commit", "-q", "-m", f"xstilts candidate from {name}"], clone, env,
                         "committing the candidate record")
                for target in (targets or [None]):
                    decisions.append(promote(clone, tmp / "summary.json", target=target, condition=condition,
                                             tolerance=tolerance, out=None))
                if push:
                    new_tags = [t for d in decisions for t in d["tags"] if t]
                    _run_git(["push", "-q", "origin", "HEAD", *[f"refs/tags/{t}" for t in new_tags]], clone, env,
                             f"pushing the candidate commit and {len(new_tags)} tags to {registry_repo!r}")
        for d in decisions:
            d["repo"] = registry_repo  # the clone was temporary
        write_json(tmp / DECISIONS_FILE, {"skipped": not registry_repo, "decisions": decisions})
        md = "\n".join(decision_markdown(d) for d in decisions) if decisions else (
            "**Promotion gate:** not configured for this run (`registry_repo` is empty): no model was registered "
            "or promoted.\n")
        atomic_write_text(tmp / "decision.md", md)
        provenance.record(tmp)
    return {"skipped": not registry_repo, "decisions": decisions}
