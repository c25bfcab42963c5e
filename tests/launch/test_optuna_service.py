"""launch/optuna_service.py: each endpoint against what Optuna itself says, on SQLite, journal and PostgreSQL.

Starts the service as a subprocess on a free port, talks HTTP to it, and opens the same storage with
Optuna in this process to check the result. The PostgreSQL server is started here too (initdb + pg_ctl
in a temp dir, as the postgres user when running as root); that class skips only when the binaries are
missing. Also covered: retried asks, idempotent tells, stale trials failed and retried, restarts that
rebuild the sampler (same next parameters as a fresh Optuna with the same history), the token, the
loopback-only default, and refusals of oversized, malformed and mistyped requests.
"""
import glob
import http.client
import json
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.distributions import distribution_to_json
from optuna.storages.journal import JournalFileBackend

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "optuna_service.py"
PYTHON = os.environ.get("OPINE_PYTHON") or sys.executable
START_TIMEOUT = 30

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "rank": IntDistribution(4, 64, step=4),
    "optimizer": CategoricalDistribution(["adamw", "sgd"]),
}
TPE = {"name": "TPESampler", "args": {"seed": 7, "n_startup_trials": 2}}
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
MEDIAN = {"name": "MedianPruner", "args": {"n_startup_trials": 2, "n_warmup_steps": 0}}


def dists_json(distributions=DISTRIBUTIONS):
    """The ask body's form: Optuna's distribution_to_json, parsed."""
    return {name: json.loads(distribution_to_json(d)) for name, d in distributions.items()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The service as a subprocess; call() returns (status, JSON answer)."""

    def __init__(self, storage, *flags, env=None, log_dir):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="service-", suffix=".log", dir=log_dir,
                                               delete=False)
        self.proc = subprocess.Popen([PYTHON, str(SCRIPT), "--storage", storage, "--port", "0", *flags],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={**os.environ, **(env or {})})
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not line or not line[0].startswith("listening on http://127.0.0.1:"):
            raise AssertionError(f"service did not start: {line}\n{self.stop(check=False)}")
        self.banner = line[0].strip()
        self.port = int(self.banner.split(":")[2].split()[0])
        self.token = (env or {}).get("OPINE_OPTUNA_TOKEN")

    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self, check=True):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        log = self.stderr()
        self.log.close()
        if check:
            assert self.proc.returncode == 0, f"service exited {self.proc.returncode}\n{log}"
        return log

    def call(self, method, path, body=None, raw=None, token=None, headers=None):
        """token: None sends the service's own, "" sends none."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = dict(headers or {})
        token = self.token if token is None else token
        if token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {token}"
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        assert "Traceback" not in text, text
        assert response.getheader("Content-Type") == "application/json", response.getheaders()
        return response.status, json.loads(text)

    def ok(self, method, path, body=None):
        status, answer = self.call(method, path, body)
        assert status == 200, (method, path, body, status, answer)
        return answer


class Postgres:
    """A throwaway PostgreSQL server on a free port, trust auth on 127.0.0.1."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not bins or not os.path.exists(f"{bins[-1]}/initdb"):
            raise unittest.SkipTest("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin "
                                    "(apt-get install postgresql)")
        self.bin = bins[-1]
        self.root = tempfile.mkdtemp(prefix="opine-pg-")
        self.as_user = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise unittest.SkipTest("running as root and there is no postgres user to run PostgreSQL as")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = f"{self.root}/data"
        self.port = free_port()
        self.run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "--no-locale",
                 "-E", "UTF8")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self):
        self.run("pg_ctl", "-D", self.data, "-l", f"{self.root}/server.log", "-w", "-t", "30", "-o",
                 f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def run(self, tool, *args):
        result = subprocess.run([*self.as_user, f"{self.bin}/{tool}", *args], capture_output=True, text=True,
                                timeout=60, cwd=self.root)
        if result.returncode != 0:
            log = pathlib.Path(f"{self.root}/server.log")
            raise AssertionError(f"{tool} failed:\n{result.stdout}{result.stderr}"
                                 f"{log.read_text() if log.exists() else ''}")

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def rdb_storage(test):
    """One RDBStorage (one connection pool) per test class, closed with the class."""
    cls = type(test)
    if "rdb" not in cls.__dict__:
        cls.rdb = optuna.storages.RDBStorage(cls.storage_url)
        cls.addClassCleanup(cls.rdb.engine.dispose)
    return cls.rdb


class Endpoints:
    """Every endpoint on one storage; subclasses say which (storage_url, optuna_storage, kind)."""

    kind = None
    heartbeat = True

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(tmp.cleanup)
        cls.tmp = tmp.name
        cls.prepare_storage()
        cls.service = cls.start()
        cls.addClassCleanup(cls.service.stop)

    @classmethod
    def start(cls, *flags, **kw):
        return Service(cls.storage_url, *flags, log_dir=cls.tmp, **kw)

    def load(self, name, **kw):
        return optuna.load_study(study_name=name, storage=self.optuna_storage(), **kw)

    def create(self, name, directions=("minimize",), sampler=TPE, pruner=MEDIAN, service=None):
        body = {"study_name": name, "directions": list(directions), "sampler": sampler, "pruner": pruner}
        return (service or self.service).ok("POST", "/v1/studies", body)

    def ask(self, name, request_id, distributions=DISTRIBUTIONS, service=None):
        body = {"request_id": request_id, "distributions": dists_json(distributions)}
        return (service or self.service).ok("POST", f"/v1/studies/{name}/ask", body)

    def tell(self, name, number, values=None, state="COMPLETE", service=None):
        body = {"state": state} if values is None else {"state": state, "values": values}
        return (service or self.service).ok("POST", f"/v1/studies/{name}/trials/{number}/tell", body)

    def report(self, name, number, value, step):
        return self.service.call("POST", f"/v1/studies/{name}/trials/{number}/report",
                                 {"value": value, "step": step})

    def test_health(self):
        self.assertEqual(self.service.ok("GET", "/v1/health"),
                         {"status": "ok", "optuna": optuna.__version__, "storage": self.kind,
                          "heartbeat": self.heartbeat})
        self.assertIn(f"(storage {self.kind})", self.service.banner)

    def test_create_and_load(self):
        made = self.create("create", directions=["maximize"])
        study = self.load("create")
        self.assertEqual(made, {"study_name": "create", "study_id": study._study_id, "created": True,
                                "directions": ["maximize"], "sampler": TPE, "pruner": MEDIAN})
        self.assertEqual(study.directions, [optuna.study.StudyDirection.MAXIMIZE])

        body = {"study_name": "create", "directions": ["maximize"], "sampler": TPE, "pruner": MEDIAN}
        status, answer = self.service.call("POST", "/v1/studies", body)
        self.assertEqual(status, 409, answer)
        self.assertIn("load_if_exists", answer["error"])
        loaded = self.service.ok("POST", "/v1/studies", {**body, "load_if_exists": True})
        self.assertEqual(loaded, {**made, "created": False})
        # Fields left out agree with what the study has.
        bare = {"study_name": "create", "load_if_exists": True}
        self.assertEqual(self.service.ok("POST", "/v1/studies", bare), loaded)
        for change in ({"directions": ["minimize"]}, {"directions": ["maximize", "minimize"]},
                       {"sampler": {"name": "TPESampler", "args": {"seed": 8, "n_startup_trials": 2}}},
                       {"sampler": {"name": "RandomSampler", "args": {"seed": 7}}},
                       {"pruner": {"name": "NopPruner"}}):
            status, answer = self.service.call("POST", "/v1/studies", {**bare, **body, **change})
            self.assertEqual(status, 409, (change, answer))

        described = self.service.ok("GET", "/v1/studies/create")
        self.assertEqual(described, {"study_name": "create", "study_id": study._study_id,
                                     "directions": ["maximize"], "sampler": TPE, "pruner": MEDIAN,
                                     "trials": {s: 0 for s in STATES}})
        self.assertEqual(self.service.call("GET", "/v1/studies/missing")[0], 404)
        self.assertEqual(self.service.call("GET", "/v1/studies/missing/best")[0], 404)

    def test_ask_tell_best(self):
        self.create("asktell", sampler={"name": "RandomSampler", "args": {"seed": 1}})
        first = self.ask("asktell", "req-a")
        self.assertEqual((first["trial_number"], first["request_id"], first["retried_from"], first["state"]),
                         (0, "req-a", None, "RUNNING"))
        for name, value in first["params"].items():
            self.assertTrue(DISTRIBUTIONS[name]._contains(DISTRIBUTIONS[name].to_internal_repr(value)), name)
        trial = self.load("asktell").trials[0]
        self.assertEqual(trial.params, first["params"])
        self.assertEqual(trial.distributions, DISTRIBUTIONS)
        self.assertEqual(trial.state, optuna.trial.TrialState.RUNNING)

        # A retried ask (same request id) is the same trial, not a new one.
        self.assertEqual(self.ask("asktell", "req-a"), first)
        self.assertEqual(len(self.load("asktell").trials), 1)

        told = self.tell("asktell", 0, [0.5])
        self.assertEqual(told, {"trial_number": 0, "state": "COMPLETE", "values": [0.5],
                                "already_finished": False, "reason": None})
        again = self.tell("asktell", 0, [9.0])  # idempotent: keeps the first tell
        self.assertEqual(again, {**told, "already_finished": True})
        self.assertEqual(self.tell("asktell", 0, state="FAIL")["state"], "COMPLETE")
        self.assertEqual(self.load("asktell").trials[0].values, [0.5])
        self.assertEqual(self.ask("asktell", "req-a"), {**first, "state": "COMPLETE"})

        second = self.ask("asktell", "req-b")
        self.assertEqual(second["trial_number"], 1)
        self.tell("asktell", 1, [0.2])
        third = self.ask("asktell", "req-c")["trial_number"]
        self.assertEqual(self.tell("asktell", third, state="FAIL")["state"], "FAIL")
        # Non-finite objectives: null (how nlohmann::json writes NaN), NaN and an overflowing literal.
        for raw in (b'{"state": "COMPLETE", "values": [null]}', b'{"state": "COMPLETE", "values": [NaN]}',
                    b'{"state": "COMPLETE", "values": [1e999]}'):
            number = self.ask("asktell", f"nonfinite-{raw}")["trial_number"]
            status, answer = self.service.call("POST", f"/v1/studies/asktell/trials/{number}/tell", raw=raw)
            self.assertEqual((status, answer["state"], answer["values"]), (200, "FAIL", None), answer)
            self.assertIn("non-finite", answer["reason"])
            self.assertEqual(self.load("asktell").trials[number].state, optuna.trial.TrialState.FAIL)
        self.tell("asktell", self.ask("asktell", "req-pruned")["trial_number"], state="PRUNED")

        study = self.load("asktell")
        best = self.service.ok("GET", "/v1/studies/asktell/best")
        expected = study.best_trial
        self.assertEqual(best, {"best_trials": [{"number": expected.number, "values": expected.values,
                                                 "params": expected.params, "state": "COMPLETE"}]})
        self.assertEqual(best["best_trials"][0]["number"], 1)
        counts = {s: len(study.get_trials(states=(optuna.trial.TrialState[s],))) for s in STATES}
        self.assertEqual(self.service.ok("GET", "/v1/studies/asktell")["trials"], counts)
        self.assertEqual(counts, {"COMPLETE": 2, "PRUNED": 1, "FAIL": 4, "RUNNING": 0, "WAITING": 0})

        for body, status in (({"state": "COMPLETE"}, 400), ({"state": "FAIL", "values": [1.0]}, 400),
                             ({"state": "RUNNING"}, 400), ({"state": "COMPLETE", "values": [1.0, 2.0]}, 400)):
            number = self.ask("asktell", f"bad-{json.dumps(body)}")["trial_number"]
            got = self.service.call("POST", f"/v1/studies/asktell/trials/{number}/tell", body)
            self.assertEqual(got[0], status, (body, got))
        status, _ = self.service.call("POST", "/v1/studies/asktell/trials/999/tell", {"state": "FAIL"})
        self.assertEqual(status, 404)
        # A parameter's kind may not change within a study (Optuna's rule), checked before any trial is made.
        before = len(self.load("asktell").trials)
        status, answer = self.service.call("POST", "/v1/studies/asktell/ask",
                                           {"distributions": dists_json({"rank": FloatDistribution(4, 64)})})
        self.assertEqual(status, 409, answer)
        self.assertEqual(len(self.load("asktell").trials), before)
        self.assertEqual(self.service.call("GET", "/v1/studies/empty-best")[0], 404)
        self.create("empty-best")
        self.assertEqual(self.service.ok("GET", "/v1/studies/empty-best/best"), {"best_trials": []})

    def test_report_prunes_a_bad_trial(self):
        self.create("prune")
        for request_id in ("good-1", "good-2"):
            number = self.ask("prune", request_id)["trial_number"]
            for step in range(3):
                self.assertEqual(self.report("prune", number, 1.0 + step, step),
                                 (200, {"should_prune": False}))
            self.tell("prune", number, [1.0])
        fine = self.ask("prune", "fine")["trial_number"]
        self.assertEqual(self.report("prune", fine, 0.5, 0), (200, {"should_prune": False}))
        bad = self.ask("prune", "bad")["trial_number"]
        self.assertEqual(self.report("prune", bad, 50.0, 0), (200, {"should_prune": True}))
        # Optuna's own MedianPruner on the same storage agrees, on both.
        study = self.load("prune", pruner=optuna.pruners.MedianPruner(**MEDIAN["args"]))
        self.assertEqual(study.trials[bad].intermediate_values, {0: 50.0})
        self.assertTrue(study.pruner.prune(study, study.trials[bad]))
        self.assertFalse(study.pruner.prune(study, study.trials[fine]))
        self.assertEqual(self.report("prune", bad, 0.5, 0), (200, {"should_prune": True}))  # step kept
        self.assertEqual(self.load("prune").trials[bad].intermediate_values, {0: 50.0})
        told = self.tell("prune", bad, state="PRUNED")
        self.assertEqual((told["state"], told["values"]), ("PRUNED", [50.0]))  # Optuna: the last report
        self.tell("prune", fine, [0.5])
        self.assertEqual(self.load("prune").trials[bad].state, optuna.trial.TrialState.PRUNED)

        self.assertEqual(self.report("prune", bad, 1.0, 2)[0], 409)  # finished
        self.assertEqual(self.report("prune", 99, 1.0, 0)[0], 404)
        number = self.ask("prune", "refused")["trial_number"]
        for body in ({"value": 1.0}, {"value": "1", "step": 0}, {"value": 1.0, "step": 0.5},
                     {"value": 1.0, "step": -1}, {"value": True, "step": 0}):
            got = self.service.call("POST", f"/v1/studies/prune/trials/{number}/report", body)
            self.assertEqual(got[0], 400, (body, got))
        status, answer = self.service.call("POST", f"/v1/studies/prune/trials/{number}/report",
                                           raw=b'{"value": 1e999, "step": 0}')
        self.assertEqual((status, answer), (400, {"error": "'value' must be finite"}))

    def test_multi_objective(self):
        self.create("multi", directions=["minimize", "maximize"], sampler={"name": "RandomSampler"},
                    pruner=None)
        a = self.ask("multi", "a")["trial_number"]
        status, answer = self.report("multi", a, 1.0, 0)
        self.assertEqual(status, 409, answer)
        self.tell("multi", a, [1.0, 1.0])
        self.tell("multi", self.ask("multi", "b")["trial_number"], [2.0, 2.0])
        self.tell("multi", self.ask("multi", "c")["trial_number"], [3.0, 1.0])  # dominated by a
        study = self.load("multi")
        best = self.service.ok("GET", "/v1/studies/multi/best")["best_trials"]
        self.assertEqual(sorted(t["number"] for t in best), sorted(t.number for t in study.best_trials))
        self.assertEqual(sorted(t["number"] for t in best), [0, 1])

    def test_enqueue(self):
        self.create("enqueue")
        params = {"lr": 0.001, "rank": 16, "optimizer": "sgd"}
        self.assertEqual(self.service.ok("POST", "/v1/studies/enqueue/enqueue", {"params": params}),
                         {"enqueued": True})
        waiting = self.load("enqueue").trials
        self.assertEqual([t.state for t in waiting], [optuna.trial.TrialState.WAITING])
        self.assertEqual(waiting[0].system_attrs["fixed_params"], params)
        self.assertEqual(self.service.ok("GET", "/v1/studies/enqueue")["trials"]["WAITING"], 1)
        self.assertEqual(self.service.ok("POST", "/v1/studies/enqueue/enqueue",
                                         {"params": params, "skip_if_exists": True}), {"enqueued": False})
        asked = self.ask("enqueue", "first")
        self.assertEqual((asked["trial_number"], asked["params"]), (0, params))
        self.assertEqual(self.load("enqueue").trials[0].params, params)
        for body in ({"params": {"lr": [1, 2]}}, {"params": "lr=1"}, {"params": {}, "skip": True}):
            self.assertEqual(self.service.call("POST", "/v1/studies/enqueue/enqueue", body)[0], 400, body)

    def test_heartbeat(self):
        self.create("heartbeat")
        number = self.ask("heartbeat", "h")["trial_number"]
        answer = self.service.ok("POST", f"/v1/studies/heartbeat/trials/{number}/heartbeat")
        self.assertEqual((answer["ok"], answer["recorded"], answer["state"]),
                         (True, self.heartbeat, "RUNNING"))
        if not self.heartbeat:
            self.assertIn("no heartbeat", answer["message"])
        self.tell("heartbeat", number, [1.0])
        answer = self.service.ok("POST", f"/v1/studies/heartbeat/trials/{number}/heartbeat")
        self.assertEqual((answer["recorded"], answer["state"]), (False, "COMPLETE"))
        self.assertEqual(self.service.call("POST", "/v1/studies/heartbeat/trials/7/heartbeat")[0], 404)

    def test_restart_retry_and_sampler(self):
        """Stale trials failed and retried (heartbeat storages), then a restart: same study, and the
        rebuilt TPESampler(seed) picks what a fresh Optuna with the same history picks."""
        first = self.start("--heartbeat-interval", "1", "--grace-period", "1", "--max-retry", "1")
        try:
            self.create("restart", service=first)
            for i in range(3):
                asked = self.ask("restart", f"r{i}", service=first)
                value = asked["params"]["lr"] * 10 + asked["params"]["rank"]
                self.tell("restart", asked["trial_number"], [value], service=first)
            if self.heartbeat:
                stale = self.ask("restart", "stale", service=first)
                alive = self.ask("restart", "alive", service=first)
                for _ in range(4):  # 2.4 s: past the 1 s grace period for `stale`, not for `alive`
                    time.sleep(0.6)
                    first.ok("POST", f"/v1/studies/restart/trials/{alive['trial_number']}/heartbeat")
                retry = self.ask("restart", "retry", service=first)
                self.assertEqual((retry["retried_from"], retry["params"]),
                                 (stale["trial_number"], stale["params"]))
                trials = self.load("restart").trials
                self.assertEqual(trials[stale["trial_number"]].state, optuna.trial.TrialState.FAIL)
                self.assertEqual(trials[alive["trial_number"]].state, optuna.trial.TrialState.RUNNING)
                self.assertEqual(trials[retry["trial_number"]].system_attrs["failed_trial"],
                                 stale["trial_number"])
                # The stale trial's own request id still finds it, failed.
                self.assertEqual(self.ask("restart", "stale", service=first), {**stale, "state": "FAIL"})
                self.tell("restart", retry["trial_number"], [3.0], service=first)
                self.tell("restart", alive["trial_number"], [4.0], service=first)
        finally:
            first.stop()

        # What Optuna itself would ask next: the same history in memory, a fresh seeded sampler.
        history = self.load("restart").trials
        fresh = optuna.create_study(sampler=optuna.samplers.TPESampler(**TPE["args"]))
        fresh.add_trials(history)
        expected = fresh.ask(DISTRIBUTIONS).params

        second = self.start()
        try:
            described = second.ok("GET", "/v1/studies/restart")
            self.assertEqual((described["sampler"], described["pruner"]), (TPE, MEDIAN))
            complete = [t for t in history if t.state == optuna.trial.TrialState.COMPLETE]
            self.assertEqual(described["trials"]["COMPLETE"], len(complete))
            other = {"study_name": "restart", "load_if_exists": True, "sampler": {"name": "TPESampler"}}
            status, answer = second.call("POST", "/v1/studies", other)
            self.assertEqual(status, 409, answer)
            asked = self.ask("restart", "after-restart", service=second)
            self.assertEqual(asked["trial_number"], len(history))
            self.assertEqual(asked["params"], expected)
            # Request ids persist.
            self.assertEqual(self.ask("restart", "r0", service=second)["trial_number"], 0)
        finally:
            second.stop()


class Sqlite(Endpoints, unittest.TestCase):
    kind = "sqlite"

    @classmethod
    def prepare_storage(cls):
        cls.storage_url = f"sqlite:///{cls.tmp}/optuna.db"

    def optuna_storage(self):
        return rdb_storage(self)

    def test_optuna_dashboard_reads_the_same_storage(self):
        """optuna-dashboard (its WSGI app, as `optuna-dashboard URL` serves it) lists what the service wrote."""
        import io
        import sys as system
        from optuna_dashboard import wsgi
        self.create("dashboard")
        for i in range(2):
            n = self.ask("dashboard", f"dash-{i}")["trial_number"]
            self.service.ok("POST", f"/v1/studies/dashboard/trials/{n}/tell", {"state": "COMPLETE", "values": [0.5 + i]})
        app = wsgi(self.storage_url)

        def get(path):
            out = {}
            env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(b""),
                   "wsgi.errors": system.stderr, "SERVER_NAME": "x", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
            body = b"".join(app(env, lambda status, headers, exc=None: out.setdefault("status", status)))
            self.assertTrue(out["status"].startswith("200"), (path, out["status"]))
            return json.loads(body)

        studies = {s["study_name"]: s for s in get("/api/studies")["study_summaries"]}
        self.assertIn("dashboard", studies)
        detail = get(f"/api/studies/{studies['dashboard']['study_id']}")
        self.assertEqual(sorted(t["values"][0] for t in detail["trials"]), [0.5, 1.5])

    def test_concurrent_asks(self):
        """Asks from many threads at once: one trial per request id, however the calls interleave."""
        self.create("concurrent")
        results, errors = [], []

        def worker(ids):
            try:
                results.extend((i, self.ask("concurrent", i)["trial_number"]) for i in ids)
            except Exception as e:  # reported below: an assert in a thread would be lost
                errors.append(e)

        threads = [threading.Thread(target=worker, args=([f"w{w}-{k}" for k in range(3)] + ["shared"],))
                   for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        numbers = dict(results)
        self.assertEqual(len(set(numbers.values())), 19)  # 18 own ids + one "shared"
        self.assertEqual({n for i, n in results if i == "shared"}, {numbers["shared"]})
        self.assertEqual(len(self.load("concurrent").trials), 19)

    def test_nested_spec(self):
        """Arguments that take a sampler or pruner object are given as nested specs."""
        patient = {"name": "PatientPruner", "args": {"wrapped_pruner": MEDIAN, "patience": 2}}
        self.create("nested", pruner=patient)
        self.assertEqual(self.service.ok("GET", "/v1/studies/nested")["pruner"], patient)
        number = self.ask("nested", "n")["trial_number"]
        self.assertEqual(self.report("nested", number, 1.0, 0), (200, {"should_prune": False}))

    def test_refusals(self):
        call = self.service.call
        self.create("refusals")
        cases = [
            ("POST", "/v1/studies", b"{bad", 400, "malformed JSON"),
            ("POST", "/v1/studies", b"[1, 2]", 400, "JSON object"),
            ("POST", "/v1/studies", b'\xff{"a": 1}', 400, "malformed JSON"),
            ("POST", "/v1/studies", b'{"study_name": "x", "colour": 1}', 400, "unknown field 'colour'"),
            ("POST", "/v1/studies", b'{"study_name": 3}', 400, "'study_name' must be a string"),
            ("POST", "/v1/studies", b'{"study_name": "x", "directions": "maximize"}', 400, "list of strings"),
            ("POST", "/v1/studies", b'{"study_name": "x", "directions": ["up"]}', 400, "directions"),
            ("POST", "/v1/studies", b'{"directions": ["minimize"]}', 400, "missing field 'study_name'"),
            ("POST", "/v1/studies", b'{"study_name": "x", "sampler": {"name": "os.system"}}', 400,
             "unknown sampler"),
            ("POST", "/v1/studies", b'{"study_name": "x", "sampler": {"name": "TPESampler", "args": [1]}}',
             400, "'sampler.args' must be an object"),
            ("POST", "/v1/studies", b'{"study_name": "x", "sampler": {"name": "TPESampler", "args": {"z": 1}}'
                                    b'}', 400, "cannot build sampler TPESampler"),
            ("POST", "/v1/studies", b'{"study_name": "x", "pruner": {"name": "PatientPruner", "args": '
                                    b'{"wrapped_pruner": {"name": "Nope"}, "patience": 1}}}',
             400, "unknown pruner 'Nope'"),
            ("POST", "/v1/studies", b'{"study_name": "x", "pruner": {"name": "NopPruner", "extra": 1}}', 400,
             "unknown field 'extra'"),
            ("POST", "/v1/studies", b'{"study_name": "x", "load_if_exists": "yes"}', 400, "true or false"),
            ("POST", "/v1/studies/refusals/ask", b'{"request_id": 5}', 400, "'request_id' must be a string"),
            ("POST", "/v1/studies/refusals/ask", b'{"request_id": ""}', 400, "'request_id' must not be empty"),
            ("POST", "/v1/studies/refusals/ask", b'{"distributions": {"x": {"name": "Nope"}}}', 400,
             "Optuna's JSON form"),
            ("POST", "/v1/studies/refusals/ask", b'{"distributions": {"x": 1}}', 400, "must be an object"),
            ("POST", "/v1/studies/refusals/trials/0/heartbeat", b'{"x": 1}', 400, "unknown field"),
            ("GET", "/v1/studies/refusals/ask", None, 405, "not allowed"),
            ("DELETE", "/v1/studies/refusals", None, 405, "not allowed"),
            ("GET", "/v1/nothing", None, 404, "no endpoint"),
            ("POST", "/v1/studies/refusals/trials/x/tell", b'{"state": "FAIL"}', 404, "no trial 'x'"),
        ]
        for method, path, raw, status, message in cases:
            got_status, answer = call(method, path, raw=raw)
            self.assertEqual(got_status, status, (path, raw, answer))
            self.assertEqual(list(answer), ["error"], answer)
            self.assertIn(message, answer["error"], (path, raw))
        self.assertNotIn("x", optuna.get_all_study_names(self.optuna_storage()))


class Journal(Endpoints, unittest.TestCase):
    kind = "journal"
    heartbeat = False  # Optuna's JournalStorage has none

    @classmethod
    def prepare_storage(cls):
        cls.journal = f"{cls.tmp}/optuna.log"
        cls.storage_url = f"journal://{cls.journal}"

    def optuna_storage(self):
        return optuna.storages.JournalStorage(JournalFileBackend(self.journal))


class PostgreSQL(Endpoints, unittest.TestCase):
    kind = "postgresql"

    @classmethod
    def prepare_storage(cls):
        cls.server = Postgres()
        cls.addClassCleanup(cls.server.stop)
        cls.storage_url = cls.server.url

    def optuna_storage(self):
        return rdb_storage(self)

    def test_database_down_is_503(self):
        """A stopped database is a 503 to retry, and the service recovers when it is back."""
        self.create("down")
        self.server.run("pg_ctl", "-D", self.server.data, "-m", "fast", "-w", "stop")
        try:
            status, answer = self.service.call("GET", "/v1/studies/down")
            self.assertEqual(status, 503, answer)
            self.assertIn("storage unavailable", answer["error"])
        finally:
            self.server.start()
        self.assertEqual(self.service.ok("GET", "/v1/studies/down")["study_name"], "down")
        self.optuna_storage().engine.dispose()  # this process's pooled connections died with the server


class Access(unittest.TestCase):
    """The token, the loopback-only default and the body limit."""

    @classmethod
    def setUpClass(cls):
        tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(tmp.cleanup)
        cls.tmp = tmp.name
        cls.storage_url = f"sqlite:///{cls.tmp}/optuna.db"

    def run_service(self, *flags, env=None):
        return subprocess.run([PYTHON, str(SCRIPT), "--storage", self.storage_url, "--port", "0", *flags],
                              capture_output=True, text=True, timeout=60,
                              env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None})

    def check_token(self, service, token):
        for given in ("", "wrong", token + "x", token[:-1]):
            status, answer = service.call("GET", "/v1/health", headers={"Authorization": f"Bearer {given}"})
            self.assertEqual(status, 401, given)
            self.assertIn("token", answer["error"])
        self.assertEqual(service.call("POST", "/v1/studies", {"study_name": "t"},
                                      headers={"Authorization": "Basic abc"})[0], 401)
        self.assertEqual(service.call("GET", "/v1/health", token="")[0], 401)
        self.assertEqual(service.call("GET", "/v1/nothing", token="")[0], 401)  # before routing
        self.assertEqual(service.call("GET", "/v1/health", token=token)[0], 200)

    def test_token_from_env_and_body_limit(self):
        token = "s3cret-env-token"
        service = Service(self.storage_url, "--max-body-bytes", "4096", env={"OPINE_OPTUNA_TOKEN": token},
                          log_dir=self.tmp)
        try:
            self.check_token(service, token)
            big = {"study_name": "big", "load_if_exists": True, "pruner": {"name": "NopPruner"},
                   "sampler": {"name": "GridSampler", "args": {"search_space": {"x": list(range(2000))}}}}
            status, answer = service.call("POST", "/v1/studies", big)
            self.assertEqual(status, 413, answer)
            self.assertIn("over the limit of 4096", answer["error"])
            self.assertEqual(service.call("GET", "/v1/health")[0], 200)  # still serving
        finally:
            service.stop()

    def test_token_from_file(self):
        path = pathlib.Path(self.tmp, "token")
        path.write_text("file-token\n")
        path.chmod(0o600)
        service = Service(self.storage_url, "--token-file", str(path), log_dir=self.tmp)
        service.token = "file-token"
        try:
            self.check_token(service, "file-token")
        finally:
            service.stop()

    def test_non_loopback_bind_needs_token(self):
        result = self.run_service("--host", "0.0.0.0", env={"OPINE_OPTUNA_TOKEN": None})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("needs a token", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stdout, "")
        result = self.run_service("--token", "abc")  # never on the command line
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("unrecognized arguments", result.stderr)
        result = self.run_service("--token-file", f"{self.tmp}/missing", env={"OPINE_OPTUNA_TOKEN": None})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("missing", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
