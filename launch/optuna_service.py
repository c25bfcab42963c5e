#!/usr/bin/env python3
"""opine's Optuna service: Optuna's ask-and-tell API over HTTP/JSON, for `opine sweep`.

    python launch/optuna_service.py --storage sqlite:///optuna.db [--host 127.0.0.1] [--port 8765]

Each endpoint is one Optuna call (table in launch/optuna_service.md and DESIGN.md). One process owns
the storage and runs every Optuna call under one lock, so SQLite is safe behind it; PostgreSQL lets
several services and optuna-dashboard share studies. What Optuna does not store, the service keeps in
the storage's system attributes so a restart changes nothing: the sampler and pruner specs (rebuilt
by class name and arguments) and each trial's ask request id (a retried ask returns the same trial).
Prints "listening on http://HOST:PORT (storage KIND)" once it accepts requests. Errors are JSON
{"error": message}; a traceback goes to the service's stderr only.
"""
import argparse
import hmac
import http
import http.server
import inspect
import json
import math
import os
import re
import signal
import socket
import socketserver
import stat
import sys
import threading
import traceback
import urllib.parse
import uuid
import warnings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "OPINE_OPTUNA_TOKEN"
# Keys in Optuna's system attributes (study and trial) that the service owns.
SAMPLER_KEY = "opine:sampler"
PRUNER_KEY = "opine:pruner"
REQUEST_ID_KEY = "opine:request_id"
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
MAX_STUDY_NAME = 512  # Optuna's RDB column width
# Arguments that take a sampler or pruner object: given as a nested {"name", "args"} spec.
NESTED_SPECS = {"wrapped_pruner": "pruner", "independent_sampler": "sampler", "base_sampler": "sampler"}
REQUIRED = object()

optuna = None  # imported in main(), after the arguments are checked, so a refusal is quick


class ApiError(Exception):
    """A request the service refuses: an HTTP status and a one-line message for the client."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


# ---- request bodies ------------------------------------------------------------------------------


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value):
    return is_number(value) and math.isfinite(value)


def is_scalar(value):
    return value is None or isinstance(value, (str, bool, int, float))


KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (is_number, "a number"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "strings": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    # null stands for a non-finite value (nlohmann::json writes NaN as null)
    "values": (lambda v: isinstance(v, list) and all(x is None or is_number(x) for x in v),
               "a list of numbers"),
}


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def fields(body, schema):
    """body checked against {name: (kind, default)}: unknown, missing and mistyped fields are 400s.
    An optional field sent as null counts as absent."""
    unknown = sorted(set(body) - set(schema))
    if unknown:
        allowed = ", ".join(sorted(schema)) or "none"
        raise ApiError(400, f"unknown field {', '.join(map(repr, unknown))} (allowed: {allowed})")
    out = {}
    for name, (kind, default) in schema.items():
        value = body.get(name)
        if value is None:
            if default is REQUIRED:
                raise ApiError(400, f"missing field '{name}'")
            out[name] = default
            continue
        check, what = KINDS[kind]
        if not check(value):
            raise ApiError(400, f"field '{name}' must be {what}, not {json_type(value)}")
        out[name] = value
    return out


def finite_or_none(values):
    """Trial values made JSON-safe: a non-finite value (told by another Optuna client) becomes null."""
    if values is None:
        return None
    return [v if math.isfinite(v) else None for v in values]


# ---- samplers and pruners by name ------------------------------------------------------------------


def allowed_classes(what):
    module, base = ((optuna.samplers, optuna.samplers.BaseSampler) if what == "sampler"
                    else (optuna.pruners, optuna.pruners.BasePruner))
    classes = {}
    for name in module.__all__:
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, base) and not inspect.isabstract(cls):
            classes[name] = cls
    return classes


def parse_spec(value, what):
    """{"name": class, "args": {...}} -> the normalized spec, checked by building it.
    None stands for Optuna's default."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(400, f"field '{what}' must be an object, not {json_type(value)}")
    unknown = sorted(set(value) - {"name", "args"})
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ApiError(400, f"unknown field {names} in '{what}' (allowed: args, name)")
    name, args = value.get("name"), value.get("args")
    if not isinstance(name, str):
        raise ApiError(400, f"'{what}.name' must be a string, not {json_type(name)}")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ApiError(400, f"'{what}.args' must be an object, not {json_type(args)}")
    spec = {"name": name, "args": args}
    build_spec(spec, what)
    return spec


def build_spec(spec, what):
    if spec is None:
        return None
    classes = allowed_classes(what)
    cls = classes.get(spec["name"])
    if cls is None:
        raise ApiError(400, f"unknown {what} '{spec['name']}' (one of: {', '.join(sorted(classes))})")
    kwargs = {}
    for key, value in spec["args"].items():
        nested = NESTED_SPECS.get(key)
        if nested and isinstance(value, dict):
            value = build_spec(parse_spec(value, nested), nested)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ApiError:
        raise
    except Exception as e:  # Optuna's own check of the arguments
        call = f"{spec['name']}(**{json.dumps(spec['args'])})"
        raise ApiError(400, f"cannot build {what} {call}: {e}") from None


# ---- storage ---------------------------------------------------------------------------------------


def storage_kind(url):
    if url.startswith("journal://"):
        return "journal"
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("sqlite", "postgresql"):
        return scheme
    raise ValueError("unsupported storage URL (use sqlite:///FILE, postgresql://..., or journal:///FILE)")


def redact(url):
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def open_storage(args):
    """The storage and its kind. RDB storages get heartbeats and the retry of stale trials;
    Optuna's JournalStorage has no heartbeat."""
    kind = storage_kind(args.storage)
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend
        path = args.storage[len("journal://"):]
        if not path:
            raise ValueError("journal storage needs a file: journal:///path/to/file.log")
        return optuna.storages.JournalStorage(JournalFileBackend(path)), kind

    class RetryStale(optuna.storages.RetryHeartbeatStaleTrialCallback):
        # The retry copies the stale trial's system attributes; its request id is not the retry's.
        def __call__(self, study, trial):
            trial.system_attrs.pop(REQUEST_ID_KEY, None)
            super().__call__(study, trial)

    # pool_pre_ping: a long-lived service outlives its connections (database restarts, idle timeouts).
    rdb = optuna.storages.RDBStorage(
        args.storage, engine_kwargs={"pool_pre_ping": True} if kind == "postgresql" else None,
        heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period,
        heartbeat_stale_trial_callback=RetryStale(max_retry=args.max_retry))
    return optuna.storages.get_storage(rdb), kind  # Optuna's cached wrapper, made once


# ---- the Optuna calls ------------------------------------------------------------------------------


class Service:
    """One method per endpoint; each returns the JSON answer or raises ApiError."""

    def __init__(self, storage, kind):
        self.storage = storage
        self.kind = kind
        self.heartbeat = kind != "journal"
        self.lock = threading.Lock()  # every Optuna call: SQLite behind one process, samplers not thread-safe
        self.studies = {}  # name -> optuna.Study with its rebuilt sampler and pruner

    def study(self, name):
        try:
            study_id = self.storage.get_study_id_from_name(name)
        except KeyError:
            raise ApiError(404, f"no study named '{name}'") from None
        study = self.studies.get(name)
        if study is None or study._study_id != study_id:  # new, or deleted and made again elsewhere
            attrs = self.storage.get_study_system_attrs(study_id)
            try:
                sampler = build_spec(attrs.get(SAMPLER_KEY), "sampler")
                pruner = build_spec(attrs.get(PRUNER_KEY), "pruner")
            except ApiError as e:
                raise ApiError(409, f"study '{name}': its stored spec does not build: {e.message}") from None
            study = optuna.load_study(study_name=name, storage=self.storage, sampler=sampler, pruner=pruner)
            self.studies[name] = study
        return study

    def trial(self, study, number):
        try:
            trial_id = self.storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        except KeyError:
            raise ApiError(404, f"study '{study.study_name}' has no trial {number}") from None
        return trial_id, self.storage.get_trial(trial_id)

    def specs(self, study_id):
        attrs = self.storage.get_study_system_attrs(study_id)
        return attrs.get(SAMPLER_KEY), attrs.get(PRUNER_KEY)

    def health(self, body):
        fields(body, {})
        return {"status": "ok", "optuna": optuna.__version__, "storage": self.kind,
                "heartbeat": self.heartbeat}

    def create(self, body):
        b = fields(body, {"study_name": ("str", REQUIRED), "directions": ("strings", None),
                          "sampler": ("object", None), "pruner": ("object", None),
                          "load_if_exists": ("bool", False)})
        name, directions = b["study_name"], b["directions"]
        if not name or len(name) > MAX_STUDY_NAME:
            raise ApiError(400, f"'study_name' must have 1 to {MAX_STUDY_NAME} characters")
        if directions is not None and (not directions or not set(directions) <= {"minimize", "maximize"}):
            raise ApiError(400, "'directions' must be a non-empty list of \"minimize\" or \"maximize\"")
        sampler_spec, pruner_spec = parse_spec(b["sampler"], "sampler"), parse_spec(b["pruner"], "pruner")
        with self.lock:
            created = False
            try:
                study_id = self.storage.get_study_id_from_name(name)
            except KeyError:
                try:
                    study = optuna.create_study(
                        storage=self.storage, study_name=name, directions=directions or ["minimize"],
                        sampler=build_spec(sampler_spec, "sampler"), pruner=build_spec(pruner_spec, "pruner"))
                    study_id, created = study._study_id, True
                    self.storage.set_study_system_attr(study_id, SAMPLER_KEY, sampler_spec)
                    self.storage.set_study_system_attr(study_id, PRUNER_KEY, pruner_spec)
                    self.studies.pop(name, None)
                except optuna.exceptions.DuplicatedStudyError:  # another process created it just now
                    study_id = self.storage.get_study_id_from_name(name)
            if not created:
                self.check_existing(name, study_id, b["load_if_exists"], directions, sampler_spec,
                                    pruner_spec)
            study = self.study(name)
            sampler, pruner = self.specs(study_id)
            return {"study_name": name, "study_id": study_id, "directions": direction_names(study),
                    "sampler": sampler, "pruner": pruner, "created": created}

    def check_existing(self, name, study_id, load_if_exists, directions, sampler_spec, pruner_spec):
        """A create of an existing study: a load, or a 409 where the request disagrees with the study.
        Fields left out (null) agree with anything."""
        if not load_if_exists:
            raise ApiError(409, f"study '{name}' already exists (set load_if_exists to load it)")
        stored = [d.name.lower() for d in self.storage.get_study_directions(study_id)]
        if directions is not None and directions != stored:
            raise ApiError(409, f"study '{name}' exists with directions {json.dumps(stored)}, "
                                f"not {json.dumps(directions)}")
        attrs = self.storage.get_study_system_attrs(study_id)
        for key, spec, what in ((SAMPLER_KEY, sampler_spec, "sampler"), (PRUNER_KEY, pruner_spec, "pruner")):
            if spec is None:
                continue
            if key not in attrs:  # a study made outside the service: it takes this spec from now on
                self.storage.set_study_system_attr(study_id, key, spec)
                self.studies.pop(name, None)
            elif attrs[key] != spec:
                raise ApiError(409, f"study '{name}' exists with {what} {json.dumps(attrs[key])}, "
                                    f"not {json.dumps(spec)}")

    def describe(self, name, body):
        fields(body, {})
        with self.lock:
            study = self.study(name)
            counts = {state: 0 for state in STATES}
            for t in study.get_trials(deepcopy=False):
                counts[t.state.name] += 1
            sampler, pruner = self.specs(study._study_id)
            return {"study_name": name, "study_id": study._study_id, "directions": direction_names(study),
                    "sampler": sampler, "pruner": pruner, "trials": counts}

    def ask(self, name, body):
        b = fields(body, {"request_id": ("str", None), "distributions": ("object", {}),
                          "fixed_params": ("object", {})})
        distributions = {}
        for param, value in b["distributions"].items():
            if not isinstance(value, dict):
                raise ApiError(400, f"distribution of '{param}' must be an object, not {json_type(value)}")
            try:
                distributions[param] = optuna.distributions.json_to_distribution(json.dumps(value))
            except Exception as e:
                raise ApiError(400, f"distribution of '{param}' is not Optuna's JSON form: {e!r}") from None
        request_id = b["request_id"]
        if request_id == "":
            raise ApiError(400, "'request_id' must not be empty (leave it out for a fresh one)")
        with self.lock:
            study = self.study(name)
            optuna.storages.fail_stale_trials(study)  # their retry callback enqueues them again
            if request_id is not None:
                for t in study.get_trials(deepcopy=False):
                    if t.state.name != "WAITING" and t.system_attrs.get(REQUEST_ID_KEY) == request_id:
                        if t.state.name == "RUNNING" and self.heartbeat:
                            self.storage.record_heartbeat(t._trial_id)
                        return ask_answer(t, request_id)
            check_compatible(study, distributions)
            fixed = b["fixed_params"]
            for param, value in fixed.items():
                if param not in distributions:
                    raise ApiError(400, f"fixed parameter '{param}' has no distribution in this ask")
                try:
                    inside = distributions[param]._contains(distributions[param].to_internal_repr(value))
                except Exception:
                    inside = False
                if not inside:
                    raise ApiError(400, f"fixed parameter '{param}' = {value!r} is outside its distribution")
            if fixed:
                # Those parameters are set, the others sampled as usual (Optuna's PartialFixedSampler
                # around the study's own sampler, for this ask only).
                base = study.sampler
                study.sampler = optuna.samplers.PartialFixedSampler(fixed, base)
                try:
                    trial = study.ask(distributions)
                finally:
                    study.sampler = base
            else:
                trial = study.ask(distributions)
            if self.heartbeat:  # a trial never heartbeated is never stale: start its clock now
                self.storage.record_heartbeat(trial._trial_id)
            request_id = request_id or uuid.uuid4().hex
            self.storage.set_trial_system_attr(trial._trial_id, REQUEST_ID_KEY, request_id)
            return ask_answer(self.storage.get_trial(trial._trial_id), request_id)

    def report(self, name, number, body):
        b = fields(body, {"value": ("number", REQUIRED), "step": ("int", REQUIRED)})
        if not math.isfinite(b["value"]):
            raise ApiError(400, "'value' must be finite")
        if b["step"] < 0:
            raise ApiError(400, "'step' must be non-negative")
        with self.lock:
            study = self.study(name)
            if len(study.directions) > 1:
                raise ApiError(409, "report and pruning do not exist for multi-objective studies (Optuna)")
            trial_id, trial = self.trial(study, number)
            if trial.state.name != "RUNNING":
                raise ApiError(409, f"trial {number} is {trial.state.name}; only RUNNING trials take reports")
            # As Trial.report: a step reported before keeps its first value.
            if b["step"] not in trial.intermediate_values:
                self.storage.set_trial_intermediate_value(trial_id, b["step"], float(b["value"]))
            return {"should_prune": bool(study.pruner.prune(study, self.storage.get_trial(trial_id)))}

    def tell(self, name, number, body):
        b = fields(body, {"state": ("str", REQUIRED), "values": ("values", None)})
        state, values = b["state"], b["values"]
        if state not in ("COMPLETE", "PRUNED", "FAIL"):
            raise ApiError(400, "'state' must be COMPLETE, PRUNED or FAIL")
        if (state == "COMPLETE") != (values is not None):
            raise ApiError(400, "'values' go with COMPLETE and only with it")
        with self.lock:
            study = self.study(name)
            _, trial = self.trial(study, number)
            if trial.state.is_finished():  # idempotent: the state it was told first
                return tell_answer(trial, already_finished=True)
            if trial.state.name == "WAITING":
                raise ApiError(409, f"trial {number} is WAITING (enqueued, never asked); ask for it first")
            reason = None
            if state == "COMPLETE":
                if len(values) != len(study.directions):
                    raise ApiError(400, f"{len(values)} values for {len(study.directions)} objectives")
                if not all(is_finite(v) for v in values):
                    state, values = "FAIL", None
                    reason = "non-finite objective value; told as FAIL"
            told = study.tell(number, values=values, state=optuna.trial.TrialState[state],
                              skip_if_finished=True)
            return tell_answer(told, already_finished=False, reason=reason)

    def heartbeat_(self, name, number, body):
        fields(body, {})
        with self.lock:
            study = self.study(name)
            trial_id, trial = self.trial(study, number)
            recorded = self.heartbeat and trial.state.name == "RUNNING"
            if recorded:
                self.storage.record_heartbeat(trial_id)
            message = None
            if not self.heartbeat:
                message = f"{self.kind} storage has no heartbeat in Optuna; nothing recorded"
            elif not recorded:
                message = f"trial {number} is {trial.state.name}; nothing recorded"
            return {"ok": True, "recorded": recorded, "state": trial.state.name, "message": message}

    def enqueue(self, name, body):
        b = fields(body, {"params": ("object", REQUIRED), "skip_if_exists": ("bool", False),
                          "user_attrs": ("object", None)})
        bad = [k for k, v in b["params"].items() if not is_scalar(v) or (is_number(v) and not is_finite(v))]
        if bad:
            raise ApiError(400, f"params {', '.join(map(repr, bad))}: a value must be a finite number, "
                                "string, boolean or null")
        with self.lock:
            study = self.study(name)
            before = len(study.get_trials(deepcopy=False))
            study.enqueue_trial(b["params"], user_attrs=b["user_attrs"], skip_if_exists=b["skip_if_exists"])
            return {"enqueued": len(study.get_trials(deepcopy=False)) > before}

    def best(self, name, body):
        fields(body, {})
        with self.lock:
            study = self.study(name)
            if len(study.directions) == 1:
                try:
                    trials = [study.best_trial]
                except ValueError:  # no complete trial yet
                    trials = []
            else:
                trials = study.best_trials
            return {"best_trials": [{"number": t.number, "values": finite_or_none(t.values),
                                     "params": t.params, "state": t.state.name} for t in trials]}


def direction_names(study):
    return [d.name.lower() for d in study.directions]


def ask_answer(trial, request_id):
    return {"trial_number": trial.number, "params": trial.params, "request_id": request_id,
            "retried_from": trial.system_attrs.get("failed_trial"), "state": trial.state.name}


def tell_answer(trial, already_finished, reason=None):
    return {"trial_number": trial.number, "state": trial.state.name, "values": finite_or_none(trial.values),
            "already_finished": already_finished, "reason": reason}


def check_compatible(study, distributions):
    """A parameter's kind, log flag and choices may not change within a study. Optuna checks it only
    inside ask, after the trial exists; checking first leaves no orphan RUNNING trial."""
    unchecked = dict(distributions)
    for t in study.get_trials(deepcopy=False):
        for param in list(unchecked):
            if param in t.distributions:
                try:
                    optuna.distributions.check_distribution_compatibility(t.distributions[param],
                                                                          unchecked[param])
                except ValueError as e:
                    message = f"parameter '{param}' differs from its earlier distribution: {e}"
                    raise ApiError(409, message) from None
                del unchecked[param]
        if not unchecked:
            return


# ---- HTTP ------------------------------------------------------------------------------------------

STUDY = r"/v1/studies/(?P<name>[^/]+)"
TRIAL = STUDY + r"/trials/(?P<number>[^/]+)"
ROUTES = [  # (method, path pattern, Service method)
    ("GET", r"/v1/health", "health"),
    ("POST", r"/v1/studies", "create"),
    ("GET", STUDY, "describe"),
    ("POST", STUDY + "/ask", "ask"),
    ("POST", TRIAL + "/report", "report"),
    ("POST", TRIAL + "/tell", "tell"),
    ("POST", TRIAL + "/heartbeat", "heartbeat_"),
    ("POST", STUDY + "/enqueue", "enqueue"),
    ("GET", STUDY + "/best", "best"),
]


def route(method, path):
    """(Service method name, path arguments); 404 for an unknown path, 405 for a known one's wrong method."""
    allowed = []
    for m, pattern, action in ROUTES:
        match = re.fullmatch(pattern, path)
        if match:
            if m == method:
                args = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                if "number" in args:
                    if not re.fullmatch(r"[0-9]+", args["number"]):
                        raise ApiError(404, f"no trial '{args['number']}' (not a non-negative integer)")
                    args["number"] = int(args["number"])
                return action, args
            allowed.append(m)
    if allowed:
        raise ApiError(405, f"{method} is not allowed on {path} (allowed: {', '.join(allowed)})",
                       {"Allow": ", ".join(allowed)})
    raise ApiError(404, f"no endpoint {path}")


def storage_unavailable(error):
    """True for SQLAlchemy's OperationalError (database down, unreachable or locked), which Optuna
    wraps in StorageInternalError: a 503 the client may retry, not a 500."""
    while error is not None:
        if type(error).__name__ == "OperationalError":
            return True
        error = error.__cause__ or error.__context__
    return False


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for the C++ client
    server_version = "opine-optuna"
    timeout = 60  # seconds a connection may sit idle or mid-request

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def dispatch(self, method):
        self.body_pending = self.declared_length() != 0
        try:
            self.authorize()
            path = urllib.parse.urlsplit(self.path).path
            action, args = route(method, path)
            body = self.read_body()
            status, answer, extra = 200, getattr(self.server.service, action)(body=body, **args), {}
        except ApiError as e:
            status, answer, extra = e.status, {"error": e.message}, e.headers
        except Exception as e:
            if storage_unavailable(e):
                sys.stderr.write(f"optuna_service: {method} {self.path}: storage unavailable: {e}\n")
                message = "storage unavailable (database unreachable or locked); retry later"
                self.answer(503, {"error": message}, {"Retry-After": "5"})
                return
            sys.stderr.write(f"optuna_service: {method} {self.path} failed:\n{traceback.format_exc()}")
            message = f"internal error ({type(e).__name__}); see the service's log"
            status, answer, extra = 500, {"error": message}, {}
        self.answer(status, answer, extra)

    def authorize(self):
        token = self.server.token
        if token is None:
            return
        given = self.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(401, "missing or wrong token (send 'Authorization: Bearer <token>')",
                           {"WWW-Authenticate": "Bearer"})

    def declared_length(self):
        """The body's declared length; -1 where it cannot be known (chunked, or a bad header)."""
        if self.headers.get("Transfer-Encoding"):
            return -1
        try:
            return int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return -1

    def read_body(self):
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "send the body with a Content-Length, not a Transfer-Encoding")
        raw_length = self.headers.get("Content-Length", "0")
        if not re.fullmatch(r"[0-9]+", raw_length.strip()):
            raise ApiError(400, f"bad Content-Length '{raw_length}'")
        length = int(raw_length)
        if length > self.server.max_body:
            raise ApiError(413, f"body of {length} bytes is over the limit of {self.server.max_body}")
        raw = self.rfile.read(length) if length else b""
        self.body_pending = False
        if len(raw) < length:
            raise ApiError(400, "body shorter than its Content-Length")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ApiError(400, f"malformed JSON: {e}") from None
        if not isinstance(body, dict):
            raise ApiError(400, f"the body must be a JSON object, not {json_type(body)}")
        return body

    def answer(self, status, answer, extra=None):
        data = json.dumps(answer, allow_nan=False).encode()
        if getattr(self, "body_pending", False):  # an unread body would be parsed as the next request
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        # Malformed request lines and headers: JSON like every other answer, then close.
        self.close_connection = True
        self.body_pending = False
        self.answer(code, {"error": message or http.HTTPStatus(code).phrase})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind looks up the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class Server6(Server):
    address_family = socket.AF_INET6


# ---- command line ----------------------------------------------------------------------------------


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv):
    # No abbreviations: "--token X" must be refused, not taken for --token-file X.
    p = argparse.ArgumentParser(description="Optuna's ask-and-tell over HTTP/JSON for opine sweep.",
                                allow_abbrev=False)
    p.add_argument("--storage", default="sqlite:///optuna.db",
                   help="sqlite:///FILE (default sqlite:///optuna.db), postgresql://USER@HOST:PORT/DB, "
                        "or journal:///FILE (Optuna's journal file, for shared file systems)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback needs a token")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port (printed on stdout)")
    p.add_argument("--token-file", help=f"file holding the shared secret (else the env var {TOKEN_ENV})")
    p.add_argument("--heartbeat-interval", type=positive_int, default=60,
                   help="seconds between client heartbeats (RDB storages)")
    p.add_argument("--grace-period", type=positive_int, default=180,
                   help="seconds without a heartbeat after which a RUNNING trial is failed and retried")
    p.add_argument("--max-retry", type=int, default=2, help="retries of a trial failed for its heartbeat")
    p.add_argument("--max-body-bytes", type=positive_int, default=1 << 20, help="largest request body")
    args = p.parse_args(argv)
    if args.max_retry < 0:
        p.error("--max-retry must be non-negative")
    try:
        storage_kind(args.storage)
    except ValueError as e:
        p.error(str(e))
    return args


def read_token(args):
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"token file {args.token_file} is empty")
        if os.stat(args.token_file).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            print(f"optuna_service: warning: token file {args.token_file} is readable by others "
                  "(chmod 600 it)", file=sys.stderr)
        return token
    return os.environ.get(TOKEN_ENV) or None


def main(argv=None):
    global optuna
    args = parse_args(argv)
    try:
        token = read_token(args)
    except (OSError, ValueError) as e:
        print(f"optuna_service: error: {e}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK_HOSTS and token is None:
        print(f"optuna_service: error: binding {args.host} (not loopback) needs a token: --token-file FILE "
              f"or the env var {TOKEN_ENV}", file=sys.stderr)
        return 2

    import optuna as optuna_module
    optuna = optuna_module
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Optuna expects heartbeats from optimize()'s thread; here the clients send them, by design.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with")
    try:
        storage, kind = open_storage(args)
    except Exception as e:
        print(f"optuna_service: error: cannot open storage {redact(args.storage)}: {e}", file=sys.stderr)
        return 1
    try:
        server = (Server6 if ":" in args.host else Server)((args.host, args.port), Handler)
    except OSError as e:
        print(f"optuna_service: error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    server.service, server.token, server.max_body = Service(storage, kind), token, args.max_body_bytes

    # SIGTERM stops the server from another thread: shutdown() waits for serve_forever() to return.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"listening on http://{host}:{server.server_address[1]} (storage {kind})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
