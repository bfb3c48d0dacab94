"""Operate the compiled pipeline on a Kubeflow Pipelines endpoint through `kfp.Client`: upload it (or a new version
of it), submit a run, schedule a recurring run, list recent runs, audit a run's lineage. `xstilts/cli/kfp.py` wraps
these as `xstilts upload`, `submit`, `schedule`, `runs` and `lineage RUN_ID --host`.

Parameters are checked against the compiled pipeline's root inputs before any request. Failures become XstiltsErrors
with one clear message: endpoint unreachable, token refused (HTTP 401/403, or a redirect to a login page), other API
errors with their status and the server's message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import yaml

from xstilts.config import KFP_EXPERIMENT, KFP_NAMESPACE, KFP_SERVICE_ACCOUNT, PIPELINE_FILE, PIPELINE_NAME
from xstilts.errors import ConfigError, XstiltsError
from xstilts.provenance import LINEAGE_FILE, LineageError
from xstilts.ops.lineage import link

DEFAULT_NAMESPACE = KFP_NAMESPACE
DEFAULT_PIPELINE_NAME = PIPELINE_NAME
DEFAULT_EXPERIMENT = KFP_EXPERIMENT
DEFAULT_SERVICE_ACCOUNT = KFP_SERVICE_ACCOUNT
_PACKAGED_FILE = Path(__file__).resolve().parent / "compiled" / "xstilts.yaml"
REQUEST_TIMEOUT = (10, 120)  # seconds to connect, to read an answer (kfp.Client sets none: it would wait forever)
API_PREFIX = "/apis/v2beta1"
HOST_EXAMPLES = ("e.g. https://kubeflow.example.com/pipeline, or http://localhost:8080 after "
                 "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80`")


class KfpError(XstiltsError):
    """A Kubeflow Pipelines operation failed (the message says why)."""


class KfpUnreachableError(KfpError):
    """No answer from the endpoint: connection refused, unknown host, timeout, TLS failure."""


class KfpAuthError(KfpError):
    """The endpoint refused the request's credentials (HTTP 401/403) or redirected it to a login page."""


class KfpApiError(KfpError):
    """The API answered with an error status (the message has the status and the server's message)."""


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom: `host` is the Pipelines API/UI base URL, `namespace` the (profile) namespace that owns
    the pipeline, experiments and runs, `token` a bearer token sent with every request."""

    host: Optional[str]
    namespace: str = DEFAULT_NAMESPACE
    token: Optional[str] = None

    @property
    def url(self) -> str:
        if not self.host or not self.host.strip():
            raise KfpError(f"no Kubeflow Pipelines endpoint: pass --host or set KFP_HOST ({HOST_EXAMPLES})")
        host = self.host.strip().rstrip("/")
        if not re.match(r"https?://[^/]", host):
            raise KfpError(f"--host/KFP_HOST must be an http:// or https:// URL ({HOST_EXAMPLES}), got {self.host!r}")
        return host


@dataclass(frozen=True)
class UploadResult:
    pipeline_id: str
    pipeline_name: str
    version_id: str
    version_name: str
    created: bool  # a new pipeline (its first version takes the pipeline's name, as the KFP server does)
    url: str


@dataclass(frozen=True)
class RunResult:
    run_id: str
    experiment_id: str
    parameters: dict
    url: str


@dataclass(frozen=True)
class ScheduleResult:
    recurring_run_id: str
    experiment_id: str
    cron: str
    parameters: dict
    url: str


@dataclass(frozen=True)
class RunRow:
    run_id: str
    name: str
    state: str
    created: str
    finished: str


# ---- the compiled pipeline and its parameters ------------------------------------------------------------------------

def pipeline_file(path: "str | Path | None" = None) -> Path:
    """The compiled pipeline YAML: `path`, or pipelines/compiled/xstilts.yaml (here, else next to this module)."""
    p = Path(path) if path is not None else PIPELINE_FILE
    if not p.exists() and (path is None or Path(path) == PIPELINE_FILE) and _PACKAGED_FILE.exists():
        p = _PACKAGED_FILE
    if not p.is_file():
        raise ConfigError(f"pipeline file {p} not found: compile it with `xstilts compile --out {p}`")
    if p.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"pipeline file {p}: expected the .yaml that `xstilts compile` writes")
    return p


def pipeline_spec(path: Path) -> dict:
    """The PipelineSpec document (the first YAML document; a second one is the Kubernetes platform spec)."""
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"pipeline file {path}: not valid YAML ({e})") from None
    spec = docs[0] if docs else None
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise ConfigError(f"pipeline file {path}: not a compiled KFP pipeline (no pipelineInfo/root)")
    return spec


def pipeline_inputs(path: Path) -> dict:
    """name → {parameterType, defaultValue, ...} of the pipeline's root input parameters."""
    return dict(pipeline_spec(path)["root"].get("inputDefinitions", {}).get("parameters", {}))


_TYPES = {  # KFP parameterType → (accepted Python types, what to call it in a message)
    "STRING": ((str,), "a string"),
    "NUMBER_INTEGER": ((int,), "an integer"),
    "NUMBER_DOUBLE": ((int, float), "a number"),
    "BOOLEAN": ((bool,), "true or false"),
    "LIST": ((list,), "a list, e.g. [a, b]"),
    "STRUCT": ((dict,), "a mapping, e.g. {key: value}"),
}


def resolve_params(path: Path, pairs: Iterable[str] = (), params_file: "str | Path | None" = None) -> dict:
    """The run parameters from a YAML file and `key=value` pairs (pairs win), checked against the pipeline's inputs.

    Values are YAML (`conditions=[none,mnli]`, `retrieval_layer=3`, `intermediate_train={epochs: 1}`); string
    parameters take the text as is. Mapping parameters are merged over the pipeline's defaults, so
    `intermediate_train={epochs: 1}` changes only the epochs. Parameters not given keep the compiled defaults
    (they are not sent)."""
    inputs = pipeline_inputs(path)
    given: dict[str, tuple[object, str]] = {}  # name → (value, where it came from)
    if params_file is not None:
        from xstilts.config import read_yaml_mapping

        loaded = read_yaml_mapping(params_file)  # UTF-8 text, one mapping, no key twice
        given.update({str(k): (v, str(params_file)) for k, v in loaded.items()})
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--param {pair!r}: expected name=value, e.g. conditions='[none,mnli]'")
        if inputs.get(name, {}).get("parameterType") == "STRING":
            given[name] = (text, "--param")
            continue
        try:
            given[name] = (yaml.safe_load(text), "--param")
        except yaml.YAMLError as e:
            raise ConfigError(f"--param {name}: value {text!r} is not valid YAML ({e})") from None
    unknown = sorted(set(given) - set(inputs))
    if unknown:
        raise ConfigError(f"unknown pipeline parameter(s) {', '.join(unknown)}; the pipeline "
                          f"({pipeline_spec(path)['pipelineInfo'].get('name')}, {path}) takes: {', '.join(sorted(inputs))}")
    params = {}
    for name, (value, source) in given.items():
        kind = inputs[name].get("parameterType", "")
        accepted, described = _TYPES.get(kind, ((object,), kind))
        if not isinstance(value, accepted) or (isinstance(value, bool) and kind != "BOOLEAN"):
            raise ConfigError(f"{source}: parameter {name!r} must be {described}, got {value!r}")
        if kind == "STRUCT":
            value = {**(inputs[name].get("defaultValue") or {}), **value}
        params[name] = value
    _check_run(inputs, params)
    return params


def _check_run(inputs: dict, params: dict) -> None:
    """The whole run as it will start — the compiled defaults with `params` over them — checked here (types,
    ranges, tasks, languages, conditions), not after the run has queued for a GPU. Data paths are the cluster's."""
    from xstilts.ops.preflight import check_run_params

    run = {name: spec.get("defaultValue") for name, spec in inputs.items() if "defaultValue" in spec}
    if set(run) | set(params) >= {"target_tasks", "conditions", "intermediate_train"}:  # an xstilts pipeline
        check_run_params({**run, **params}, "run parameters", local=False)


def check_cron(cron: str) -> str:
    """A 6-field cron expression (seconds first), as Kubeflow Pipelines' scheduler (robfig/cron) reads it."""
    fields = cron.split()
    if len(fields) != 6:
        hint = f"; prepend the seconds: '0 {' '.join(fields)}'" if len(fields) == 5 else ""
        raise ConfigError(f"--cron needs 6 fields (second minute hour day-of-month month day-of-week), e.g. "
                          f"'0 0 3 * * 0' for Sundays at 03:00; got {len(fields)} in {cron!r}{hint}")
    bad = [f for f in fields if not re.fullmatch(r"[0-9A-Za-z*?/,#-]+", f)]
    if bad:
        raise ConfigError(f"--cron {cron!r}: field(s) {', '.join(bad)} are not cron fields")
    return " ".join(fields)


def default_version_name(path: Path) -> str:
    """A UTC timestamp, plus the short git commit of the pipeline file's checkout (and `-dirty` if the file differs
    from it) when git knows it."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H%M%S")
    try:
        git = ["git", "-C", str(path.resolve().parent)]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0 or not commit.stdout.strip():
            return stamp
        stamp += "-" + commit.stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", str(path.resolve())], capture_output=True,
                                text=True, timeout=10)
        if status.returncode == 0 and status.stdout.strip():
            stamp += "-dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return stamp


# ---- the client --------------------------------------------------------------------------------------------------

def _client_class():
    import kfp

    class _Client(kfp.Client):
        def get_kfp_healthz(self, sleep_duration: int = 5):
            # Only called from __init__ when no namespace is set (--namespace '' or kubeflow). kfp tries 5 times,
            # 5 s apart, and then raises a TimeoutError that hides the cause: one try, the real error.
            _harden(self)
            return self._healthz_api.healthz_service_get_healthz()

    return _Client


def _harden(client) -> None:
    """Timeouts, few retries and no redirects on the client's HTTP pool (one ApiClient serves every service)."""
    import urllib3

    rest = client._run_api.api_client.rest_client
    if getattr(rest, "_xstilts_hardened", False):
        return
    pool = rest.pool_manager
    # Connection failures are retried (the request never left); read failures are not (a POST may have landed).
    pool.connection_pool_kw["retries"] = urllib3.Retry(total=2, connect=2, read=False, redirect=False, status=0,
                                                       other=0, backoff_factor=0.2)
    pool_request = pool.request
    # A redirect is an auth proxy sending us to its login page: report it instead of parsing the page as JSON.
    pool.request = lambda *args, **kwargs: pool_request(*args, **{**kwargs, "redirect": False})
    rest_request = rest.request

    def request(*args, _request_timeout=None, **kwargs):
        return rest_request(*args, _request_timeout=_request_timeout or REQUEST_TIMEOUT, **kwargs)

    rest.request = request
    rest._xstilts_hardened = True


def connect(endpoint: Endpoint):
    """A kfp.Client for the endpoint: bearer token from `endpoint.token`, never kube config or gcloud."""
    host = endpoint.url
    with warnings.catch_warnings(), _api_errors(endpoint):
        warnings.simplefilter("ignore", FutureWarning)  # "This client only works with Kubeflow Pipeline v2.0.0-beta.2"
        client = _client_class()(host=host, namespace=endpoint.namespace or "", existing_token=endpoint.token or None)
    _harden(client)
    return client


def _quiet():
    """kfp.Client prints `Experiment details: …` / `Run details: …` links to stdout; the commands print their own."""
    return contextlib.redirect_stdout(io.StringIO())


@contextlib.contextmanager
def _api_errors(endpoint: Endpoint) -> Iterator[None]:
    import kfp_server_api
    import urllib3

    host = endpoint.url
    try:
        yield
    except kfp_server_api.ApiException as e:
        raise _api_error(e, endpoint) from None
    except urllib3.exceptions.HTTPError as e:
        raise KfpUnreachableError(f"cannot reach Kubeflow Pipelines at {host}: {_reason(e)}") from None
    except OSError as e:
        raise KfpUnreachableError(f"cannot reach Kubeflow Pipelines at {host}: {e}") from None
    except ValueError as e:  # kfp's own checks, e.g. two pipelines or experiments of one name
        raise KfpApiError(f"Kubeflow Pipelines at {host}: {e}") from None


def _reason(e: Exception) -> str:
    reason = getattr(e, "reason", None)
    if isinstance(reason, Exception):  # MaxRetryError wraps the last connection error
        e = reason
    text = str(e)
    text = re.sub(r"^<[^>]*>:\s*", "", text)
    text = re.sub(r"^\w*Connection(Pool)?\(host=[^)]*\):\s*", "", text)
    text = text.replace("Failed to establish a new connection: ", "")
    if "Connection refused" in text:
        text += " (nothing listens there: is the port-forward or the service running?)"
    return text or type(e).__name__


def _server_message(e) -> str:
    body = e.body.decode("utf-8", "replace") if isinstance(e.body, bytes) else (e.body or "")
    body = body.strip()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error_message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()
    if body.startswith("<"):
        return "an HTML page, not the Pipelines API"
    return body[:300] if body else (e.reason or "")


def _api_error(e, endpoint: Endpoint) -> KfpError:
    host, status = endpoint.url, e.status or 0
    message = _server_message(e)
    if status == 0:
        return KfpUnreachableError(f"cannot reach Kubeflow Pipelines at {host}: {e.reason}")
    if 300 <= status < 400:
        location = dict(e.headers or {}).get("Location") or dict(e.headers or {}).get("location") or "elsewhere"
        return KfpAuthError(f"Kubeflow Pipelines at {host} redirected the request to {location} (HTTP {status}), "
                            f"most likely a login page: pass a bearer token with --token or KFP_TOKEN")
    if status in (401, 403):
        what = "refused the token" if endpoint.token else "refused the request without a token"
        fix = ("check that the token is valid and not expired" if endpoint.token else "pass one with --token or KFP_TOKEN")
        if status == 403 and endpoint.namespace:
            fix += f", and that its user may work in namespace {endpoint.namespace!r}"
        return KfpAuthError(f"Kubeflow Pipelines at {host} {what} (HTTP {status}{': ' + message if message else ''}); {fix}")
    if status == 404:
        return KfpApiError(f"Kubeflow Pipelines at {host} answered HTTP 404 ({message}): is {host} the Pipelines "
                           f"endpoint ({HOST_EXAMPLES})?")
    hint = " (it already exists)" if status == 409 else ""
    return KfpApiError(f"Kubeflow Pipelines at {host} answered HTTP {status} {e.reason or ''}".rstrip()
                       + f"{hint}: {message}")


def _require(value, what: str, endpoint: Endpoint) -> str:
    """Fail loudly when a response lacks an id (e.g. an HTML page parsed as an empty object)."""
    if not value:
        raise KfpApiError(f"Kubeflow Pipelines at {endpoint.url} answered without a {what}: is it the Pipelines "
                          f"API ({HOST_EXAMPLES})?")
    return value


def _name_filter(name: str) -> str:
    # As kfp.Client.get_pipeline_id builds it (operation 1 = EQUALS).
    return json.dumps({"predicates": [{"operation": 1, "key": "display_name", "stringValue": name}]})


def _find_pipeline_id(client, name: str, endpoint: Endpoint) -> Optional[str]:
    found = client.list_pipelines(filter=_name_filter(name), page_size=10, namespace=endpoint.namespace or None)
    pipelines = found.pipelines or []
    if len(pipelines) > 1:
        raise KfpApiError(f"{len(pipelines)} pipelines are named {name!r} in namespace {endpoint.namespace!r}: "
                          "delete the extra ones or pick another --name")
    return pipelines[0].pipeline_id if pipelines else None


def _experiment_id(client, name: str, endpoint: Endpoint, create: bool) -> str:
    with _quiet():
        if create:
            experiment = client.create_experiment(name, namespace=endpoint.namespace or None)
        else:
            try:
                experiment = client.get_experiment(experiment_name=name, namespace=endpoint.namespace or None)
            except ValueError as e:
                if str(e).startswith("No experiment is found"):
                    raise KfpError(f"no experiment named {name!r} in namespace {endpoint.namespace!r}") from None
                raise
    return _require(experiment.experiment_id, "experiment id", endpoint)


# ---- the operations ------------------------------------------------------------------------------------------------

def upload(endpoint: Endpoint, path: "str | Path | None" = None, name: str = DEFAULT_PIPELINE_NAME,
           version: Optional[str] = None) -> UploadResult:
    """Upload the pipeline as `name` if no pipeline of that name exists in the namespace (its first version takes
    the pipeline's name), else upload it as a new version named `version` (default: timestamp + git commit)."""
    path = pipeline_file(path)
    spec = pipeline_spec(path)
    version = version or default_version_name(path)
    client = connect(endpoint)
    with _api_errors(endpoint):
        pipeline_id = _find_pipeline_id(client, name, endpoint)
        if pipeline_id is None:
            with _quiet():
                pipeline = client.upload_pipeline(str(path), pipeline_name=name,
                                                  description=spec["pipelineInfo"].get("description"),
                                                  namespace=endpoint.namespace or None)
            pipeline_id = _require(pipeline.pipeline_id, "pipeline id", endpoint)
            versions = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
            latest = _require((versions.pipeline_versions or [None])[0], "pipeline version", endpoint)
            version_id, version_name, created = latest.pipeline_version_id, latest.display_name or name, True
        else:
            with _quiet():
                uploaded = client.upload_pipeline_version(str(path), pipeline_version_name=version,
                                                          pipeline_id=pipeline_id)
            version_id, version_name, created = uploaded.pipeline_version_id, uploaded.display_name or version, False
    version_id = _require(version_id, "pipeline version id", endpoint)
    return UploadResult(pipeline_id, name, version_id, version_name, created,
                        f"{endpoint.url}/#/pipelines/details/{pipeline_id}/version/{version_id}")


def _job(client, endpoint: Endpoint, path: Path, version_id: Optional[str], pipeline_name: str) -> dict:
    """run_pipeline/create_recurring_run arguments: the uploaded version, or the spec from the package file."""
    if not version_id:
        return {"pipeline_package_path": str(path)}
    pipeline_id = _find_pipeline_id(client, pipeline_name, endpoint)
    if pipeline_id is None:
        raise KfpError(f"no pipeline named {pipeline_name!r} in namespace {endpoint.namespace!r} to take version "
                       f"{version_id} from: upload it with `xstilts upload`, or pass --pipeline-name")
    return {"pipeline_id": pipeline_id, "version_id": version_id}


def submit(endpoint: Endpoint, path: "str | Path | None" = None, params: Optional[dict] = None,
           experiment: str = DEFAULT_EXPERIMENT, run_name: Optional[str] = None, version_id: Optional[str] = None,
           pipeline_name: str = DEFAULT_PIPELINE_NAME,
           service_account: Optional[str] = DEFAULT_SERVICE_ACCOUNT) -> RunResult:
    """Start one run (in `experiment`, created if missing) with `params` (see resolve_params)."""
    path = pipeline_file(path)
    params = dict(params or {})
    run_name = run_name or f"{pipeline_name} {dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}"
    client = connect(endpoint)
    with _api_errors(endpoint):
        job = _job(client, endpoint, path, version_id, pipeline_name)
        experiment_id = _experiment_id(client, experiment, endpoint, create=True)
        with _quiet():
            run = client.run_pipeline(experiment_id=experiment_id, job_name=run_name, params=params,
                                      service_account=service_account or None, **job)
    run_id = _require(run.run_id, "run id", endpoint)
    return RunResult(run_id, experiment_id, params, f"{endpoint.url}/#/runs/details/{run_id}")


def schedule(endpoint: Endpoint, cron: str, path: "str | Path | None" = None, params: Optional[dict] = None,
             name: str = f"{DEFAULT_PIPELINE_NAME} schedule", experiment: str = DEFAULT_EXPERIMENT,
             version_id: Optional[str] = None, pipeline_name: str = DEFAULT_PIPELINE_NAME,
             service_account: Optional[str] = DEFAULT_SERVICE_ACCOUNT) -> ScheduleResult:
    """Create an enabled recurring run on a 6-field cron: at most one run at a time, no catch-up of missed slots."""
    cron = check_cron(cron)
    path = pipeline_file(path)
    params = dict(params or {})
    client = connect(endpoint)
    with _api_errors(endpoint):
        job = _job(client, endpoint, path, version_id, pipeline_name)
        experiment_id = _experiment_id(client, experiment, endpoint, create=True)
        recurring = client.create_recurring_run(experiment_id=experiment_id, job_name=name, cron_expression=cron,
                                                max_concurrency=1, no_catchup=True, enabled=True, params=params,
                                                service_account=service_account or None, **job)
    recurring_id = _require(recurring.recurring_run_id, "recurring run id", endpoint)
    return ScheduleResult(recurring_id, experiment_id, cron, params,
                          f"{endpoint.url}/#/recurringrun/details/{recurring_id}")


def _when(value) -> str:
    if not isinstance(value, dt.datetime) or value.year <= 1970:  # unfinished runs carry the epoch
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def list_runs(endpoint: Endpoint, limit: int = 20, experiment: Optional[str] = None) -> list[RunRow]:
    """The `limit` most recent runs of the namespace (or of one experiment), newest first."""
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    client = connect(endpoint)
    with _api_errors(endpoint):
        experiment_id = _experiment_id(client, experiment, endpoint, create=False) if experiment else None
        listed = client.list_runs(page_size=limit, sort_by="created_at desc", experiment_id=experiment_id,
                                  namespace=endpoint.namespace or None)
    return [RunRow(r.run_id or "", r.display_name or "", str(r.state or ""), _when(r.created_at), _when(r.finished_at))
            for r in (listed.runs or [])[:limit]]


# ---- lineage of a run on the cluster -------------------------------------------------------------------------------
#
# Where the records come from (KFP 2.x REST API, v2beta1):
#   1. GET /apis/v2beta1/runs/{run_id} (kfp.Client.get_run): run_details.task_details lists every task with its
#      display name, state, and its input and output artifacts as ML Metadata ids ({name: {artifact_ids}}).
#   2. GET /apis/v2beta1/artifacts/{id} (ArtifactService, backend/api/v2beta1/artifacts.proto; not wrapped by
#      kfp_server_api 2.17, so called through the same authenticated ApiClient): the artifact's type and URI. Servers
#      still on ML Metadata do not return the artifact's custom properties (our md5, parent_md5s, code_commit, image
#      metadata) over REST; only gRPC to MLMD would, which the Pipelines endpoint does not expose. Servers without
#      MLMD (artifact.proto) return them as `metadata`, and then they are checked against lineage.json.
#   3. Each artifact's lineage.json (the full record: md5, inputs with their md5s, params, commit, image, data,
#      timing), read through the Pipelines UI's artifact endpoint GET /artifacts/get?source=&bucket=&key=&namespace=
#      — what the UI itself uses to show outputs. It needs no object-store credentials: the UI server reads the
#      store, after checking that the caller (same bearer token) may view the namespace.
# The artifacts' own bytes are not downloaded, so their md5s are taken from the records, not recomputed: the
# command says so. A parent's md5 recorded by a child must equal the parent's own record, and every artifact
# that KFP says a task read must be among the inputs its output records name.

LINEAGE_ARTIFACT_TYPES = {"system.Dataset", "system.Model", "system.Artifact", "Dataset", "Model", "Artifact"}
# Metrics, HTML and Markdown outputs are single files without a lineage record.
_STORE_SOURCES = {"minio": "minio", "s3": "s3", "gs": "gcs"}  # URI scheme → the UI's artifact `source`
_POD_MOUNTS = {"minio": "/minio", "s3": "/s3", "gs": "/gcs"}  # where the KFP v2 launcher puts a URI in the pod


@dataclass(frozen=True)
class RunLineage:
    run_id: str
    name: str
    state: str
    url: str
    artifacts: list  # linked lineage nodes (xstilts.ops.lineage.link) plus uri, artifact_id, output, task_name, task_state
    not_verified: list  # what could not be checked, one sentence each


def _call(client, path: str, query: Optional[list] = None, raw: bool = False):
    """GET `path` on the endpoint through kfp.Client's ApiClient (bearer token, timeouts, no redirects)."""
    api = client._run_api.api_client
    kwargs = dict(query_params=query or [], header_params={"Accept": "application/json"}, auth_settings=["Bearer"],
                  _return_http_data_only=True)
    if raw:
        return api.call_api(path, "GET", response_type=None, _preload_content=False, **kwargs).data
    return api.call_api(path, "GET", response_type="object", **kwargs)


def pod_path(uri: str) -> str:
    """The path the KFP v2 launcher gives an artifact URI inside a pod (what lineage.json records as input paths):
    minio://bucket/key → /minio/bucket/key, s3:// → /s3/, gs:// → /gcs/."""
    scheme, _, rest = uri.partition("://")
    return f"{_POD_MOUNTS[scheme]}/{rest}" if scheme in _POD_MOUNTS else uri


def _read_record(client, endpoint: Endpoint, uri: str, where: str) -> dict:
    import kfp_server_api

    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme not in _STORE_SOURCES or not bucket or not key:
        raise KfpError(f"{where}: cannot read {uri}/{LINEAGE_FILE}: only minio://, s3:// and gs:// artifact URIs "
                       f"can be read through the Pipelines UI")
    query = [("source", _STORE_SOURCES[scheme]), ("bucket", bucket), ("key", f"{key}/{LINEAGE_FILE}")]
    if endpoint.namespace:
        query.append(("namespace", endpoint.namespace))
    try:
        body = _call(client, "/artifacts/get", query, raw=True)
    except kfp_server_api.ApiException as e:
        if e.status in (401, 403) or 300 <= (e.status or 0) < 400 or not e.status:
            raise _api_error(e, endpoint) from None
        raise LineageError(f"{where}: cannot read its record {uri}/{LINEAGE_FILE} through the Pipelines UI's "
                           f"/artifacts/get (HTTP {e.status}: {_server_message(e)}): written before lineage was "
                           f"recorded, or --host is the API server rather than the UI ({HOST_EXAMPLES})") from None
    try:
        record = json.loads(body)
        record["step"], record["artifact_md5"], record["inputs"]
    except (ValueError, KeyError, TypeError) as e:
        raise LineageError(f"{where}: {uri}/{LINEAGE_FILE} is not a lineage record ({e!r})") from None
    return record


def _check_metadata(node: dict, metadata: Optional[dict], where: str) -> bool:
    """The KFP artifact metadata (when the server returns it) must say what lineage.json says."""
    if not metadata or "md5" not in metadata:
        return False
    if metadata["md5"] != node["artifact_md5"]:
        raise LineageError(f"{where}: KFP artifact metadata md5 {metadata['md5']}, but its {LINEAGE_FILE} records "
                           f"md5 {node['artifact_md5']}")
    recorded = {name: inp["md5"] for name, inp in node["inputs"].items()}
    if "parent_md5s" in metadata and dict(metadata["parent_md5s"] or {}) != recorded:
        raise LineageError(f"{where}: KFP artifact metadata parent_md5s {metadata['parent_md5s']}, but its "
                           f"{LINEAGE_FILE} records {recorded}")
    return True


def run_lineage(endpoint: Endpoint, run_id: str) -> RunLineage:
    """The provenance chain of a Kubeflow run, from the cluster's records (see the comment above): every output
    artifact with a lineage record, linked to its parents by md5 and checked against KFP's own task inputs.
    Raises LineageError (a KfpError for endpoint problems) naming the step, artifact and md5s on a mismatch."""
    import kfp_server_api

    run_id = (run_id or "").strip()
    if not run_id:
        raise KfpError("no run id: give the KFP run id (`xstilts runs` lists them)")
    client = connect(endpoint)
    with _api_errors(endpoint):
        try:
            run = client.get_run(run_id)
        except kfp_server_api.ApiException as e:
            if e.status == 404 and not _server_message(e).startswith("an HTML page"):
                raise KfpApiError(f"Kubeflow Pipelines at {endpoint.url} has no run {run_id!r} "
                                  f"({_server_message(e)}): `xstilts runs` lists the runs") from None
            raise
        tasks = list((run.run_details and run.run_details.task_details) or [])
        produced: dict[str, tuple] = {}  # artifact id → (task, output name); DAG tasks re-list their children's
        for task in sorted(tasks, key=lambda t: bool(t.child_tasks)):
            for output, listed in (task.outputs or {}).items():
                for artifact_id in (listed.artifact_ids or []):
                    produced.setdefault(str(artifact_id), (task, output))
        nodes, by_id, with_metadata = [], {}, 0
        for artifact_id, (task, output) in produced.items():
            artifact = _call(client, f"{API_PREFIX}/artifacts/{artifact_id}") or {}
            if (artifact.get("artifact_type") or artifact.get("type")) not in LINEAGE_ARTIFACT_TYPES:
                continue
            uri = artifact.get("uri") or ""
            where = f"artifact {uri or artifact_id} (output {output!r} of task {task.display_name!r})"
            record = _read_record(client, endpoint, uri, where)
            node = {**record, "path": pod_path(uri), "uri": uri, "artifact_id": artifact_id, "output": output,
                    "task_name": task.display_name or "", "task_id": task.task_id or "",
                    "task_state": str(task.state or "")}
            with_metadata += _check_metadata(node, artifact.get("metadata"), f"{where} (step {record['step']})")
            nodes.append(node)
            by_id[artifact_id] = node
    if not nodes:
        raise LineageError(f"run {run_id} has no artifact with a {LINEAGE_FILE} record yet (state {run.state}): "
                           f"{len(tasks)} tasks listed")
    link(nodes, f"run {run_id}")
    _check_task_inputs(tasks, produced, by_id)
    not_verified = [f"artifact contents: the md5s of {len(nodes)} artifacts are their steps' records; their files "
                    f"were not downloaded and re-hashed (download them and run `xstilts lineage DIR` for that)"]
    if with_metadata < len(nodes):
        not_verified.append(f"KFP artifact metadata (md5, parent_md5s) of {len(nodes) - with_metadata} artifacts: "
                            f"this server's REST API does not return it (it lives in ML Metadata); the "
                            f"{LINEAGE_FILE} records were checked against each other and against KFP's task inputs")
    silent = sorted({t.display_name or t.task_id for t in tasks if not t.child_tasks}
                    - {n["task_name"] for n in nodes} - {""})
    if silent:
        not_verified.append(f"tasks without a lineage record: {', '.join(silent)}")
    return RunLineage(run_id, run.display_name or "", str(run.state or ""), f"{endpoint.url}/#/runs/details/{run_id}",
                      nodes, not_verified)


def _check_task_inputs(tasks, produced: dict, by_id: dict) -> None:
    """Every artifact that KFP says a task read must be an input that the task's output records name (same md5)."""
    for task in tasks:
        if task.child_tasks:
            continue
        outputs = [by_id[a] for a, (t, _) in produced.items() if t is task and a in by_id]
        for name, listed in (task.inputs or {}).items():
            for artifact_id in (listed.artifact_ids or []):
                parent = by_id.get(str(artifact_id))
                if parent is None:
                    continue
                for node in outputs:
                    recorded = {inp["md5"] for inp in node["inputs"].values()}
                    listing = ", ".join(f"{k} {v['md5']}" for k, v in node["inputs"].items()) or "none"
                    if parent["artifact_md5"] not in recorded:
                        raise LineageError(
                            f"artifact {node['uri']} (step {node['step']}, task {node['task_name']!r}): KFP says the "
                            f"task read {parent['uri']} (input {name!r}, step {parent['step']}, md5 "
                            f"{parent['artifact_md5']}), but its {LINEAGE_FILE} records no input with that md5 "
                            f"(recorded: {listing})")
