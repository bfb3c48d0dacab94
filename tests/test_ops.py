"""`xstilts upload|submit|schedule|runs` (pipelines/ops.py on kfp.Client) against a fake Kubeflow Pipelines API.

The fake serves just enough of the v2beta1 REST API, on loopback, and checks every request against it: path,
method, query, JSON body or multipart upload, and the bearer token. Anything it does not expect is recorded in
`errors` (and answered 404), so each test ends with `assert fake.errors == []`.
"""

import email
import email.policy
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from pipelines import ops

REPO = Path(__file__).resolve().parents[1]
XSTILTS = str(Path(sys.executable).parent / "xstilts")
COMPILED = REPO / "pipelines" / "compiled" / "xstilts.yaml"
TOKEN = "s3cret-token"
NS = "xstilts"
API = "/apis/v2beta1"
ENV_DROPPED = ("KFP_HOST", "KFP_TOKEN", "KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT",
               "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID", "KF_PIPELINES_APP_OAUTH2_CLIENT_ID",
               "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET", "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
               "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


def root_inputs(spec_text: str) -> set:
    return set(next(yaml.safe_load_all(spec_text))["root"]["inputDefinitions"]["parameters"])


class FakeKfp:
    """A Kubeflow Pipelines v2beta1 API on 127.0.0.1 that checks what it is sent."""

    def __init__(self, token=TOKEN, namespace=NS):
        self.token, self.namespace = token, namespace
        self.requests, self.errors = [], []
        self.pipelines, self.versions, self.experiments, self.runs, self.recurring = {}, {}, {}, [], []
        self.answer = None  # (status, headers, body): answer every request with this instead
        self.run_records, self.artifacts = {}, {}  # GET runs/{id} (with run_details), GET artifacts/{id}
        self.store = None  # a folder standing in for the object store: <store>/<bucket>/<key>
        self._clock = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

            def do_DELETE(self):
                fake._handle(self, "DELETE")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- helpers -------------------------------------------------------------------------------------------------
    def paths(self):
        return [(r["method"], r["path"]) for r in self.requests]

    def _now(self):
        return f"2025-01-01T00:{next(self._clock):02d}:00Z"

    def _expect(self, condition, what):
        if not condition:
            self.errors.append(what)
        return condition

    def _query_one(self, query, key):
        values = query.get(key, [])
        return values[0] if len(values) == 1 else None

    def _name_filter(self, query):
        """The display_name EQUALS filter kfp.Client builds (protojson accepts the enum as 1 or "EQUALS")."""
        try:
            predicates = json.loads(self._query_one(query, "filter"))["predicates"]
            (p,) = predicates
            assert p["key"] == "display_name" and p["operation"] in (1, "EQUALS")
            return p.get("stringValue", p.get("string_value"))
        except Exception as e:  # noqa: BLE001 - any malformed filter is a finding
            self.errors.append(f"bad filter {query.get('filter')}: {e!r}")
            return None

    def _multipart_file(self, handler, body):
        ctype = handler.headers.get("Content-Type", "")
        if not self._expect(ctype.startswith("multipart/form-data; boundary="), f"upload content type {ctype!r}"):
            return None
        message = email.message_from_bytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body, policy=email.policy.HTTP)
        files = [part for part in message.iter_parts()
                 if part.get_param("name", header="content-disposition") == "uploadfile"]
        if not self._expect(len(files) == 1 and (files[0].get_filename() or "").endswith(".yaml"),
                            "upload without one uploadfile part named *.yaml"):
            return None
        text = files[0].get_payload(decode=True).decode()
        self._expect(next(yaml.safe_load_all(text)).get("pipelineInfo", {}).get("name") == "xstilts",
                     "uploaded file is not the xstilts pipeline")
        return text

    def _check_job(self, body, what):
        """A run or recurring run: experiment, exactly one of pipeline_spec / pipeline_version_reference, and
        parameters that the pipeline declares (the real server rejects others too)."""
        self._expect(body.get("experiment_id") in self.experiments, f"{what}: unknown experiment_id")
        self._expect(bool(body.get("display_name")), f"{what}: no display_name")
        spec, ref = body.get("pipeline_spec"), body.get("pipeline_version_reference")
        if not self._expect((spec is None) != (ref is None), f"{what}: needs one of pipeline_spec, pipeline_version_reference"):
            return False
        if spec is not None:
            # A pipeline with a Kubernetes platform spec goes as {pipeline_spec, platform_spec}.
            self._expect(set(spec) == {"pipeline_spec", "platform_spec"}, f"{what}: pipeline_spec keys {sorted(spec)}")
            inputs = set(spec["pipeline_spec"]["root"]["inputDefinitions"]["parameters"])
            self._expect(spec["pipeline_spec"]["pipelineInfo"]["name"] == "xstilts", f"{what}: pipeline name")
            self._expect("kubernetes" in spec["platform_spec"]["platforms"], f"{what}: no kubernetes platform spec")
        else:
            version = self.versions.get(ref.get("pipeline_version_id"))
            if not self._expect(version is not None and version["pipeline_id"] == ref.get("pipeline_id"),
                                f"{what}: unknown pipeline_version_reference {ref}"):
                return False
            inputs = root_inputs(version["spec"])
        parameters = (body.get("runtime_config") or {}).get("parameters") or {}
        return self._expect(set(parameters) <= inputs, f"{what}: parameters {sorted(set(parameters) - inputs)} unknown")

    # -- the API -------------------------------------------------------------------------------------------------
    def _handle(self, handler, method):
        url = urlsplit(handler.path)
        query = parse_qs(url.query, keep_blank_values=True)
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.requests.append({"method": method, "path": url.path, "query": query, "body": body,
                              "authorization": handler.headers.get("Authorization")})
        status, payload, headers = self._route(handler, method, url.path, query, body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, handler, method, path, query, body):
        if self.answer is not None:
            return self.answer
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            # What the API server (grpc-gateway) answers an unauthenticated request with.
            return 401, {"error": "Unauthenticated", "code": 16, "message": "Unauthenticated: invalid bearer token",
                         "details": []}, {}
        if method == "POST" and not path.startswith(f"{API}/pipelines/upload"):
            self._expect(handler.headers.get("Content-Type") == "application/json", f"{path}: JSON content type")
        try:
            doc = json.loads(body) if body and method == "POST" and not path.startswith(f"{API}/pipelines/upload") else {}
        except ValueError:
            self.errors.append(f"{path}: body is not JSON")
            return 400, {"message": "bad JSON"}, {}
        route = (method, re.sub(r"/pipelines/[^/]+/versions$", "/pipelines/{id}/versions", path))
        if method == "GET" and re.fullmatch(rf"{API}/runs/[^/:]+", path):
            run = self.run_records.get(path.rsplit("/", 1)[1])
            return (200, run, {}) if run else (404, {"code": 5, "message": f"Run {path.rsplit('/', 1)[1]} not found"}, {})
        if method == "GET" and re.fullmatch(rf"{API}/artifacts/[^/]+", path):
            # ArtifactService.GetArtifact (artifacts.proto): BASIC view unless asked, no download_url.
            self._expect(self._query_one(query, "view") in (None, "BASIC"), f"artifact view {query}")
            artifact = self.artifacts.get(path.rsplit("/", 1)[1])
            return (200, artifact, {}) if artifact else (404, {"code": 5, "message": "artifact not found"}, {})
        if method == "GET" and path == "/artifacts/get":
            return self._artifact_file(query)
        match route:
            case ("GET", "/apis/v2beta1/healthz"):
                return 200, {"multi_user": True, "commit_sha": "fake", "tag_name": "2.5.0"}, {}
            case ("GET", "/apis/v2beta1/pipelines"):
                self._expect(self._query_one(query, "namespace") == self.namespace, f"list pipelines namespace {query}")
                name = self._name_filter(query)
                found = [p for p in self.pipelines.values() if p["display_name"] == name]
                return 200, ({"pipelines": found, "total_size": len(found)} if found else {}), {}
            case ("POST", "/apis/v2beta1/pipelines/upload"):
                name = self._query_one(query, "name")
                self._expect(bool(name), "upload without ?name")
                self._expect(self._query_one(query, "namespace") == self.namespace, f"upload namespace {query}")
                text = self._multipart_file(handler, body)
                if text is None:
                    return 400, {"error_message": "Failed to read pipeline from file"}, {}
                if any(p["display_name"] == name for p in self.pipelines.values()):
                    return 409, {"error_message": "Failed to create a pipeline and a pipeline version"}, {}
                pid = str(uuid.uuid4())
                pipeline = {"pipeline_id": pid, "name": name, "display_name": name, "namespace": self.namespace,
                            "description": self._query_one(query, "description") or "", "created_at": self._now()}
                self.pipelines[pid] = pipeline
                self._add_version(pid, name, text)  # the server names the first version after the pipeline
                return 200, pipeline, {}
            case ("POST", "/apis/v2beta1/pipelines/upload_version"):
                pid, name = self._query_one(query, "pipelineid"), self._query_one(query, "name")
                self._expect(pid in self.pipelines and bool(name), f"upload_version query {query}")
                self._expect("namespace" not in query, "upload_version takes no namespace")
                text = self._multipart_file(handler, body)
                if text is None or pid not in self.pipelines:
                    return 400, {"error_message": "Failed to create a pipeline version"}, {}
                if any(v["pipeline_id"] == pid and v["display_name"] == name for v in self.versions.values()):
                    return 409, {"error_message": "Failed to create a pipeline version"}, {}
                return 200, self._public(self._add_version(pid, name, text)), {}
            case ("GET", "/apis/v2beta1/pipelines/{id}/versions"):
                pid = path.split("/")[4]
                self._expect(pid in self.pipelines, f"versions of unknown pipeline {pid}")
                self._expect(self._query_one(query, "sort_by") == "created_at desc", f"versions sort {query}")
                versions = sorted((v for v in self.versions.values() if v["pipeline_id"] == pid),
                                  key=lambda v: v["created_at"], reverse=True)
                versions = versions[:int(self._query_one(query, "page_size") or 10)]
                return 200, {"pipeline_versions": [self._public(v) for v in versions], "total_size": len(versions)}, {}
            case ("GET", "/apis/v2beta1/experiments"):
                self._expect(self._query_one(query, "namespace") == self.namespace, f"list experiments namespace {query}")
                name = self._name_filter(query)
                found = [e for e in self.experiments.values() if e["display_name"] == name]
                return 200, ({"experiments": found, "total_size": len(found)} if found else {}), {}
            case ("POST", "/apis/v2beta1/experiments"):
                self._expect(doc.get("namespace") == self.namespace, f"experiment namespace {doc}")
                self._expect(bool(doc.get("display_name")), "experiment without display_name")
                experiment = {"experiment_id": str(uuid.uuid4()), "display_name": doc.get("display_name"),
                              "namespace": doc.get("namespace"), "created_at": self._now(), "storage_state": "AVAILABLE"}
                self.experiments[experiment["experiment_id"]] = experiment
                return 200, experiment, {}
            case ("POST", "/apis/v2beta1/runs"):
                if not self._check_job(doc, "run"):
                    return 400, {"code": 3, "message": "Invalid input error"}, {}
                run = {**doc, "run_id": str(uuid.uuid4()), "state": "PENDING", "created_at": self._now(),
                       "scheduled_at": "1970-01-01T00:00:00Z", "finished_at": "1970-01-01T00:00:00Z",
                       "storage_state": "AVAILABLE"}
                self.runs.append(run)
                return 200, {k: v for k, v in run.items() if k != "pipeline_spec"}, {}
            case ("GET", "/apis/v2beta1/runs"):
                self._expect(self._query_one(query, "sort_by") == "created_at desc", f"runs sort {query}")
                page_size = int(self._query_one(query, "page_size") or 10)
                experiment = self._query_one(query, "experiment_id")
                if experiment is None:
                    self._expect(self._query_one(query, "namespace") == self.namespace, f"runs namespace {query}")
                runs = [r for r in self.runs if experiment is None or r["experiment_id"] == experiment]
                runs = sorted(runs, key=lambda r: r["created_at"], reverse=True)[:page_size]
                return 200, ({"runs": [{k: v for k, v in r.items() if k != "pipeline_spec"} for r in runs],
                              "total_size": len(runs)} if runs else {}), {}
            case ("POST", "/apis/v2beta1/recurringruns"):
                ok = self._check_job(doc, "recurring run")
                cron = ((doc.get("trigger") or {}).get("cron_schedule") or {}).get("cron", "")
                ok &= self._expect(len(cron.split()) == 6, f"cron {cron!r} is not 6 fields")
                # max_concurrency is an int64: protojson takes it as a number or a string.
                ok &= self._expect(str(doc.get("max_concurrency")) == "1", f"max_concurrency {doc.get('max_concurrency')!r}")
                ok &= self._expect(doc.get("no_catchup") is True, f"no_catchup {doc.get('no_catchup')!r}")
                ok &= self._expect(doc.get("mode") == "ENABLE", f"mode {doc.get('mode')!r}")
                if not ok:
                    return 400, {"code": 3, "message": "Invalid input error"}, {}
                recurring = {**doc, "recurring_run_id": str(uuid.uuid4()), "created_at": self._now(),
                             "status": "ENABLED", "namespace": self.namespace}
                self.recurring.append(recurring)
                return 200, {k: v for k, v in recurring.items() if k != "pipeline_spec"}, {}
        self.errors.append(f"unexpected request {method} {path}")
        return 404, {"code": 5, "message": f"Not Found: {method} {path}"}, {}

    def _artifact_file(self, query):
        """The Pipelines UI's artifact reader: ?source=minio|s3|gcs&bucket=&key=&namespace= → the object's bytes."""
        source, bucket, key = (self._query_one(query, k) for k in ("source", "bucket", "key"))
        self._expect(source == "minio" and bool(bucket) and bool(key), f"artifact coordinates {query}")
        self._expect(self._query_one(query, "namespace") == self.namespace, f"artifact namespace {query}")
        file = self.store / bucket / key if self.store and bucket and key else None
        if file is None or not file.is_file():
            return 404, b"Failed to get object in bucket: The specified key does not exist.", {"Content-Type": "text/plain"}
        return 200, file.read_bytes(), {"Content-Type": "application/octet-stream"}

    def _add_version(self, pid, name, text):
        version = {"pipeline_id": pid, "pipeline_version_id": str(uuid.uuid4()), "name": name, "display_name": name,
                   "created_at": self._now(), "spec": text}
        self.versions[version["pipeline_version_id"]] = version
        return version

    @staticmethod
    def _public(version):
        return {k: v for k, v in version.items() if k != "spec"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hermetic(tmp_path, monkeypatch):
    """No kube config, no ~/.config/kfp/context.json, no KFP environment: for this process and the CLI's."""
    import kfp.client.client

    home = tmp_path / "home"
    home.mkdir()
    for name in ENV_DROPPED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / "no-kubeconfig"))
    # kfp.Client reads ~/.config/kfp/context.json (a cookie, extra headers, a namespace), its path fixed at import.
    monkeypatch.setattr(kfp.client.client.Client, "_LOCAL_KFP_CONTEXT", str(home / ".config" / "kfp" / "context.json"))
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROPPED}
    env.update(HOME=str(home), KUBECONFIG=str(home / "no-kubeconfig"), NO_PROXY="*", COLUMNS="200")
    return env


@pytest.fixture
def fake():
    with FakeKfp() as server:
        yield server


def endpoint(fake, token=TOKEN, namespace=NS):
    return ops.Endpoint(fake.url, namespace, token)


# ---- the operations, in process --------------------------------------------------------------------------------

def test_upload_creates_the_pipeline_then_adds_versions(fake, hermetic):
    first = ops.upload(endpoint(fake))
    assert first.created and first.pipeline_name == "xstilts" and first.version_name == "xstilts"
    assert first.url == f"{fake.url}/#/pipelines/details/{first.pipeline_id}/version/{first.version_id}"
    assert fake.paths() == [("GET", f"{API}/pipelines"), ("POST", f"{API}/pipelines/upload"),
                            ("GET", f"{API}/pipelines/{first.pipeline_id}/versions")]
    upload = fake.requests[1]
    assert upload["query"]["name"] == ["xstilts"] and upload["query"]["namespace"] == [NS]
    assert upload["query"]["description"][0].startswith("English intermediate-task training")
    assert fake.versions[first.version_id]["spec"] == COMPILED.read_text()  # the file, byte for byte

    fake.requests.clear()
    second = ops.upload(endpoint(fake), version="v2")
    assert not second.created and second.pipeline_id == first.pipeline_id and second.version_name == "v2"
    assert second.version_id != first.version_id and fake.versions[second.version_id]["display_name"] == "v2"
    assert fake.paths() == [("GET", f"{API}/pipelines"), ("POST", f"{API}/pipelines/upload_version")]
    assert fake.requests[1]["query"]["pipelineid"] == [first.pipeline_id]

    third = ops.upload(endpoint(fake))  # default version name: UTC timestamp + short commit (+ -dirty)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d{6}(-[0-9a-f]{4,40}(-dirty)?)?", third.version_name), third.version_name
    with pytest.raises(ops.KfpApiError, match=r"HTTP 409.*already exists"):
        ops.upload(endpoint(fake), version="v2")
    assert len([v for v in fake.versions.values() if v["pipeline_id"] == first.pipeline_id]) == 3
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert fake.errors == []


def test_submit_sends_checked_parameters(fake, hermetic, tmp_path):
    (tmp_path / "p.yaml").write_text("target_tasks: [xnli, xquad]\ndata: hf\nconditions: [none]\n")
    params = ops.resolve_params(COMPILED, ["conditions=[none,mnli]", "retrieval_layer=2", "model_revision=0123",
                                           "intermediate_train={epochs: 1, learning_rate: 2.0e-5}",
                                           "task_data={}"], tmp_path / "p.yaml")
    defaults = {k: v["defaultValue"] for k, v in ops.pipeline_inputs(COMPILED).items()}
    assert params == {"target_tasks": ["xnli", "xquad"], "data": "hf", "conditions": ["none", "mnli"],
                      "retrieval_layer": 2, "model_revision": "0123",  # string parameters stay text
                      "intermediate_train": {**defaults["intermediate_train"], "epochs": 1, "learning_rate": 2e-5},
                      "task_data": defaults["task_data"]}  # mappings merge over the compiled defaults

    run = ops.submit(endpoint(fake), params=params, run_name="grid smoke test")
    assert run.url == f"{fake.url}/#/runs/details/{run.run_id}"
    assert fake.paths() == [("GET", f"{API}/experiments"), ("POST", f"{API}/experiments"), ("POST", f"{API}/runs")]
    body = json.loads(fake.requests[-1]["body"])
    assert body["runtime_config"]["parameters"] == params and body["display_name"] == "grid smoke test"
    assert body["experiment_id"] == run.experiment_id and fake.experiments[run.experiment_id]["display_name"] == "xstilts"
    assert body["service_account"] == "xstilts-pipeline-runner" and "pipeline_version_reference" not in body
    assert body["pipeline_spec"]["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]["conditions"]

    again = ops.submit(endpoint(fake), experiment="xstilts", service_account="")  # the experiment is reused
    assert again.experiment_id == run.experiment_id and len(fake.experiments) == 1
    assert "service_account" not in json.loads(fake.requests[-1]["body"])
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert fake.errors == []


def test_parameter_errors_are_caught_before_any_request(fake, hermetic, tmp_path):
    def rejected(pairs, match, params_file=None):
        with pytest.raises(ops.ConfigError, match=match):
            ops.resolve_params(COMPILED, pairs, params_file)

    rejected(["learning_rate=1e-5", "conditions=[none]"],
             r"unknown pipeline parameter\(s\) learning_rate; the pipeline .* takes: conditions, data, data_repo, data_rev, "
             r"dvc_remote, generation, hf_revision")
    rejected(["conditions=mnli"], r"parameter 'conditions' must be a list")
    rejected(["retrieval_layer=true"], r"'retrieval_layer' must be an integer")
    rejected(["intermediate_train=[1]"], r"must be a mapping")
    rejected(["conditions"], r"expected name=value")
    rejected(["conditions=[none"], r"not valid YAML")
    rejected(["intermediate_train={epoch: 1}"], r"intermediate_train: unknown training parameter\(s\) epoch")
    (tmp_path / "bad.yaml").write_text("target_tasks: [xnli]\nlearning_rate: 1\n")
    rejected([], r"unknown pipeline parameter\(s\) learning_rate", tmp_path / "bad.yaml")
    with pytest.raises(ops.ConfigError, match="pipeline file .*nowhere.yaml not found"):
        ops.submit(endpoint(fake), path=tmp_path / "nowhere.yaml")
    assert fake.requests == []


def test_schedule_a_weekly_run(fake, hermetic):
    params = ops.resolve_params(COMPILED, ["target_tasks=[xnli]"])
    scheduled = ops.schedule(endpoint(fake), " 0 0 3 * * 0 ", params=params, name="weekly xnli")
    assert scheduled.cron == "0 0 3 * * 0" and scheduled.url.endswith(f"/#/recurringrun/details/{scheduled.recurring_run_id}")
    assert fake.paths()[-1] == ("POST", f"{API}/recurringruns")
    body = json.loads(fake.requests[-1]["body"])
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * 0"}}
    assert body["display_name"] == "weekly xnli" and body["runtime_config"]["parameters"] == {"target_tasks": ["xnli"]}
    assert body["no_catchup"] is True and body["mode"] == "ENABLE" and str(body["max_concurrency"]) == "1"
    assert body["experiment_id"] == scheduled.experiment_id and "pipeline_spec" in body

    fake.requests.clear()
    with pytest.raises(ops.ConfigError, match=r"6 fields .* got 5 in '0 3 \* \* 0'; prepend the seconds: '0 0 3 \* \* 0'"):
        ops.schedule(endpoint(fake), "0 3 * * 0")
    with pytest.raises(ops.ConfigError, match="not cron fields"):
        ops.check_cron("0 0 3 * * 0;")
    assert fake.requests == [] and fake.errors == []


def test_runs_lists_the_newest_first(fake, hermetic):
    first = ops.submit(endpoint(fake), run_name="one")
    other = ops.submit(endpoint(fake), run_name="two", experiment="other")
    third = ops.submit(endpoint(fake), run_name="three")
    fake.runs[0]["state"], fake.runs[0]["finished_at"] = "SUCCEEDED", "2025-01-02T03:04:05Z"
    fake.requests.clear()

    rows = ops.list_runs(endpoint(fake), limit=2)
    assert [r.run_id for r in rows] == [third.run_id, other.run_id] and rows[0].state == "PENDING"
    assert rows[0].finished == "" and re.fullmatch(r"2025-01-01 00:\d\d:00", rows[0].created)
    (listing,) = fake.requests
    assert listing["query"]["page_size"] == ["2"] and listing["query"]["namespace"] == [NS]

    rows = ops.list_runs(endpoint(fake), experiment="xstilts")
    assert [r.run_id for r in rows] == [third.run_id, first.run_id]
    assert rows[1].state == "SUCCEEDED" and rows[1].finished == "2025-01-02 03:04:05" and rows[1].name == "one"
    assert fake.requests[-1]["query"]["experiment_id"] == [first.experiment_id]
    with pytest.raises(ops.KfpError, match="no experiment named 'nope' in namespace 'xstilts'"):
        ops.list_runs(endpoint(fake), experiment="nope")
    assert fake.errors == []


def test_clear_errors_for_endpoint_and_token_problems(fake, hermetic):
    with pytest.raises(ops.KfpAuthError, match=rf"Kubeflow Pipelines at {fake.url} refused the token \(HTTP 401: "
                                               r"Unauthenticated: invalid bearer token\)"):
        ops.list_runs(endpoint(fake, token="wrong"))
    with pytest.raises(ops.KfpAuthError, match=r"refused the request without a token \(HTTP 401.*--token or KFP_TOKEN"):
        ops.upload(endpoint(fake, token=None))
    assert [r["authorization"] for r in fake.requests] == ["Bearer wrong", None]

    port = closed_port()
    with pytest.raises(ops.KfpUnreachableError, match=rf"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}: "
                                                      r".*Connection refused"):
        ops.submit(ops.Endpoint(f"http://127.0.0.1:{port}/", NS, TOKEN))
    with pytest.raises(ops.KfpError, match="no Kubeflow Pipelines endpoint: pass --host or set KFP_HOST"):
        ops.list_runs(ops.Endpoint(None, NS, TOKEN))
    with pytest.raises(ops.KfpError, match="must be an http:// or https:// URL"):
        ops.list_runs(ops.Endpoint("localhost:8080", NS, TOKEN))

    fake.answer = (302, b"", {"Location": "/dex/auth?client_id=kubeflow"})  # an auth proxy's login redirect
    with pytest.raises(ops.KfpAuthError, match=r"redirected the request to /dex/auth\?client_id=kubeflow \(HTTP 302\)"):
        ops.list_runs(endpoint(fake))
    fake.answer = (404, b"<html><body>Not the API</body></html>", {"Content-Type": "text/html"})
    with pytest.raises(ops.KfpApiError, match=r"HTTP 404 \(an HTML page, not the Pipelines API\): is .* the Pipelines endpoint"):
        ops.list_runs(endpoint(fake))
    fake.answer = (500, {"code": 13, "message": "Internal error: database is locked"}, {})
    with pytest.raises(ops.KfpApiError, match=r"HTTP 500 Internal Server Error: Internal error: database is locked"):
        ops.list_runs(endpoint(fake))
    fake.answer = None
    # Without a namespace kfp.Client calls healthz from its constructor (5 tries, 5 s apart, in kfp): one try here.
    with pytest.raises(ops.KfpAuthError, match="refused the token"):
        ops.connect(endpoint(fake, token="wrong", namespace=""))
    assert fake.paths()[-1] == ("GET", f"{API}/healthz")
    assert fake.errors == []


# ---- the command line -----------------------------------------------------------------------------------------

def run_parallel(commands: dict, env) -> dict:
    """Start every command line at once (each CLI start imports torch, seconds of CPU) and wait for all."""
    procs = {key: subprocess.Popen([XSTILTS, *args], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE) for key, args in commands.items()}
    done = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return done


def test_cli_upload_submit_schedule_runs(fake, hermetic):
    first = ops.upload(endpoint(fake))  # in process, so the four commands can run side by side
    seeded = ops.submit(endpoint(fake), run_name="seeded run")
    env = {**hermetic, "KFP_HOST": fake.url, "KFP_TOKEN": TOKEN}
    out = run_parallel({
        "upload": ["upload", "--version", "from-cli"],
        "submit": ["submit", "--version-id", first.version_id, "--param", "conditions=[none,mnli]",
                   "--param", "target_tasks=[xnli]", "--run-name", "from the CLI"],
        "schedule": ["schedule", "--cron", "0 0 3 * * 0", "--param", "conditions=[none]", "--experiment", "weekly",
                     "--host", fake.url, "--token", TOKEN, "--namespace", NS],
        "runs": ["runs", "--limit", "5", "--experiment", "xstilts"],
    }, env)
    for result in out.values():
        assert result.returncode == 0, (result.args, result.stderr)

    ids = dict(line.split(": ", 1) for line in out["upload"].stdout.splitlines())
    assert set(ids) == {"pipeline_id", "version_id", "url"} and ids["pipeline_id"] == first.pipeline_id
    assert fake.versions[ids["version_id"]]["display_name"] == "from-cli"
    assert "uploaded version 'from-cli' of pipeline 'xstilts'" in out["upload"].stderr

    run = dict(line.split(": ", 1) for line in out["submit"].stdout.splitlines())
    assert run["url"] == f"{fake.url}/#/runs/details/{run['run_id']}"
    (body,) = [r for r in fake.runs if r["run_id"] == run["run_id"]]
    assert body["pipeline_version_reference"] == {"pipeline_id": first.pipeline_id,
                                                  "pipeline_version_id": first.version_id}
    assert "pipeline_spec" not in body and body["display_name"] == "from the CLI"
    assert body["runtime_config"]["parameters"] == {"conditions": ["none", "mnli"], "target_tasks": ["xnli"]}
    assert "parameters: conditions=['none', 'mnli'], target_tasks=['xnli']" in out["submit"].stderr

    recurring_id = out["schedule"].stdout.split("recurring_run_id: ")[1].split()[0]
    (recurring,) = fake.recurring
    assert recurring["recurring_run_id"] == recurring_id and recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 0"
    assert fake.experiments[recurring["experiment_id"]]["display_name"] == "weekly"

    (row,) = [line for line in out["runs"].stdout.splitlines() if seeded.run_id in line]
    assert "seeded run" in row and "PENDING" in row
    for header in ("id", "name", "state", "created", "finished"):
        assert header in out["runs"].stdout
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"} and fake.errors == []


def test_cli_errors_are_one_line_without_traceback(fake, hermetic):
    port = closed_port()
    cases = {  # command line → what stderr must say
        ("submit",): "no Kubeflow Pipelines endpoint: pass --host or set KFP_HOST",
        ("runs", "--host", f"http://127.0.0.1:{port}"): f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}",
        ("runs", "--host", fake.url, "--token", "wrong"): f"Kubeflow Pipelines at {fake.url} refused the token (HTTP 401",
        ("schedule", "--cron", "0 3 * * 0", "--host", fake.url): "--cron needs 6 fields",
        ("submit", "--host", fake.url, "--param", "learning_rate=1"): "unknown pipeline parameter(s) learning_rate",
    }
    out = run_parallel({args: args for args in cases}, hermetic)
    for args, expected in cases.items():
        result = out[args]
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ") and expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
    # Only the token check reached the server: the bad cron and the unknown parameter were stopped before.
    assert fake.paths() == [("GET", f"{API}/runs")] and fake.errors == []


# ---- lineage of a run on the cluster ------------------------------------------------------------------------------

RUN_ID = "5d2f6c1e-0b7a-4c55-9d1e-2b4a8f0c9e11"
CONDITIONS = ("none", "mnli")


class FakeRun:
    """A finished run of the pipeline as KFP describes it: v2beta1 task details with MLMD artifact ids, the artifacts
    (type, minio:// URI), and each artifact's files in the object store with the lineage.json its step wrote."""

    def __init__(self, fake: FakeKfp, root: Path, with_metadata: bool = False):
        from xstilts import provenance

        self.fake, self.store, self.provenance = fake, root / "store", provenance
        self.with_metadata, self.tasks, self.ids, self.records = with_metadata, [], itertools.count(101), {}
        self.by_step = {}
        fake.store = self.store
        validate = self.task("validate data", "validate", {}, {"target_tasks": ["xnli"], "conditions": list(CONDITIONS),
                                                               "languages": ["en", "fr"]},
                             outputs={"dataset": "system.Dataset", "report_html": "system.HTML",
                                      "report_md": "system.Markdown"}, data={"source": "hf", "hf_revision": None})
        gathered = []
        loop = {"task_id": "dag-loop", "display_name": "for-loop-2", "state": "SUCCEEDED", "outputs": {},
                "child_tasks": []}
        for condition in CONDITIONS:
            inter = self.task("intermediate fine-tune", "intermediate", {"dataset": validate["dataset"]},
                              {"condition": condition, "model_name": "tiny", "train": {"epochs": 1, "seed": 13}},
                              outputs={"model": "system.Model", "metrics": "system.Metrics"})
            target = self.task("target fine-tune", "target", {"dataset": validate["dataset"],
                                                              "intermediate_model": inter["model"]},
                               {"task": "xnli", "condition": condition, "trained": True, "train": {"epochs": 1}},
                               outputs={"model": "system.Model", "metrics": "system.Metrics"})
            onnx = self.task("export ONNX", "export", {"model": target["model"]}, {"opset": 18, "tolerance": 1e-4},
                             outputs={"onnx_model": "system.Model", "report": "system.Markdown"}, condition=condition)
            results = self.task("zero-shot eval", "evaluate", {"onnx_model": onnx["onnx_model"],
                                                               "dataset": validate["dataset"]}, {"batch_size": 64},
                                outputs={"results": "system.Artifact", "metrics": "system.Metrics"},
                                condition=condition)
            gather = self.task("gather condition", "gather", {"results[xnli]": results["results"]},
                               {"condition": condition, "targets": ["xnli"]}, outputs={"gathered": "system.Artifact"},
                               kfp_inputs={"results": [results["results"]]})
            gathered.append(gather["gathered"])
            loop["outputs"].setdefault("gathered", {"artifact_ids": []})["artifact_ids"].append(gather["gathered"][0])
        named = {f"condition[{c}]": g for c, g in zip(CONDITIONS, gathered)}
        gate = self.task("promotion gate", "promote", {f"results[{i}]": g for i, g in enumerate(gathered)},
                         {"registry_repo": "", "targets": [], "tolerance": 0.0, "condition": ""},
                         outputs={"decision": "system.Artifact", "decision_md": "system.Markdown"},
                         kfp_inputs={"results": gathered})
        self.task("report", "report", {**named, "promotion": gate["decision"]},
                  {"targets": ["xnli"], "conditions": list(CONDITIONS)},
                  outputs={"summary": "system.Artifact", "report_html": "system.HTML"},
                  kfp_inputs={"results": gathered, "decision": [gate["decision"]]})
        self.tasks.insert(0, {"task_id": "task-resolve", "display_name": "resolve data", "state": "SUCCEEDED",
                              "pod_name": "xstilts-resolve-data", "outputs": {}, "inputs": {}})
        loop["child_tasks"] = [{"task_id": t["task_id"]} for t in self.tasks[2:]]
        root = {"task_id": "dag-root", "display_name": RUN_ID, "state": "SUCCEEDED", "outputs": {},
                "child_tasks": [{"task_id": "dag-loop"}]}
        # Records hold the paths the steps saw in their pods: /minio/<bucket>/<key>, as the KFP launcher mounts them.
        for record_file in self.store.rglob("lineage.json"):
            record_file.write_text(record_file.read_text().replace(str(self.store), "/minio"))
        fake.run_records[RUN_ID] = {
            "experiment_id": "exp-1", "run_id": RUN_ID, "display_name": "xstilts weekly", "state": "SUCCEEDED",
            "storage_state": "AVAILABLE", "created_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T01:00:00Z",
            "run_details": {"pipeline_context_id": "7", "pipeline_run_context_id": "8",
                            "task_details": [root, loop, *self.tasks]}}

    def task(self, name, step, inputs, params, outputs, data=None, kfp_inputs=None, condition=None):
        """One executor task: writes its lineage outputs, registers every output artifact; {output: (id, dir)}."""
        n = len(self.tasks)
        task_id = f"task-{n}"
        made, kfp_outputs = {}, {}
        for output, kind in outputs.items():
            artifact_id = str(next(self.ids))
            key = f"v2/artifacts/xstilts/{RUN_ID}/{name.replace(' ', '-')}/{uuid.UUID(int=int(artifact_id))}/{output}"
            folder = self.store / "mlpipeline" / key
            if kind in ops.LINEAGE_ARTIFACT_TYPES:
                folder.mkdir(parents=True)
                (folder / "payload.bin").write_text(f"{name} {params} {output}")
                entry = self.provenance.record(folder, step, {k: v[1] for k, v in inputs.items()}, params, data)
                self.records[artifact_id] = folder / "lineage.json"
                self.by_step.setdefault((step, params.get("condition", condition)), folder / "lineage.json")
            self.fake.artifacts[artifact_id] = {
                "artifact_id": artifact_id, "storage_provider": "minio", "storage_path": key,
                "uri": f"minio://mlpipeline/{key}", "namespace": NS, "artifact_type": kind,
                "created_at": "2025-01-01T00:10:00Z",
                **({"metadata": self.provenance.metadata(entry)} if self.with_metadata and kind in
                   ops.LINEAGE_ARTIFACT_TYPES else {})}
            kfp_outputs[output] = {"artifact_ids": [artifact_id]}
            made[output] = (artifact_id, folder)
        kfp_inputs = kfp_inputs or {k: [v] for k, v in inputs.items()}
        self.tasks.append({
            "run_id": RUN_ID, "task_id": task_id, "display_name": name, "state": "SUCCEEDED",
            "create_time": "2025-01-01T00:01:00Z", "start_time": "2025-01-01T00:01:00Z",
            "end_time": "2025-01-01T00:02:00Z", "execution_id": str(n + 1), "pod_name": f"xstilts-{task_id}",
            "executor_detail": {"main_job": f"xstilts-{task_id}"}, "parent_task_id": "dag-loop",
            "inputs": {k: {"artifact_ids": [a[0] for a in v]} for k, v in kfp_inputs.items()},
            "outputs": kfp_outputs})
        return made

    def record_of(self, step, condition=None):
        """The lineage.json that `step` wrote in branch `condition`."""
        return self.by_step[(step, condition)]


def test_run_lineage_from_the_cluster(fake, hermetic, tmp_path):
    FakeRun(fake, tmp_path)
    result = ops.run_lineage(endpoint(fake), RUN_ID)
    assert (result.name, result.state, result.url) == ("xstilts weekly", "SUCCEEDED", f"{fake.url}/#/runs/details/{RUN_ID}")
    steps = [n["step"] for n in result.artifacts]
    assert steps == ["validate", "intermediate", "intermediate", "target", "target", "export", "export", "evaluate",
                     "evaluate", "gather", "gather", "promote", "report"]  # HTML, Markdown, Metrics: no records
    by = {(n["step"], n["condition"]): n for n in result.artifacts}
    export = by[("export", "mnli")]
    assert export["task"] == "xnli" and export["task_name"] == "export ONNX"  # task inherited from the target model
    assert export["uri"].startswith(f"minio://mlpipeline/v2/artifacts/xstilts/{RUN_ID}/export-ONNX/")
    assert export["parents"]["model"] == {"path": by[("target", "mnli")]["path"],
                                          "md5": by[("target", "mnli")]["artifact_md5"], "step": "target"}
    assert by[("report", None)]["parents"]["promotion"]["step"] == "promote"
    assert any("not downloaded and re-hashed" in n for n in result.not_verified)
    assert any("does not return it" in n for n in result.not_verified)  # metadata lives in MLMD on this server
    assert any(n == "tasks without a lineage record: resolve data" for n in result.not_verified)
    assert ("GET", f"{API}/runs/{RUN_ID}") in fake.paths()
    reads = [r for r in fake.requests if r["path"] == "/artifacts/get"]
    assert len(reads) == 13 and all(r["query"]["key"][0].endswith("/lineage.json") for r in reads)
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"} and fake.errors == []


def test_run_lineage_checks_kfp_metadata_against_the_records(fake, hermetic, tmp_path):
    run = FakeRun(fake, tmp_path, with_metadata=True)
    result = ops.run_lineage(endpoint(fake), RUN_ID)
    assert not any("does not return it" in n for n in result.not_verified)  # every artifact's metadata was checked
    artifact_id = next(a for a, f in run.records.items() if json.loads(f.read_text())["step"] == "target")
    fake.artifacts[artifact_id]["metadata"]["md5"] = "0" * 32
    with pytest.raises(ops.LineageError, match=rf"output 'model' of task 'target fine-tune'\) \(step target\): KFP "
                                               rf"artifact metadata md5 0{{32}}, but its lineage.json records md5 [0-9a-f]{{32}}"):
        ops.run_lineage(endpoint(fake), RUN_ID)
    assert fake.errors == []


def test_run_lineage_catches_a_tampered_parent_md5(fake, hermetic, tmp_path):
    run = FakeRun(fake, tmp_path)
    record = run.record_of("export", "none")
    entry = json.loads(record.read_text())
    real = entry["inputs"]["model"]["md5"]
    entry["inputs"]["model"]["md5"] = "f" * 32
    record.write_text(json.dumps(entry))
    with pytest.raises(ops.LineageError, match=rf"/export-ONNX/.*/onnx_model \(step export\): its input 'model' "
                                               rf"\(/minio/mlpipeline/.*/target-fine-tune/.*/model\) is recorded with md5 "
                                               rf"f{{32}}, but that artifact \(step target\) has md5 {real}"):
        ops.run_lineage(endpoint(fake), RUN_ID)
    assert fake.errors == []


def test_run_lineage_catches_an_input_the_record_leaves_out(fake, hermetic, tmp_path):
    run = FakeRun(fake, tmp_path)
    record = run.record_of("evaluate", "mnli")
    entry = json.loads(record.read_text())
    del entry["inputs"]["dataset"]  # the step read the dataset (KFP says so) but its record does not say so
    record.write_text(json.dumps(entry))
    with pytest.raises(ops.LineageError, match=r"\(step evaluate, task 'zero-shot eval'\): KFP says the task read "
                                               r"minio://mlpipeline/.*/dataset \(input 'dataset', step validate, md5 "
                                               r"[0-9a-f]{32}\), but its lineage.json records no input with that md5"):
        ops.run_lineage(endpoint(fake), RUN_ID)
    missing = run.record_of("target", "none")
    missing.unlink()
    with pytest.raises(ops.LineageError, match=r"output 'model' of task 'target fine-tune'\): cannot read its record "
                                               r"minio://.*/model/lineage.json .*HTTP 404"):
        ops.run_lineage(endpoint(fake), RUN_ID)
    with pytest.raises(ops.KfpApiError, match=rf"has no run 'nope' \(Run nope not found\)"):
        ops.run_lineage(endpoint(fake), "nope")
    assert fake.errors == []


def test_cli_lineage_of_a_kfp_run(fake, hermetic, tmp_path):
    run = FakeRun(fake, tmp_path)
    env = {**hermetic, "KFP_TOKEN": TOKEN}
    local = tmp_path / "downloaded" / RUN_ID  # the run's folder copied from the bucket: a local path is a local run
    shutil.copytree(run.store / "mlpipeline" / "v2" / "artifacts" / "xstilts" / RUN_ID, local)
    record = run.record_of("export", "mnli")
    entry = json.loads(record.read_text())
    entry["inputs"]["model"]["md5"] = "e" * 32
    out = run_parallel({
        "text": ["lineage", RUN_ID, "--host", fake.url],
        "json": ["lineage", RUN_ID, "--host", fake.url, "--format", "json"],
        "local": ["lineage", str(local), "--format", "json", "--host", fake.url],
        "unreachable": ["lineage", RUN_ID, "--host", f"http://127.0.0.1:{closed_port()}"],
        "refused": ["lineage", RUN_ID, "--host", fake.url, "--token", "wrong"],
        "no host": ["lineage", RUN_ID],
    }, env)
    text = out["text"]
    assert text.returncode == 0, text.stderr
    for expected in (f"run {RUN_ID} (xstilts weekly, SUCCEEDED)", "13 artifact records verified", "data hf",
                     "validate", "condition none", "condition mnli", "target xnli", "target model", "ONNX",
                     "eval results", "gather", "promote", "report", "opset=18", "export ONNX · ", "minio://mlpipeline/v2/",
                     "not verified: artifact contents", "tasks without a lineage record: resolve data"):
        assert expected in text.stdout, expected
    assert text.stdout.index("condition none") < text.stdout.index("condition mnli") < text.stdout.index("report ")
    data = json.loads(out["json"].stdout)
    assert data["run"] == RUN_ID and data["verified"] and data["state"] == "SUCCEEDED" and data["host"] == fake.url
    assert [a["step"] for a in data["artifacts"]][-1] == "report" and len(data["not_verified"]) == 3
    assert {a["task_name"] for a in data["artifacts"]} >= {"validate data", "zero-shot eval", "report"}
    local_data = json.loads(out["local"].stdout)  # audited on disk: the md5s are recomputed, nothing unverified
    assert out["local"].returncode == 0 and local_data["not_verified"] == [] and len(local_data["artifacts"]) == 13
    errors = {"unreachable": "cannot reach Kubeflow Pipelines at http://127.0.0.1:",
              "refused": f"Kubeflow Pipelines at {fake.url} refused the token (HTTP 401"}
    for key, expected in errors.items():
        result = out[key]
        assert result.returncode == 1 and result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    assert out["no host"].returncode == 2 and "pass --host or set KFP_HOST" in out["no host"].stderr

    record.write_text(json.dumps(entry))  # a tampered parent md5: exit 1, the step, artifact and both md5s named
    tampered_run = subprocess.run([XSTILTS, "lineage", RUN_ID, "--host", fake.url], cwd=REPO, env=env, text=True,
                                  capture_output=True, timeout=120)
    assert tampered_run.returncode == 1 and tampered_run.stdout == "" and "Traceback" not in tampered_run.stderr
    message = " ".join(tampered_run.stderr.split())
    assert message.startswith("error: artifact /minio/mlpipeline/") and "(step export): its input 'model'" in message
    assert f"is recorded with md5 {'e' * 32}, but that artifact (step target) has md5" in message
    assert fake.errors == []
