#!/usr/bin/env python3
"""apixo-sim: a local simulator of the APIXO image-generation task API.

    python3 sim/apixo_sim.py [--host 127.0.0.1] [--port 0] [--keys KEY,...] [--time-scale F]
                             [--rpm N] [--concurrency N] [--seed N] [--small-images] [--url-ttl S]

The first line on stdout is `apixo-sim listening on http://HOST:PORT`. Python standard library
only. sim/README.md documents every option, endpoint, fault and counter.
"""

import argparse
import heapq
import http.client
import http.server
import ipaddress
import json
import math
import os
import random
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from collections import Counter, deque

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sim_images import ImageCache  # noqa: E402

VERSION = "1.0.0"
MAX_BODY = 1 << 20                 # 1 MiB: larger request bodies are refused with 400
DISCARD_LIMIT = 8 << 20            # an oversized body up to this is read and dropped first
DEFAULT_URL_TTL = 15 * 24 * 3600   # seconds (simulated time)
LATENCY_CAP = 3600.0               # --latency: no processing time exceeds this (simulated s)
WEBHOOK_TIMEOUT = 30.0             # seconds (simulated time) the receiver has to answer 200
WEBHOOK_RETRY_DELAYS = (30.0, 60.0, 120.0)  # seconds (simulated) before retries 1, 2, 3
SMALL_SIDE = 64                    # --small-images: longest side in pixels

# ---------------------------------------------------------------------------------------------
# Models

ASPECT_RATIOS = ("1:1", "2:3", "3:2", "4:3", "3:4", "9:16", "16:9", "21:9")
SIZES_2K = {"1:1": (2048, 2048), "4:3": (2304, 1728), "3:4": (1728, 2304),
            "16:9": (2848, 1600), "9:16": (1600, 2848), "3:2": (2496, 1664),
            "2:3": (1664, 2496), "21:9": (3136, 1344)}
SIZES_3K = {"1:1": (3072, 3072), "4:3": (3456, 2592), "3:4": (2592, 3456),
            "16:9": (4096, 2304), "9:16": (2304, 4096), "3:2": (3744, 2496),
            "2:3": (2496, 3744), "21:9": (4704, 2016)}
SIZES_4K = {"1:1": (4096, 4096), "4:3": (4704, 3520), "3:4": (3520, 4704),
            "16:9": (5504, 3040), "9:16": (3040, 5504), "3:2": (4992, 3328),
            "2:3": (3328, 4992), "21:9": (6240, 2656)}
# processing time in seconds (simulated), drawn uniformly, by tier
TIMING = {"2K": (25.0, 35.0), "3K": (35.0, 50.0), "4K": (45.0, 60.0)}
QUEUE_WAIT = (0.5, 2.0)            # pending phase, seconds (simulated)
FAIL_FRACTION = (0.2, 0.4)         # a failing task fails after this share of its processing time
EXPLICIT_MIN_PIXELS = 2560 * 1440  # explicit WIDTHxHEIGHT sizes: pixel range and ratio range
EXPLICIT_MAX_PIXELS = 4096 * 4096
EXPLICIT_MAX_RATIO = 16.0
LOW_TIER_MAX_PIXELS = 6_000_000    # explicit sizes up to this take 2K timing, above the high tier


class ModelSpec:
    def __init__(self, name, strict, tiers=None, web_search=False, output_format=False):
        self.name = name
        self.strict = strict
        self.tiers = tiers or {}            # "2K" -> size table
        self.web_search = web_search
        self.output_format = output_format

    @property
    def high_tier(self):
        return list(self.tiers)[-1]


MODELS = {
    "seedream-5-0": ModelSpec("seedream-5-0", True, {"2K": SIZES_2K, "3K": SIZES_3K},
                              web_search=True, output_format=True),
    "seedream-4-5": ModelSpec("seedream-4-5", True, {"2K": SIZES_2K, "4K": SIZES_4K}),
    # Structural checks only (input object with a non-empty prompt string).
    "nano-banana": ModelSpec("nano-banana", False),
    "flux-2": ModelSpec("flux-2", False),
}

FAIL_MESSAGES = {
    "CONTENT_VIOLATION": "Content violates safety guidelines",
    "INVALID_IMAGE_URL": "Cannot access provided image URL",
    "NSFW_DETECTED": "NSFW content detected in the output",
    "PROMPT_TOO_LONG": "Prompt exceeds the maximum length",
    "INVALID_PROMPT": "Prompt is invalid",
    "IMAGE_TOO_LARGE": "Reference image exceeds 10 MB",
    "UNSUPPORTED_FORMAT": "Reference image format is not supported",
    "IMAGE_DOWNLOAD_FAILED": "Failed to download reference image",
    "PROCESSING_TIMEOUT": "Processing timed out",
    "MODEL_UNAVAILABLE": "Model is temporarily unavailable",
    "GENERATION_FAILED": "Image generation failed",
    "INSUFFICIENT_CREDITS": "Insufficient credits",
    "SensitiveContentDetected": "The request was rejected by the provider's content filter",
}
FAIL_TRIGGER = re.compile(r"\[fail:([A-Za-z0-9_.\-]{1,64})\]")
EXPLICIT_SIZE = re.compile(r"^([0-9]{1,5})[xX*]([0-9]{1,5})$")


class Invalid(Exception):
    """A 400: the message names the field and the allowed values."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_http_url(v):
    if not isinstance(v, str) or len(v) > 4096:
        return False
    try:
        u = urllib.parse.urlsplit(v)
        return u.scheme in ("http", "https") and bool(u.hostname)
    except ValueError:
        return False


def _one_of(field, value, allowed):
    if value not in allowed or not isinstance(value, str):
        raise Invalid("%s must be one of: %s" % (field, ", ".join(allowed)))
    return value


def validate(model, body):
    """Validate a generateTask body for `model` (a ModelSpec). Returns the task plan (dict) or
    raises Invalid. Unknown fields are ignored everywhere (pass-through)."""
    if not isinstance(body, dict):
        raise Invalid("Request body must be a JSON object")
    request_type = body.get("request_type", "async")
    _one_of("request_type", request_type, ("async", "callback"))
    callback_url = None
    if request_type == "callback":
        if "callback_url" not in body or body["callback_url"] in (None, ""):
            raise Invalid("callback_url is required when request_type is callback "
                          "(an http or https URL)")
        callback_url = body["callback_url"]
        if not _is_http_url(callback_url):
            raise Invalid("callback_url must be an http or https URL")
    if "provider" in body:
        _one_of("provider", body["provider"], ("auto", "value", "official"))
    if "input" not in body:
        raise Invalid("Missing required field: input (a JSON object)")
    inp = body["input"]
    if not isinstance(inp, dict):
        raise Invalid("input must be a JSON object")
    plan = {"callback_url": callback_url, "prompt": None, "image_urls": [], "n": 1,
            "fmt": "jpeg", "size": (1024, 1024), "tier": "2K"}
    if not model.strict:
        prompt = inp.get("prompt")
        if "prompt" not in inp:
            raise Invalid("Missing required field: input.prompt (a non-empty string)")
        if not isinstance(prompt, str) or not prompt:
            raise Invalid("input.prompt must be a non-empty string")
        plan["prompt"] = prompt
        urls = inp.get("image_urls")
        if isinstance(urls, list):
            plan["image_urls"] = [u for u in urls if isinstance(u, str)]
        if _is_int(inp.get("max_images")) and 1 <= inp["max_images"] <= 10:
            plan["n"] = inp["max_images"]
        if inp.get("output_format") == "png":
            plan["fmt"] = "png"
        ratio = inp.get("aspect_ratio") if inp.get("aspect_ratio") in ASPECT_RATIOS else "1:1"
        a, b = (int(x) for x in ratio.split(":"))
        w = int(round(math.sqrt(1024 * 1024 * a / b) / 16.0)) * 16
        h = int(round(math.sqrt(1024 * 1024 * b / a) / 16.0)) * 16
        plan["size"] = (w, h)
        return plan

    mode = inp.get("mode", "text-to-image")
    _one_of("input.mode", mode, ("text-to-image", "image-to-image"))
    if "prompt" not in inp:
        raise Invalid("Missing required field: input.prompt (a string of 1 to 5000 characters)")
    prompt = inp["prompt"]
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= 5000:
        raise Invalid("input.prompt must be a string of 1 to 5000 characters")
    plan["prompt"] = prompt
    if "max_images" not in inp:
        raise Invalid("Missing required field: input.max_images (an integer from 1 to 10)")
    n = inp["max_images"]
    if not _is_int(n) or not 1 <= n <= 10:
        raise Invalid("input.max_images must be an integer from 1 to 10")
    if "image_urls" in inp:
        urls = inp["image_urls"]
        if not isinstance(urls, list) or len(urls) > 14 or (mode == "image-to-image"
                                                            and not urls):
            raise Invalid("input.image_urls must be an array of 1 to 14 http or https URLs")
        for i, u in enumerate(urls):
            if not _is_http_url(u):
                raise Invalid("input.image_urls[%d] must be an http or https URL" % i)
        plan["image_urls"] = list(urls)
    elif mode == "image-to-image":
        raise Invalid("Missing required field: input.image_urls (1 to 14 http or https URLs, "
                      "required for image-to-image)")
    tiers = list(model.tiers)
    resolution = inp.get("resolution", tiers[0])
    explicit = None
    if isinstance(resolution, str) and resolution not in model.tiers:
        m = EXPLICIT_SIZE.match(resolution)
        if m:
            w, h = int(m.group(1)), int(m.group(2))
            if (w > 0 and h > 0 and EXPLICIT_MIN_PIXELS <= w * h <= EXPLICIT_MAX_PIXELS
                    and max(w / h, h / w) <= EXPLICIT_MAX_RATIO):
                explicit = (w, h)
    if explicit is None and (not isinstance(resolution, str) or resolution not in model.tiers):
        raise Invalid("input.resolution must be one of: %s, or an explicit size WIDTHxHEIGHT "
                      "(x, X or *, e.g. 2048x2048) with %d to %d pixels and a ratio from 1:16 "
                      "to 16:1" % (", ".join(tiers), EXPLICIT_MIN_PIXELS, EXPLICIT_MAX_PIXELS))
    ratio = inp.get("aspect_ratio", "1:1")
    _one_of("input.aspect_ratio", ratio, ASPECT_RATIOS)
    seq = inp.get("sequential_image_generation", "disabled")
    _one_of("input.sequential_image_generation", seq, ("disabled", "auto"))
    if model.web_search and "web_search" in inp and not isinstance(inp["web_search"], bool):
        raise Invalid("input.web_search must be a boolean (true or false)")
    fmt = "jpeg"
    if model.output_format:
        fmt = _one_of("input.output_format", inp.get("output_format", "jpeg"), ("jpeg", "png"))
    if "prompt_optimize_mode" in inp:
        _one_of("input.prompt_optimize_mode", inp["prompt_optimize_mode"], ("standard",))
    if explicit:
        plan["size"] = explicit
        plan["tier"] = tiers[0] if explicit[0] * explicit[1] <= LOW_TIER_MAX_PIXELS \
            else model.high_tier
    else:
        plan["size"] = model.tiers[resolution][ratio]
        plan["tier"] = resolution
    plan["n"] = n
    plan["sequential"] = seq
    plan["fmt"] = fmt
    return plan


# ---------------------------------------------------------------------------------------------
# Tasks

class Task:
    __slots__ = ("id", "model", "key", "seq", "create_ms", "start_ms", "complete_ms",
                 "fail_code", "fail_msg", "n", "fmt", "width", "height", "callback_url",
                 "base_url", "ttl_ms", "scale", "prompt", "result_json")

    def status_data(self, now_ms):
        d = {"taskId": self.id}
        if now_ms < self.start_ms:
            d["state"] = "pending"
        elif now_ms < self.complete_ms:
            d["state"] = "processing"
        elif self.fail_code is not None:
            d["state"] = "failed"
            d["failCode"] = self.fail_code
            d["failMsg"] = self.fail_msg
            d["costTime"] = self.complete_ms - self.start_ms
        else:
            d["state"] = "success"
            d["resultJson"] = self.result_json
            d["costTime"] = self.complete_ms - self.start_ms
        d["createTime"] = self.create_ms
        if now_ms >= self.complete_ms:
            d["completeTime"] = self.complete_ms
        return d

    @property
    def ext(self):
        return "png" if self.fmt == "png" else "jpg"


def now_ms():
    return int(time.time() * 1000)


def envelope(code, message, data):
    return {"code": code, "message": message, "data": data}


MESSAGES = {200: "success", 400: "Invalid request", 401: "Unauthorized",
            402: "Insufficient balance", 403: "Forbidden", 404: "Not found",
            405: "Method not allowed", 429: "Rate limit exceeded",
            500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable",
            504: "Gateway timeout"}


def error_env(code, error, **extra):
    data = {"error": error}
    data.update(extra)
    return envelope(code, MESSAGES.get(code, http.client.responses.get(code, "Error")), data)


# ---------------------------------------------------------------------------------------------
# Scheduler: one thread, a heap of due events (webhook deliveries and retries)

class Scheduler(threading.Thread):
    def __init__(self):
        super().__init__(name="apixo-sim-scheduler", daemon=True)
        self._cond = threading.Condition()
        self._heap = []
        self._seq = 0

    def at(self, when, fn, *args):
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (when, self._seq, fn, args))
            self._cond.notify()

    def clear(self):
        with self._cond:
            self._heap.clear()

    def pending(self):
        with self._cond:
            return len(self._heap)

    def run(self):
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                delay = self._heap[0][0] - time.time()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, fn, args = heapq.heappop(self._heap)
            try:
                fn(*args)
            except Exception:
                traceback.print_exc(file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Faults

FAULT_KINDS = ("status", "reset_before_body", "reset_after_body", "delay", "malformed_json",
               "truncated_body", "error_envelope")
FAULT_ENDPOINTS = ("generateTask", "statusTask", "files", "any")


def parse_fault(obj):
    if not isinstance(obj, dict):
        raise Invalid("each fault must be a JSON object")
    kind = obj.get("kind")
    if kind not in FAULT_KINDS:
        raise Invalid("kind must be one of: " + ", ".join(FAULT_KINDS))
    endpoint = obj.get("endpoint", "any")
    if endpoint not in FAULT_ENDPOINTS:
        raise Invalid("endpoint must be one of: " + ", ".join(FAULT_ENDPOINTS))
    count = obj.get("count", 1)
    if not _is_int(count) or not 1 <= count <= 1_000_000:
        raise Invalid("count must be an integer from 1 to 1000000")
    f = {"kind": kind, "endpoint": endpoint, "count": count}
    if kind == "status":
        status = obj.get("status", 503)
        if not _is_int(status) or not 400 <= status <= 599:
            raise Invalid("status must be an integer from 400 to 599")
        f["status"] = status
        if "retry_after" in obj:
            ra = obj["retry_after"]
            if not _is_int(ra) or not 0 <= ra <= 86400:
                raise Invalid("retry_after must be an integer from 0 to 86400 (seconds)")
            f["retry_after"] = ra
    elif kind == "delay":
        ms = obj.get("ms")
        if not _is_int(ms) or not 0 <= ms <= 600_000:
            raise Invalid("ms must be an integer from 0 to 600000")
        f["ms"] = ms
    elif kind == "error_envelope":
        code = obj.get("code", 500)
        if not _is_int(code) or not 100 <= code <= 999:
            raise Invalid("code must be an integer from 100 to 999")
        f["code"] = code
    return f


# ---------------------------------------------------------------------------------------------
# Simulator state

class Config:
    def __init__(self, args):
        self.host = args.host
        self.port = args.port
        self.keys = set(args.keys)
        self.time_scale = args.time_scale
        self.rpm = args.rpm
        self.concurrency = args.concurrency
        self.seed = args.seed
        self.small_images = args.small_images
        self.url_ttl = args.url_ttl
        self.verbose = args.verbose
        self.latency = Latency(args)

    def public(self):
        return {"rpm": self.rpm, "concurrency": self.concurrency,
                "time_scale": self.time_scale,
                "url_ttl": int(self.url_ttl) if float(self.url_ttl).is_integer() else self.url_ttl,
                "small_images": self.small_images, "seed": self.seed,
                "keys": len(self.keys), "latency": self.latency.public(), "version": VERSION}


class Latency:
    """How processing times are drawn (--latency). `uniform` is the documented behaviour: a
    uniform draw from the tier's range. The others stand in for a service that is less tidy
    than its documentation; they change durations only, never the API. Each task draws from
    its own seeded generator, so runs with the same seed and submits are reproducible."""

    KINDS = ("uniform", "drift", "lognormal", "bimodal")

    def __init__(self, args):
        self.kind = args.latency
        self.drift_factor = args.drift_factor
        self.drift_from = args.drift_from
        self.lognormal_median = args.lognormal_median
        self.lognormal_sigma = args.lognormal_sigma
        self.bimodal_slow = args.bimodal_slow
        self.bimodal_share = args.bimodal_share
        self.bimodal_by = args.bimodal_by

    def public(self):
        d = {"kind": self.kind}
        if self.kind == "drift":
            d.update(factor=self.drift_factor, start=self.drift_from)
        elif self.kind == "lognormal":
            d.update(median=self.lognormal_median, sigma=self.lognormal_sigma)
        elif self.kind == "bimodal":
            d.update(slow=list(self.bimodal_slow), share=self.bimodal_share, by=self.bimodal_by)
        return d

    def draw(self, rng, tier, index, queue_s, proc_s):
        """(queue wait, processing time) in simulated seconds for the index-th task created
        since the start or the last reset (1-based). `queue_s` and `proc_s` are the documented
        draws; `rng` is the task's own generator for any further draw."""
        if self.kind == "drift":
            if index >= self.drift_from:
                return queue_s * self.drift_factor, proc_s * self.drift_factor
        elif self.kind == "lognormal":
            proc_s = min(LATENCY_CAP, self.lognormal_median * math.exp(self.lognormal_sigma * rng.gauss(0.0, 1.0)))
        elif self.kind == "bimodal":
            if self.bimodal_by == "coin":
                slow = rng.random() < self.bimodal_share
            else:
                slow = tier != "2K"
            if slow:
                proc_s = rng.uniform(*self.bimodal_slow)
        return queue_s, proc_s


class Sim:
    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.images = ImageCache()
        self.scheduler = Scheduler()
        self.scheduler.start()
        self.seq = 0             # tasks ever created by this process: never reset
        self.generation = 0      # bumped by reset: stale webhook events are dropped
        self.base_url = None     # set once the server is bound
        self.started = time.time()
        with self.lock:
            self._reset_locked()

    # -- state ------------------------------------------------------------------------------
    def _reset_locked(self):
        self.generation += 1
        self.scheduler.clear()
        self.tasks = {}
        self.active = {}         # key -> tasks that were non-terminal when last looked at
        self.windows = {}        # key -> deque of monotonic times of counted requests
        self.faults = []
        self.reset_at = time.time()
        self.c_requests = {}     # endpoint -> Counter(status)
        self.c_connections = 0
        self.c_rate_limited = Counter()         # endpoint -> n
        self.c_rate_limited_reason = Counter()  # "rpm" / "concurrency" -> n
        self.c_tasks_by_key = Counter()
        self.c_tasks_by_model = Counter()
        self.c_peak = 0
        self.c_peak_by_key = Counter()
        self.c_polls = Counter()
        self.c_submits_by_prompt = Counter()
        self.c_tasks_by_prompt = Counter()
        self.c_faults_fired = Counter()
        self.c_wh = Counter()    # scheduled / attempts / delivered / failed_attempts / gave_up
        self.c_wh_outcomes = Counter()
        self.c_wh_by_task = {}

    def reset(self):
        with self.lock:
            self._reset_locked()

    def count_request(self, endpoint, status):
        with self.lock:
            c = self.c_requests.get(endpoint)
            if c is None:
                c = self.c_requests[endpoint] = Counter()
            c[str(status)] += 1

    def count_connection(self):
        with self.lock:
            self.c_connections += 1

    def check_key(self, header):
        if not header:
            return None
        parts = header.strip().split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        key = parts[1].strip()
        return key if key in self.cfg.keys else None

    # -- limits (call with the lock held) -----------------------------------------------------
    def _rpm_check(self, key, mono):
        """None if the request may proceed (its slot is recorded), else seconds to wait."""
        rpm = self.cfg.rpm
        if rpm <= 0:
            return None
        window = 60.0 * self.cfg.time_scale
        dq = self.windows.get(key)
        if dq is None:
            dq = self.windows[key] = deque()
        cutoff = mono - window
        while dq and dq[0] <= cutoff:
            dq.popleft()
        if len(dq) >= rpm:
            return dq[len(dq) - rpm] + window - mono
        dq.append(mono)
        return None

    def _active(self, key, t_ms):
        lst = self.active.get(key)
        if not lst:
            return []
        lst[:] = [t for t in lst if t.complete_ms > t_ms]
        return lst

    def _in_flight(self, t_ms):
        n = 0
        for key in list(self.active):
            n += len(self._active(key, t_ms))
        return n

    def _take_fault(self, endpoint):
        for i, f in enumerate(self.faults):
            if f["endpoint"] in ("any", endpoint):
                f["count"] -= 1
                if f["count"] <= 0:
                    del self.faults[i]
                self.c_faults_fired[f["kind"]] += 1
                return dict(f)
        return None

    def take_fault(self, endpoint):
        if not self.faults:      # cheap unlocked peek on the hot path
            return None
        with self.lock:
            return self._take_fault(endpoint)

    # -- API -------------------------------------------------------------------------------
    @staticmethod
    def _limited(endpoint_counter, reason, seconds):
        ms = max(1, int(math.ceil(seconds * 1000.0)))
        headers = {"Retry-After": str(max(1, int(math.ceil(ms / 1000.0)))),
                   "X-Sim-Retry-After-Ms": str(ms)}
        msg = ("Rate limit exceeded: too many requests per minute" if reason == "rpm"
               else "Rate limit exceeded: too many concurrent tasks")
        return 429, error_env(429, msg, reason=reason, retryAfterMs=ms), headers

    def note_submit(self, body_bytes, content_type):
        """Count the prompt of a submit that is answered before validation (e.g. 401)."""
        _, _, prompt = parse_submit(body_bytes, content_type)
        if prompt is not None:
            with self.lock:
                self.c_submits_by_prompt[prompt] += 1

    def generate(self, key, model_name, body_bytes, content_type, base_url):
        """Returns (status, envelope, headers). `key` is a valid API key."""
        parsed, err, prompt = parse_submit(body_bytes, content_type)
        spec = MODELS.get(model_name)
        plan = None
        if err is None and spec is not None:
            try:
                plan = validate(spec, parsed)
            except Invalid as e:
                err = str(e)
        mono = time.monotonic()
        with self.lock:
            if prompt is not None:
                self.c_submits_by_prompt[prompt] += 1
            ra = self._rpm_check(key, mono)
            if ra is not None:
                self.c_rate_limited["generateTask"] += 1
                self.c_rate_limited_reason["rpm"] += 1
                return self._limited("generateTask", "rpm", ra)
            if spec is None:
                return 404, error_env(404, "Unknown model: %s" % model_name), None
            if err is not None:
                return 400, error_env(400, err), None
            t_ms = now_ms()
            active = self._active(key, t_ms)
            if 0 < self.cfg.concurrency <= len(active):
                if self.cfg.rpm > 0:
                    self.windows[key].pop()      # a rejected request uses no window slot
                wait_ms = min(t.complete_ms for t in active) - t_ms
                self.c_rate_limited["generateTask"] += 1
                self.c_rate_limited_reason["concurrency"] += 1
                return self._limited("generateTask", "concurrency", wait_ms / 1000.0)
            task = self._create_locked(key, spec, plan, base_url, t_ms)
            active.append(task)
            if key not in self.active:
                self.active[key] = active
            self.c_peak_by_key[key] = max(self.c_peak_by_key[key], len(active))
            self.c_peak = max(self.c_peak, self._in_flight(t_ms))
        return 200, envelope(200, "success", {"taskId": task.id}), None

    def _create_locked(self, key, spec, plan, base_url, t_ms):
        cfg = self.cfg
        self.seq += 1
        rng = random.Random("%s:%d" % (cfg.seed, self.seq))
        while True:
            tid = "task_%024x" % rng.getrandbits(96)
            if tid not in self.tasks:
                break
        scale = cfg.time_scale
        lo, hi = TIMING.get(plan["tier"], TIMING["2K"])
        queue_s = rng.uniform(*QUEUE_WAIT)
        proc_s = rng.uniform(lo, hi)
        fail_frac = rng.uniform(*FAIL_FRACTION)
        auto_n = rng.randint(1, plan["n"])
        queue_s, proc_s = cfg.latency.draw(random.Random("%s:%d:latency" % (cfg.seed, self.seq)),
                                           plan["tier"], len(self.tasks) + 1, queue_s, proc_s)
        queue_ms = int(round(queue_s * 1000 * scale))
        proc_ms = max(1, int(round(proc_s * 1000 * scale)))
        t = Task()
        t.id = tid
        t.model = spec.name
        t.key = key
        t.seq = self.seq
        t.create_ms = t_ms
        t.start_ms = t_ms + queue_ms
        t.fail_code = t.fail_msg = None
        for u in plan["image_urls"]:
            if "unreachable" in u:
                t.fail_code = "INVALID_IMAGE_URL"
                t.fail_msg = "%s: %s" % (FAIL_MESSAGES["INVALID_IMAGE_URL"], u[:300])
                break
        if t.fail_code is None:
            m = FAIL_TRIGGER.search(plan["prompt"] or "")
            if m:
                t.fail_code = m.group(1)
                t.fail_msg = FAIL_MESSAGES.get(
                    t.fail_code, "Task failed with code %s (simulated)" % t.fail_code)
        if t.fail_code is not None:
            proc_ms = max(1, int(round(proc_ms * fail_frac)))
        t.complete_ms = t.start_ms + proc_ms
        t.n = auto_n if plan.get("sequential") == "auto" else plan["n"]
        t.fmt = plan["fmt"]
        w, h = plan["size"]
        if cfg.small_images:
            s = SMALL_SIDE / float(max(w, h))
            w, h = max(1, int(round(w * s))), max(1, int(round(h * s)))
        t.width, t.height = w, h
        t.callback_url = plan["callback_url"]
        t.base_url = base_url
        t.scale = scale
        t.ttl_ms = int(round(cfg.url_ttl * 1000 * scale))
        t.prompt = plan["prompt"]
        urls = ["%s/files/%s-%d.%s" % (base_url, tid, i, t.ext) for i in range(1, t.n + 1)]
        t.result_json = json.dumps({"resultUrls": urls}, separators=(",", ":"))
        self.tasks[tid] = t
        self.c_tasks_by_key[key] += 1
        self.c_tasks_by_model[spec.name] += 1
        if t.prompt is not None:
            self.c_tasks_by_prompt[t.prompt] += 1
        if t.callback_url:
            self.c_wh["scheduled"] += 1
            self.scheduler.at(t.complete_ms / 1000.0, self._webhook_due, t, 1, self.generation)
        return t

    def status(self, key, model_name, query):
        try:
            q = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=bool(query),
                                      max_num_fields=32)
        except ValueError:
            q = None
        ids = q.get("taskId") if q is not None else None
        mono = time.monotonic()
        with self.lock:
            tid = ids[0] if ids and len(ids) == 1 else None
            task = self.tasks.get(tid) if tid else None
            if task is not None:
                self.c_polls[tid] += 1
            ra = self._rpm_check(key, mono)
            if ra is not None:
                self.c_rate_limited["statusTask"] += 1
                self.c_rate_limited_reason["rpm"] += 1
                return self._limited("statusTask", "rpm", ra)
            if model_name not in MODELS:
                return 404, error_env(404, "Unknown model: %s" % model_name), None
            if q is None:
                return 400, error_env(400, "Malformed query string"), None
            if not ids or not ids[0]:
                return 400, error_env(400, "Missing required query parameter: taskId"), None
            if len(ids) != 1:
                return 400, error_env(400, "taskId must be given exactly once"), None
            if task is None or task.model != model_name:
                return 404, error_env(404, "Task not found: %s" % tid[:200]), None
            return 200, envelope(200, "success", task.status_data(now_ms())), None

    FILE_NAME = re.compile(r"^(task_[0-9a-f]{1,64})-([0-9]{1,3})\.(jpg|png)$")

    def file(self, name):
        """(bytes, content type) or None for 404."""
        m = self.FILE_NAME.match(name)
        if not m:
            return None
        with self.lock:
            task = self.tasks.get(m.group(1))
        if task is None:
            return None
        t = now_ms()
        n = int(m.group(2))
        if (t < task.complete_ms or task.fail_code is not None or not 1 <= n <= task.n
                or m.group(3) != task.ext or t >= task.complete_ms + task.ttl_ms):
            return None
        data = self.images.get(task.fmt, task.width, task.height, n - 1)
        return data, ("image/png" if task.fmt == "png" else "image/jpeg")

    # -- webhooks --------------------------------------------------------------------------
    def _webhook_due(self, task, attempt, generation):
        if generation != self.generation:
            return
        threading.Thread(target=self._deliver, args=(task, attempt, generation),
                         name="apixo-sim-webhook", daemon=True).start()

    def _deliver(self, task, attempt, generation):
        payload = envelope(200, "success", task.status_data(max(now_ms(), task.complete_ms)))
        data = json.dumps(payload, separators=(",", ":")).encode()
        timeout = max(0.01, WEBHOOK_TIMEOUT * task.scale)
        outcome = "error"
        try:
            u = urllib.parse.urlsplit(task.callback_url)
            if u.scheme == "https":
                conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
            path = (u.path or "/") + ("?" + u.query if u.query else "")
            try:
                conn.request("POST", path, body=data, headers={
                    "Content-Type": "application/json", "User-Agent": "apixo-sim/" + VERSION,
                    "X-Sim-Webhook-Attempt": str(attempt)})
                resp = conn.getresponse()
                resp.read(1 << 16)
                outcome = str(resp.status)
            finally:
                conn.close()
        except (socket.timeout, TimeoutError):
            outcome = "timeout"
        except Exception:
            outcome = "error"
        with self.lock:
            if generation != self.generation:
                return
            self.c_wh["attempts"] += 1
            self.c_wh_outcomes[outcome] += 1
            rec = self.c_wh_by_task.setdefault(task.id, {"attempts": 0, "delivered": False,
                                                         "gave_up": False, "outcomes": []})
            rec["attempts"] += 1
            rec["outcomes"].append(outcome)
            if outcome == "200":
                self.c_wh["delivered"] += 1
                rec["delivered"] = True
            else:
                self.c_wh["failed_attempts"] += 1
                if attempt <= len(WEBHOOK_RETRY_DELAYS):
                    delay = WEBHOOK_RETRY_DELAYS[attempt - 1] * task.scale
                    self.scheduler.at(time.time() + delay, self._webhook_due, task,
                                      attempt + 1, generation)
                else:
                    self.c_wh["gave_up"] += 1
                    rec["gave_up"] = True

    # -- test hooks ------------------------------------------------------------------------
    def stats(self):
        t = now_ms()
        with self.lock:
            states = Counter(task.status_data(t)["state"] for task in self.tasks.values())
            in_flight_by_key = {k: len(self._active(k, t)) for k in list(self.active)}
            return {
                "version": VERSION,
                "uptime_ms": int((time.time() - self.started) * 1000),
                "since_reset_ms": int((time.time() - self.reset_at) * 1000),
                "config": self.cfg.public(),
                "connections_accepted": self.c_connections,
                "requests_total": sum(sum(c.values()) for c in self.c_requests.values()),
                "requests": {ep: dict(c) for ep, c in self.c_requests.items()},
                "rate_limited": {"total": sum(self.c_rate_limited.values()),
                                 "by_endpoint": dict(self.c_rate_limited),
                                 "by_reason": dict(self.c_rate_limited_reason)},
                "tasks_created": len(self.tasks),
                "tasks_created_by_key": dict(self.c_tasks_by_key),
                "tasks_created_by_model": dict(self.c_tasks_by_model),
                "tasks_by_state": {s: states.get(s, 0)
                                   for s in ("pending", "processing", "success", "failed")},
                "tasks_in_flight": sum(in_flight_by_key.values()),
                "tasks_in_flight_by_key": {k: v for k, v in in_flight_by_key.items() if v},
                "peak_concurrent_tasks": self.c_peak,
                "peak_concurrent_tasks_by_key": dict(self.c_peak_by_key),
                "submits_by_prompt": dict(self.c_submits_by_prompt),
                "tasks_by_prompt": dict(self.c_tasks_by_prompt),
                "polls": dict(self.c_polls),
                "polls_total": sum(self.c_polls.values()),
                "webhooks": {
                    "scheduled": self.c_wh["scheduled"],
                    "attempts": self.c_wh["attempts"],
                    "delivered": self.c_wh["delivered"],
                    "failed_attempts": self.c_wh["failed_attempts"],
                    "gave_up": self.c_wh["gave_up"],
                    "outcomes": dict(self.c_wh_outcomes),
                    "by_task": {k: dict(v, outcomes=list(v["outcomes"]))
                                for k, v in self.c_wh_by_task.items()},
                },
                "faults": {"queued": [dict(f) for f in self.faults],
                           "fired": dict(self.c_faults_fired)},
            }

    def add_faults(self, body):
        items = body.get("faults") if isinstance(body, dict) and "faults" in body else body
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list) or not items or len(items) > 1000:
            raise Invalid("body must be a fault object, a list of them, or {\"faults\": [...]}")
        parsed = [parse_fault(x) for x in items]
        with self.lock:
            self.faults.extend(parsed)
            return [dict(f) for f in self.faults]

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def configure(self, body):
        if not isinstance(body, dict):
            raise Invalid("body must be a JSON object")
        new = {}
        for name in ("rpm", "concurrency"):
            if name in body:
                v = body[name]
                if not _is_int(v) or v < 0:
                    raise Invalid("%s must be an integer >= 0 (0 = unlimited)" % name)
                new[name] = v
        for name in ("time_scale", "url_ttl"):
            if name in body:
                v = body[name]
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 \
                        or v != v or v == float("inf"):
                    raise Invalid("%s must be a number > 0" % name)
                new[name] = float(v)
        if "small_images" in body:
            if not isinstance(body["small_images"], bool):
                raise Invalid("small_images must be a boolean")
            new["small_images"] = body["small_images"]
        unknown = set(body) - {"rpm", "concurrency", "time_scale", "url_ttl", "small_images"}
        if unknown:
            raise Invalid("unknown config field(s): %s; allowed: rpm, concurrency, time_scale, "
                          "url_ttl, small_images" % ", ".join(sorted(unknown)))
        with self.lock:
            for k, v in new.items():
                setattr(self.cfg, k, v)
            return self.cfg.public()


def _no_constant(name):
    raise ValueError("invalid JSON constant " + name)


def parse_submit(body_bytes, content_type):
    """(parsed JSON or None, framing error or None, input.prompt if it is a string)."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct != "application/json":
        return None, "Content-Type must be application/json", None
    try:
        parsed = json.loads(body_bytes.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        return None, "Malformed JSON body: %s" % (str(e)[:200],), None
    prompt = None
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), dict):
        p = parsed["input"].get("prompt")
        prompt = p if isinstance(p, str) else None
    return parsed, None, prompt


# ---------------------------------------------------------------------------------------------
# HTTP

GEN_PREFIX = "/api/v1/generateTask/"
STATUS_PREFIX = "/api/v1/statusTask/"
HOST_HEADER = re.compile(r"^(?:[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
SIM_ROUTES = {"/_sim/stats": ("GET",), "/_sim/faults": ("GET", "POST", "DELETE"),
              "/_sim/reset": ("POST",), "/_sim/config": ("GET", "POST")}


class _Done(Exception):
    pass


def is_loopback_address(addr):
    try:
        ip = ipaddress.ip_address(str(addr).split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class SimHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apixo-sim/" + VERSION
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300            # idle keep-alive connections are closed after this many seconds

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.server.sim.cfg.verbose:
            sys.stderr.write("apixo-sim %s - %s\n" % (self.client_address[0], fmt % args))

    def handle_one_request(self):
        self._aborted = False
        self._responded = False
        self._endpoint = "other"
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(414, "Request line too long")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._dispatch()
            if not self._aborted:
                self.wfile.flush()
        except (TimeoutError, socket.timeout, ConnectionError, OSError, ValueError):
            self.close_connection = True

    def send_error(self, code, message=None, explain=None):
        """Used by the standard library for malformed requests: answer in the envelope."""
        self.close_connection = True
        if code == 501:      # an unknown method: the resource exists or not, the method is wrong
            code = 405
            message = "Method %s is not allowed" % (self.command or "")[:32]
        self._send(code, error_env(code, message or http.client.responses.get(code, "Error")))

    def handle_expect_100(self):
        n = self._content_length()
        if n is not None and n > MAX_BODY:
            self._endpoint = self._classify(self.path)
            self.close_connection = True
            self._send(400, error_env(400, "Request body must be at most %d bytes" % MAX_BODY))
            return False
        return super().handle_expect_100()

    @staticmethod
    def _classify(path):
        if path.startswith(GEN_PREFIX):
            return "generateTask"
        if path.startswith(STATUS_PREFIX):
            return "statusTask"
        if path.startswith("/files/"):
            return "files"
        if path.startswith("/_sim/"):
            return "sim"
        return "other"

    def _send(self, status, env=None, headers=None, body=None, ctype="application/json",
              count_as=None, truncate=False, count=True):
        if body is None:
            body = json.dumps(env, separators=(",", ":")).encode()
        reason = http.client.responses.get(status, "Status")
        lines = ["HTTP/1.1 %d %s\r\nServer: %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %d\r\n" % (status, reason, self.server_version,
                                              self.date_time_string(), ctype, len(body))]
        if headers:
            for k, v in headers.items():
                lines.append("%s: %s\r\n" % (k, v))
        if truncate:
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        out = "".join(lines).encode("latin-1")
        if getattr(self, "command", None) != "HEAD":
            out += body[:len(body) // 2] if truncate else body
        self._responded = True
        if count:
            self.server.sim.count_request(self._endpoint, count_as or status)
        self.wfile.write(out)
        if self.server.sim.cfg.verbose:
            self.log_request(status, len(body))

    def _abort(self):
        """Close the connection at once with a TCP reset and no answer."""
        self._aborted = True
        self._responded = True
        self.close_connection = True
        self.server.sim.count_request(self._endpoint, "reset")
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except Exception:
                pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _content_length(self):
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return None
        vals = set(v.strip() for v in values)
        if len(vals) != 1:
            return -1
        v = vals.pop()
        return int(v) if v.isdigit() and len(v) < 19 else -1

    def _read_body(self):
        """(bytes, None) or (None, error) after which the connection is closed."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                self.close_connection = True
                return None, "Unsupported Transfer-Encoding: %s" % te[:40]
            return self._read_chunked()
        n = self._content_length()
        if n is None:
            return b"", None
        if n < 0:
            self.close_connection = True
            return None, "Invalid Content-Length header"
        if n > MAX_BODY:
            self.close_connection = True
            if n <= DISCARD_LIMIT:
                left = n
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 16))
                    if not chunk:
                        break
                    left -= len(chunk)
            return None, "Request body must be at most %d bytes" % MAX_BODY
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise ConnectionError("client closed the connection mid-body")
        return data, None

    def _read_chunked(self):
        parts = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
                if size < 0 or len(size_s) > 8:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                return None, "Malformed chunked body"
            if size == 0:
                for _ in range(64):       # trailers up to the empty line
                    t = self.rfile.readline(8194)
                    if t in (b"\r\n", b"\n", b""):
                        break
                return b"".join(parts), None
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                return None, "Request body must be at most %d bytes" % MAX_BODY
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise ConnectionError("client closed the connection mid-body")
            parts.append(chunk)
            self.rfile.readline(3)

    def _consume_body(self):
        body, err = self._read_body()
        if err is not None:
            self._send(400, error_env(400, err))
            raise _Done()
        return body

    def _base_url(self):
        host = self.headers.get("Host", "")
        if host and HOST_HEADER.match(host):
            return "http://" + host
        return self.server.sim.base_url

    def _is_loopback_peer(self):
        return is_loopback_address(self.client_address[0])

    # -- routing ---------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch_guarded()

    do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self):
        # parse_request succeeded: self.command is one of the do_* methods or unknown
        if not hasattr(self, "do_" + self.command):
            self.send_error(405)
            return
        getattr(self, "do_" + self.command)()

    def _dispatch_guarded(self):
        try:
            self._route()
        except _Done:
            pass
        except (ConnectionError, TimeoutError, socket.timeout, BrokenPipeError):
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            if not self._responded and not self._aborted:
                try:
                    self._send(500, error_env(500, "Internal error in apixo-sim"))
                except Exception:
                    pass

    def _route(self):
        target = self.path
        if target.startswith(("http://", "https://")):
            u = urllib.parse.urlsplit(target)
            target = (u.path or "/") + ("?" + u.query if u.query else "")
        if not target.startswith("/"):
            self._consume_body()
            self._send(400, error_env(400, "Malformed request target"))
            return
        path, _, query = target.partition("?")
        query = query.split("#", 1)[0]
        ep = self._classify(path)
        self._endpoint = ep
        method = self.command
        sim = self.server.sim
        if ep == "generateTask":
            allowed = ("POST",)
        elif ep == "statusTask":
            allowed = ("GET",)
        elif ep == "files":
            allowed = ("GET", "HEAD")
        elif ep == "sim" and path in SIM_ROUTES:
            allowed = SIM_ROUTES[path]
        else:
            self._consume_body()
            self._send(404, error_env(404, "Unknown path: %s" % path[:200]))
            return
        if method not in allowed:
            self._consume_body()
            self._send(405, error_env(405, "Method %s is not allowed on %s; use %s"
                                      % (method, path[:200], " or ".join(allowed))),
                       {"Allow": ", ".join(allowed)})
            return
        if ep == "sim":
            self._sim_route(path, method)
            return

        fault = sim.take_fault(ep)
        kind = fault["kind"] if fault else None
        if kind == "reset_before_body":
            self._abort()
            return
        body = self._consume_body()
        if kind in ("status", "error_envelope") and ep == "generateTask":
            sim.note_submit(body, self.headers.get("Content-Type"))   # sent, not processed
        if kind == "status":
            hdrs = {}
            if "retry_after" in fault:
                hdrs["Retry-After"] = str(fault["retry_after"])
            st = fault["status"]
            self._send(st, error_env(st, "Simulated fault: HTTP %d" % st), hdrs)
            return
        if kind == "error_envelope":
            code = fault["code"]
            self._send(200, error_env(code, "Simulated fault: error envelope %d" % code),
                       count_as="200:%d" % code)
            return
        if kind == "delay":
            time.sleep(fault["ms"] / 1000.0)

        status, env, headers, raw, ctype = self._process(ep, path, query, body)
        if kind == "reset_after_body":
            self._abort()
            return
        if kind == "malformed_json":
            raw = b'{"code":%d,"message":"success","data":{"taskId":task_???, <<not json>>' \
                % status
            ctype = "application/json"
        self._send(status, env, headers, body=raw, ctype=ctype,
                   truncate=(kind == "truncated_body"))

    def _process(self, ep, path, query, body):
        """Normal processing: (status, envelope, headers, raw body or None, content type)."""
        sim = self.server.sim
        if ep == "files":
            got = sim.file(urllib.parse.unquote(path[len("/files/"):]))
            if got is None:
                return 404, error_env(404, "File not found or expired"), None, None, \
                    "application/json"
            data, ctype = got
            return 200, None, {"Cache-Control": "public, max-age=86400"}, data, ctype
        key = sim.check_key(self.headers.get("Authorization"))
        if key is None:
            if ep == "generateTask":
                sim.note_submit(body, self.headers.get("Content-Type"))
            return 401, error_env(401, "Missing or invalid API key"), \
                {"WWW-Authenticate": 'Bearer realm="apixo-sim"'}, None, "application/json"
        if ep == "generateTask":
            model = urllib.parse.unquote(path[len(GEN_PREFIX):])
            st, env, hdrs = sim.generate(key, model, body, self.headers.get("Content-Type"),
                                         self._base_url())
        else:
            model = urllib.parse.unquote(path[len(STATUS_PREFIX):])
            st, env, hdrs = sim.status(key, model, query)
        return st, env, hdrs, None, "application/json"

    def _sim_route(self, path, method):
        sim = self.server.sim
        body = self._consume_body()
        if not self._is_loopback_peer():
            self._send(403, error_env(403, "/_sim/ is available to loopback clients only"))
            return
        try:
            if path == "/_sim/stats":
                data = sim.stats()
            elif path == "/_sim/reset":
                sim.reset()
                self._send(200, envelope(200, "success", {"reset": True}), count=False)
                return
            elif path == "/_sim/config":
                data = sim.configure(self._json(body)) if method == "POST" else sim.cfg.public()
            elif method == "POST":
                data = {"queued": sim.add_faults(self._json(body))}
            elif method == "DELETE":
                sim.clear_faults()
                data = {"queued": []}
            else:
                with sim.lock:
                    data = {"queued": [dict(f) for f in sim.faults]}
        except Invalid as e:
            self._send(400, error_env(400, str(e)))
            return
        self._send(200, envelope(200, "success", data))

    @staticmethod
    def _json(body):
        if not body:
            return {}
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:
            raise Invalid("Malformed JSON body: %s" % str(e)[:200])


class SimServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, family, sim):
        self.address_family = family
        self.sim = sim
        super().__init__(address, SimHandler)

    def server_bind(self):
        # HTTPServer.server_bind would resolve the FQDN of the host: skip that (it can be slow)
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    def process_request(self, request, client_address):
        self.sim.count_connection()
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        if self.sim.cfg.verbose:
            super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------
# main

def _number(s):
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % s)


def _positive_float(s):
    v = _number(s)
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError("must be > 0")
    return v


def _non_negative_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % s)
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def _positive_int(s):
    v = _non_negative_int(s)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return v


def _share(s):
    v = _number(s)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return v


def _range(s):
    parts = s.split("-")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError("a range LO-HI in seconds, e.g. 35-50")
    lo, hi = (_positive_float(x) for x in parts)
    if lo > hi or hi > LATENCY_CAP:
        raise argparse.ArgumentTypeError("LO must not exceed HI, and HI at most %d" % LATENCY_CAP)
    return lo, hi


def _port(s):
    v = _non_negative_int(s)
    if v > 65535:
        raise argparse.ArgumentTypeError("must be 0..65535")
    return v


def _keys(s):
    keys = [k.strip() for k in s.split(",") if k.strip()]
    if not keys or any(any(c.isspace() for c in k) for k in keys):
        raise argparse.ArgumentTypeError("a comma-separated list of keys without spaces")
    return keys


def parse_args(argv):
    p = argparse.ArgumentParser(prog="apixo_sim.py",
                                description="Local simulator of the APIXO task API.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; loopback unless given)")
    p.add_argument("--port", type=_port, default=0, help="port; 0 picks a free one (default)")
    p.add_argument("--keys", type=_keys, default=["sk-sim"],
                   help="accepted API keys, comma-separated (default sk-sim)")
    p.add_argument("--time-scale", type=_positive_float, default=1.0,
                   help="multiplies every simulated duration (default 1.0)")
    p.add_argument("--rpm", type=_non_negative_int, default=60,
                   help="requests per sliding 60 s window per key; 0 = unlimited (default 60)")
    p.add_argument("--concurrency", type=_non_negative_int, default=10,
                   help="non-terminal tasks per key; 0 = unlimited (default 10)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed for task ids, durations and counts (default: random)")
    p.add_argument("--small-images", action="store_true",
                   help="serve images scaled to a longest side of 64 px, same ratio")
    p.add_argument("--url-ttl", type=_positive_float, default=DEFAULT_URL_TTL,
                   help="result URL lifetime in seconds, scaled (default 1296000 = 15 days)")
    p.add_argument("--latency", choices=Latency.KINDS, default="uniform",
                   help="how processing times are drawn (default uniform: the documented ranges)")
    p.add_argument("--drift-factor", type=_positive_float, default=2.0,
                   help="drift: durations of later tasks are multiplied by this (default 2)")
    p.add_argument("--drift-from", type=_positive_int, default=40,
                   help="drift: the first task (1-based, counted since start or reset) that is slower (default 40)")
    p.add_argument("--lognormal-median", type=_positive_float, default=30.0,
                   help="lognormal: median processing seconds (default 30)")
    p.add_argument("--lognormal-sigma", type=_positive_float, default=0.35,
                   help="lognormal: sigma of the log (default 0.35)")
    p.add_argument("--bimodal-slow", type=_range, default=(35.0, 50.0),
                   help="bimodal: the slow population's processing range LO-HI seconds (default 35-50)")
    p.add_argument("--bimodal-share", type=_share, default=0.5,
                   help="bimodal: share of slow tasks when --bimodal-by coin (default 0.5)")
    p.add_argument("--bimodal-by", choices=("coin", "resolution"), default="coin",
                   help="bimodal: a seeded coin per task, or every task above the 2K tier (default coin)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--version", action="version", version="apixo-sim " + VERSION)
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(63)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        infos = socket.getaddrinfo(args.host, args.port, 0, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
        family, _, _, _, sockaddr = infos[0]
    except socket.gaierror as e:
        sys.stderr.write("apixo-sim: cannot resolve --host %s: %s\n" % (args.host, e))
        return 2
    sim = Sim(Config(args))
    try:
        server = SimServer(sockaddr[:2] if family == socket.AF_INET else sockaddr, family, sim)
    except OSError as e:
        sys.stderr.write("apixo-sim: cannot listen on %s:%s: %s\n" % (args.host, args.port, e))
        return 2
    port = server.server_address[1]
    host = args.host
    url_host = "[%s]" % host if ":" in host and not host.startswith("[") else host
    sim.base_url = "http://%s:%d" % (url_host, port)
    try:
        bound = ipaddress.ip_address(server.server_address[0].split("%", 1)[0])
        if not bound.is_loopback:
            sys.stderr.write("apixo-sim: warning: listening on non-loopback address %s "
                             "(/_sim/ still answers loopback peers only)\n" % host)
    except ValueError:
        pass

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write("apixo-sim listening on %s\n" % sim.base_url)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.25)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
