"""A stateful fake Jenkins on a loopback port, answering in the shapes of recordings/ (see SOURCES.md).

No Jenkins can run on this machine. This server speaks the parts of Jenkins'
HTTP API the engine and python-jenkins use, with Jenkins' rules where they
matter to a client:
  * HTTP basic auth with a user and API token (401 otherwise);
  * a CSRF crumb from /crumbIssuer/api/json bound to a session cookie: a POST
    without both the `Jenkins-Crumb` header and that cookie gets 403;
  * jobs (createItem, config.xml, api/json), buildWithParameters answering 201
    with the queue item in `Location`, equal parameters folded into the queued
    item, queue items (Queue$WaitingItem -> Queue$LeftItem with `executable`),
    builds (api/json with `building`/`result`/`description`), `wfapi/describe` of a
    run and of a stage node, and a flow node's progressive log
    (`logText/progressiveText?start=N` with `X-Text-Size` / `X-More-Data`);
  * POST /job/X/N/stop and /queue/cancelItem are recorded (`fake.posts`);
  * the job list (`/api/json`, jobs with inQueue and lastBuild building/timestamp/
    duration) and POST /job/X/doDelete (302 to the dashboard, as Jenkins answers).

`start(job)` turns the queued item into build 1 whose stages are the nested
`step-i-j` stages of the Jenkinsfile the job was given; tests then drive each
step (`set_step`, `append_log`) and the run (`finish`). `replay` maps a path
to a recording served byte-exact.
"""
from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

RECORDINGS = Path(__file__).parent / "recordings"
CRUMB = json.loads((RECORDINGS / "crumb_issuer.json").read_bytes())


@dataclass
class FlowNode:
    """A later flow node of a step's stage (a second `sh`, say), with its own log."""

    node_id: int
    status: str = "IN_PROGRESS"
    log: bytes = b""
    more: bool = True


@dataclass
class Step:
    stage_id: int
    node_id: int
    status: str = "NOT_EXECUTED"
    log: bytes = b""
    more: bool = True
    error: str = ""
    later: list[FlowNode] = field(default_factory=list)
    node_status: str = ""   # the first flow node's, when it differs from the stage's (over before the next)


@dataclass
class Build:
    number: int
    steps: dict[str, Step]
    status: str = "IN_PROGRESS"
    description: str = ""
    start: int = 1700000000000


@dataclass
class Job:
    name: str
    config: str
    queue: list[int] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)


class FakeJenkins:
    def __init__(self, user: str = "slipway", token: str = "11aa22bb33cc") -> None:
        self.user, self.token = user, token
        self.jobs: dict[str, Job] = {}
        self.items: dict[int, dict] = {}    # queue id -> {"job", "params", "number"?, "cancelled"}
        self.credentials: dict[str, str] = {}   # system store, domain "_": id -> the XML posted
        self.posts: list[str] = []          # paths of every POST, in order
        self.requests: list[str] = []       # "METHOD path" of every request
        self.replay: dict[str, bytes] = {}
        self.sessions: set[str] = set()
        self.lock = threading.RLock()
        self._next_item = 41
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeJenkins:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- driving a build ---------------------------------------------------------------
    def start(self, job_name: str) -> Build:
        with self.lock:
            job = self.jobs[job_name]
            item_id = job.queue.pop(0)
            script = unescape(re.search(r"<script>(.*)</script>", job.config, re.S).group(1))
            labels = list(dict.fromkeys(re.findall(r"stage\('(step-\d+-\d+)'\)", script)))
            steps = {label: Step(stage_id=10 + 10 * k, node_id=11 + 10 * k) for k, label in enumerate(labels)}
            build = Build(number=len(job.builds) + 1, steps=steps)
            job.builds.append(build)
            self.items[item_id]["number"] = build.number
            return build

    def set_step(self, job: str, label: str, status: str, *, error: str = "") -> None:
        with self.lock:
            st = self.jobs[job].builds[-1].steps[label]
            st.status, st.error = status, error
            if status not in ("IN_PROGRESS", "NOT_EXECUTED"):
                st.more = False

    def append_log(self, job: str, label: str, data: bytes) -> None:
        with self.lock:
            self.jobs[job].builds[-1].steps[label].log += data

    def add_node(self, job: str, label: str) -> FlowNode:
        """Start another flow node in step `label`'s stage (ids grow, as Jenkins' do)."""
        with self.lock:
            st = self.jobs[job].builds[-1].steps[label]
            node = FlowNode(node_id=st.node_id * 100 + len(st.later) + 1)
            st.later.append(node)
            return node

    def finish(self, job: str, status: str = "SUCCESS", node: str = "") -> None:
        with self.lock:
            b = self.jobs[job].builds[-1]
            b.status = status
            if node:
                b.description = f"slipway-node={node}"

    # -- bodies (shapes of recordings/) ----------------------------------------------------
    def _run_describe(self, job: Job, b: Build) -> dict:
        base = f"/job/{job.name}/{b.number}"
        stages = []
        for label, st in b.steps.items():
            d = {"_links": {"self": {"href": f"{base}/execution/node/{st.stage_id}/wfapi/describe"}},
                 "id": str(st.stage_id), "name": label, "status": st.status,
                 "startTimeMillis": b.start if st.status != "NOT_EXECUTED" else 0,
                 "durationMillis": 1000}
            stages.append(d)
        return {"_links": {"self": {"href": f"{base}/wfapi/describe"}}, "id": str(b.number),
                "name": f"#{b.number}", "status": b.status, "startTimeMillis": b.start,
                "endTimeMillis": b.start + 5000, "durationMillis": 5000, "stages": stages}

    def _node_describe(self, job: Job, b: Build, node: int) -> dict | None:
        base = f"/job/{job.name}/{b.number}"
        for label, st in b.steps.items():
            if st.stage_id == node:
                flow = {"_links": {"self": {"href": f"{base}/execution/node/{st.node_id}/wfapi/describe"},
                                   "log": {"href": f"{base}/execution/node/{st.node_id}/wfapi/log"}},
                        "id": str(st.node_id), "name": "Shell Script", "status": st.node_status or st.status,
                        "startTimeMillis": b.start, "durationMillis": 900, "parentNodes": [str(st.stage_id)]}
                if st.error:
                    flow["error"] = {"message": st.error, "type": "hudson.AbortException"}
                flows = [flow] + [
                    {**flow, "_links": {"self": {"href": f"{base}/execution/node/{n.node_id}/wfapi/describe"},
                                        "log": {"href": f"{base}/execution/node/{n.node_id}/wfapi/log"}},
                     "id": str(n.node_id), "status": n.status} for n in st.later]
                return {"_links": {"self": {"href": f"{base}/execution/node/{st.stage_id}/wfapi/describe"}},
                        "id": str(st.stage_id), "name": label, "status": st.status,
                        "startTimeMillis": b.start, "durationMillis": 1000,
                        "stageFlowNodes": flows if st.status != "NOT_EXECUTED" else []}
        return None

    def _item(self, item_id: int) -> dict | None:
        it = self.items.get(item_id)
        if it is None:
            return None
        cls = "LeftItem" if "number" in it or it.get("cancelled") else "WaitingItem"
        body = json.loads((RECORDINGS / f"queue_item_{'left' if cls == 'LeftItem' else 'waiting'}.json").read_bytes())
        body["id"] = item_id
        body["url"] = f"queue/item/{item_id}/"
        body["task"]["name"] = it["job"]
        body["actions"][0]["parameters"] = [
            {"_class": "hudson.model.StringParameterValue", "name": k, "value": v} for k, v in it["params"].items()]
        if cls == "LeftItem":
            body["cancelled"] = bool(it.get("cancelled"))
            body["executable"] = (None if it.get("cancelled") else
                                  {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                                   "number": it["number"], "url": f"{self.url}/job/{it['job']}/{it['number']}/"})
        return body


def _handler(fake: FakeJenkins):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one segment, no Nagle: else every keep-alive request waits
        # for the client's delayed ACK (~40 ms), and the benchmark would measure that.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def _send(self, code: int, body: bytes = b"", ctype: str = "application/json;charset=utf-8",
                  headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj) -> None:
            self._send(200, json.dumps(obj).encode())

        def _authorized(self) -> bool:
            want = "Basic " + base64.b64encode(f"{fake.user}:{fake.token}".encode()).decode()
            return self.headers.get("Authorization") == want

        def _session(self) -> str:
            m = re.search(r"JSESSIONID=([0-9a-f]+)", self.headers.get("Cookie", ""))
            return m.group(1) if m else ""

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            path, query = unquote(parts.path), parse_qs(parts.query)
            with fake.lock:
                fake.requests.append(f"{method} {parts.path}")
            if not self._authorized():
                return self._send(401, b"Unauthorized", "text/plain",
                                  {"WWW-Authenticate": 'Basic realm="Jenkins"'})
            if parts.path in fake.replay:
                return self._send(200, fake.replay[parts.path])
            if method == "GET" and path == "/crumbIssuer/api/json":
                sid = f"{len(fake.sessions) + 1:032x}"
                fake.sessions.add(sid)
                return self._send(200, (RECORDINGS / "crumb_issuer.json").read_bytes(),
                                  headers={"Set-Cookie": f"JSESSIONID={sid}; Path=/; HttpOnly"})
            if method == "POST":
                if self.headers.get(CRUMB["crumbRequestField"]) != CRUMB["crumb"] or \
                        self._session() not in fake.sessions:
                    return self._send(403, b"No valid crumb was included in the request", "text/html")
                with fake.lock:
                    fake.posts.append(parts.path + (f"?{parts.query}" if parts.query else ""))
            with fake.lock:
                return self._route(method, path, query, body)

        def _route(self, method, path, query, body):
            if method == "GET" and path == "/":  # where POST doDelete redirects to
                return self._send(200, b"<html>Dashboard</html>", "text/html")
            if method == "GET" and path == "/api/json":  # the job list (`tree` ignored: its fields)
                jobs = []
                for job in fake.jobs.values():
                    last = job.builds[-1] if job.builds else None
                    jobs.append({"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": job.name,
                                 "inQueue": bool(job.queue),
                                 "lastBuild": {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
                                               "building": last.status == "IN_PROGRESS",
                                               "duration": 0 if last.status == "IN_PROGRESS" else 5000,
                                               "timestamp": last.start} if last else None})
                return self._json({"_class": "hudson.model.Hudson", "jobs": jobs})
            if path == "/me/api/json":
                return self._json({"_class": "hudson.model.User", "id": fake.user, "fullName": fake.user})
            if method == "POST" and path == "/createItem":
                name = query["name"][0]
                if name in fake.jobs:
                    return self._send(400, b"A job already exists with the name", "text/html")
                fake.jobs[name] = Job(name, body.decode())
                return self._send(200)
            # The credentials plugin's REST API (recordings/SOURCES.md): createCredentials answers 409
            # for an existing id; credential/ID/config.xml is 404 for a missing one, GET redacts secrets.
            if path == "/credentials/store/system/domain/_/createCredentials" and method == "POST":
                if "xml" not in (self.headers.get("Content-Type") or ""):
                    return self._send(415, b"Unsupported Media Type", "text/html")
                try:
                    cid = ElementTree.fromstring(body).findtext("id") or ""
                except ElementTree.ParseError:
                    return self._send(500, b"Could not parse the credentials XML", "text/html")
                if cid in fake.credentials:
                    return self._send(409, b"Conflict", "text/html")
                fake.credentials[cid] = body.decode()
                return self._send(200)
            m = re.fullmatch(r"/credentials/store/system/domain/_/credential/([^/]+)/config\.xml", path)
            if m:
                if m.group(1) not in fake.credentials:
                    return self._send(404, b"Not Found", "text/html")
                if method == "POST":
                    fake.credentials[m.group(1)] = body.decode()
                    return self._send(200)
                redacted = re.sub(r"<(password|privateKey)>.*?</\1>", r"<\1><secret-redacted/></\1>",
                                  fake.credentials[m.group(1)], flags=re.S)
                return self._send(200, redacted.encode(), "application/xml")
            if method == "POST" and path == "/queue/cancelItem":
                it = fake.items.get(int(query["id"][0]))
                if it is not None and "number" not in it:
                    it["cancelled"] = True
                    fake.jobs[it["job"]].queue.remove(int(query["id"][0]))
                return self._send(204)
            m = re.fullmatch(r"/queue/item/(\d+)/api/json", path)
            if m:
                item = fake._item(int(m.group(1)))
                return self._json(item) if item else self._send(404, b"Not Found", "text/html")
            m = re.fullmatch(r"/job/([^/]+)(/.*)?", path)
            if not m or m.group(1) not in fake.jobs:
                return self._send(404, b"Not Found", "text/html")
            job, rest = fake.jobs[m.group(1)], m.group(2) or "/"
            if rest == "/api/json":
                last = job.builds[-1] if job.builds else None
                return self._json({
                    "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": job.name,
                    "url": f"{fake.url}/job/{job.name}/", "inQueue": bool(job.queue),
                    "queueItem": {"_class": "hudson.model.Queue$WaitingItem", "id": job.queue[0]} if job.queue else None,
                    "lastBuild": {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": last.number,
                                  "url": f"{fake.url}/job/{job.name}/{last.number}/"} if last else None,
                    "builds": [{"number": b.number} for b in reversed(job.builds)], "nextBuildNumber":
                        len(job.builds) + 1})
            if method == "POST" and rest == "/doDelete":  # Jenkins aborts a build of it and deletes it
                del fake.jobs[job.name]
                return self._send(302, headers={"Location": f"{fake.url}/"})
            if rest == "/config.xml":
                if method == "POST":
                    job.config = body.decode()
                    return self._send(200)
                return self._send(200, job.config.encode(), "application/xml")
            if method == "POST" and rest == "/buildWithParameters":
                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}
                for qid in job.queue:  # Jenkins folds a request with equal parameters into the queued item
                    if fake.items[qid]["params"] == params:
                        return self._send(201, headers={"Location": f"{fake.url}/queue/item/{qid}/"})
                fake._next_item += 1
                qid = fake._next_item
                fake.items[qid] = {"job": job.name, "params": params}
                job.queue.append(qid)
                return self._send(201, headers={"Location": f"{fake.url}/queue/item/{qid}/"})
            m = re.fullmatch(r"/(\d+)(/.*)", rest)
            if not m or not (0 < int(m.group(1)) <= len(job.builds)):
                return self._send(404, b"Not Found", "text/html")
            b, rest = job.builds[int(m.group(1)) - 1], m.group(2)
            if rest == "/":  # where POST /stop redirects to
                return self._send(200, b"<html>build</html>", "text/html")
            if rest == "/api/json":
                return self._json({"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "number": b.number,
                                   "building": b.status == "IN_PROGRESS", "description": b.description or None,
                                   "result": None if b.status == "IN_PROGRESS" else b.status,
                                   "url": f"{fake.url}/job/{job.name}/{b.number}/"})
            if rest == "/wfapi/describe":
                return self._json(fake._run_describe(job, b))
            if method == "POST" and rest == "/stop":
                if b.status == "IN_PROGRESS":
                    b.status = "ABORTED"
                    for st in b.steps.values():
                        if st.status == "IN_PROGRESS":
                            st.status, st.more = "ABORTED", False
                return self._send(302, headers={"Location": f"{fake.url}/job/{job.name}/{b.number}/"})
            m = re.fullmatch(r"/execution/node/(\d+)/wfapi/describe", rest)
            if m:
                d = fake._node_describe(job, b, int(m.group(1)))
                return self._json(d) if d else self._send(404, b"Not Found", "text/html")
            m = re.fullmatch(r"/execution/node/(\d+)/log/logText/progressiveText", rest)
            if m:
                st = next((s for s in b.steps.values() if s.node_id == int(m.group(1))), None) or next(
                    (n for s in b.steps.values() for n in s.later if n.node_id == int(m.group(1))), None)
                if st is None:
                    return self._send(404, b"Not Found", "text/html")
                start = int(query.get("start", ["0"])[0])
                data = st.log[start:]
                headers = {"X-Text-Size": str(len(st.log))}
                if st.more:
                    headers["X-More-Data"] = "true"
                return self._send(200, data, "text/plain;charset=UTF-8", headers)
            return self._send(404, b"Not Found", "text/html")

    return H
