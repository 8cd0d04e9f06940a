"""Annotators under load: simulated crowd workers label a study through a real ASGI server.

The issue's target (Annotator workflow, section 7): 200 concurrent annotators on 2,000
pairwise items with overlap 3, each looping next item -> submit until the study is complete,
with the next-item request under 100 ms at the 95th percentile on a 2-core machine, and no
violation of the assignment engine's invariants.

The run creates a throwaway PostgreSQL database (BENCH_DATABASE_URL, default the local server
as user postgres), migrates it, opens a study and imports the items, then starts uvicorn on a
free loopback port against it and waits until every worker has loaded the app (as a load
balancer waits for a new server to report ready). Each annotator is an asyncio task with its
own HTTP client (its own cookies) that does what the labelling page does: it opens the
study's join link, GETs the label page (timed: this is the next-item request), reads the
form from the HTML, POSTs a random answer with the page's submission id and CSRF token (timed
apart), and goes round again until it is sent to the done page. Every submission the server
acknowledged (a redirect back to the label page) is recorded; afterwards the database is
checked for an item with more than `overlap` current human labels, an annotator with two
labels on one item, an acknowledged submission that was not stored, and items left short of
their labels.

Latency is printed with PASS/MISS beside its target and does not change the exit status;
errors (an unexpected HTTP reply) and violations do.

By default the annotators do not pause between items: each always has a request in flight,
so the server is saturated, the figures are its capacity, and a request's latency is mostly
its wait in the queue (about annotators / requests per second): no server on two cores
answers 200 such clients within 100 ms. --think gives each annotator a pause before each
submit (exponential, with that mean), as people reading two responses take, and spreads their
arrival over the first such pause, so that the latency is that of a server under a steady,
realistic load; `make bench` uses 20 s (crowd workers comparing two long answers take tens of
seconds) for the latency target, then a short run without pauses for the capacity.

A request that fails in transport (the server closed a kept-alive connection as it was reused)
is sent again once, as a browser does; a submit is safe to repeat because of its submission id.
The retries are counted in the report.

The server runs as in production (DEBUG=0, static files collected, Redis for the cache and the
channel layer: BENCH_REDIS_URL, default database 14 of the local server, so that the tasks
the labels queue, which no worker runs here, are never handed to a test run's worker on
database 0), except that SECURE_COOKIES=0 lets
the session and CSRF cookies travel over plain HTTP. DB_CONN_MAX_AGE is 0 unless
--conn-max-age says otherwise, so connections come from the server's pool (DB_POOL_SIZE):
under ASGI Django runs each request in a thread of its own, so a kept connection is never
used again, and with 60 the server soon fails with "too many clients" from PostgreSQL.

--closed-loop 1,8,32 measures the server's speed per request instead (issue 19): for each
number of annotators in the list, a fresh database and server (so each worker's peak RSS is
that run's), and that many annotators looping next item -> answer with no pause, each for
--answers answers or until the study is done. It prints, per run, the next-item GET and the
answer+next cycle (the POST and the GET it redirects to, as the browser sees one click),
answers/s, each web worker's peak RSS and the invariant check, then the issue's targets
beside the figures. The server has 2 workers there, as in the issue's figures.

    .venv/bin/python tests/bench/bench_annotators.py                 # 200 annotators, 2,000 items
    .venv/bin/python tests/bench/bench_annotators.py --annotators 20 --items 200   # a quick check
    .venv/bin/python tests/bench/bench_annotators.py --think 2       # pause ~2 s before each submit
    .venv/bin/python tests/bench/bench_annotators.py --closed-loop 1,8,32   # issue 19's figures
"""

import argparse
import asyncio
import html
import json
import math
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # the items bench: its database and data helpers
    DEFAULT_SERVER,
    PAIRWISE_RUBRIC,
    create_database,
    database_url,
    drop_database,
    generate,
)

REPO = Path(__file__).resolve().parents[2]
SLUG = "bench-annotators"
OVERLAP = 3
TARGET_P95_MS = 100
# The closed loop's targets (issue 19, 2 workers on 2 cores): next-item GET p95 by concurrency,
# answers/s at a concurrency, peak RSS of each web worker.
CLOSED_LOOP_NEXT_P95_MS = {1: 15, 8: 100}
CLOSED_LOOP_ANSWERS_PER_S = {32: 100}
CLOSED_LOOP_WORKER_RSS_MB = 150
CLOSED_LOOP_SERVER_WORKERS = 2
HTTP_TIMEOUT = 300  # seconds; a saturated server queues requests, which is a figure, not an error
SERVER_START_TIMEOUT = 60
KEEP_ALIVE_SECONDS = 75  # as nginx in front would keep them, longer than an annotator's pause

FIELD_RE = {
    name: re.compile(rf'<input type="hidden" name="{name}" value="([^"]*)"')
    for name in ("item", "order", "submission_id", "ticket")
}
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
EXCEPTION_RE = re.compile(
    r"<title>\s*(\S+).*?</title>.*?<pre class=\"exception_value\">(.*?)</pre>", re.S
)
ERROR_RE = re.compile(r'<p class="error" role="alert">(.*?)</p>')
CHOICE_RE = re.compile(r'<input type="radio" name="(q:[^"]+)" value="([^"]+)"')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--annotators",
        type=int,
        default=int(os.environ.get("BENCH_ANNOTATORS", 200)),
        help="concurrent annotators (default BENCH_ANNOTATORS or 200)",
    )
    parser.add_argument(
        "--items",
        type=int,
        default=int(os.environ.get("BENCH_ITEMS_LABEL", 2000)),
        help="items in the study (default BENCH_ITEMS_LABEL or 2,000)",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        help="uvicorn worker processes (default 4, as the README's Procfile: a process runs "
        "Python on one core at a time, so two per core keep both busy while some requests "
        f"wait on PostgreSQL; {CLOSED_LOOP_SERVER_WORKERS} with --closed-loop, as issue 19)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="DB_CONN_MAX_AGE of the server (default 0: connections come from the pool; under "
        "ASGI each request runs in a thread of its own, so kept connections pile up)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds an annotator spends on an item before submitting (default 0: none)",
    )
    parser.add_argument(
        "--closed-loop",
        type=concurrencies,
        metavar="C,C,...",
        help="for each number of annotators, a fresh study labelled in a closed loop (no "
        "pauses), reported against issue 19's targets; e.g. 1,8,32",
    )
    parser.add_argument(
        "--answers",
        type=int,
        default=300,
        help="with --closed-loop, answers each annotator gives before stopping (default 300; "
        "fewer when the study is done first)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server_workers is None:
        args.server_workers = CLOSED_LOOP_SERVER_WORKERS if args.closed_loop else 4
    if args.phase:
        run_phase(args.phase, args.items, args.path)
    elif args.closed_loop:
        sys.exit(run_closed_loop(args))
    else:
        sys.exit(run_bench(args))


def concurrencies(text):
    """`1,8,32`: the numbers of annotators of the closed loop's runs."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not numbers separated by commas: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"each count must be at least 1: {text!r}")
    return counts


# The parent: database, server, annotators, report ----------------------------------------


def run_bench(args):
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    work = Path(tempfile.mkdtemp(prefix="quorum-bench-annotators-"))
    try:
        print(f"Generating {args.items:,} items in {work} ...")
        generate(work, args.items)
        setup, run, checks = label_study(args, server, work, args.annotators)
        return report(args, server, setup, run, checks)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_closed_loop(args):
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    work = Path(tempfile.mkdtemp(prefix="quorum-bench-annotators-"))
    try:
        print(f"Generating {args.items:,} items in {work} ...")
        generate(work, args.items)
        results = {}
        for count in args.closed_loop:
            print(f"\nClosed loop, {count} annotator(s):")
            results[count] = label_study(args, server, work, count, max_answers=args.answers)
        return closed_loop_report(args, server, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def label_study(args, server, work, n_annotators, max_answers=None):
    """(setup, run, checks) of one study in a throwaway database, labelled by the annotators
    through a fresh server; each gives up to `max_answers` answers (None: until the study is
    done)."""
    db_name = f"quorum_bench_annotators_{os.getpid()}_{n_annotators}"
    create_database(server, db_name)
    try:
        env = server_env(server, db_name, work, args.conn_max_age)
        print(f"Migrating the throwaway database {db_name} and importing the items ...")
        setup = run_child(env, "setup", args.items, str(work / "items.jsonl"))
        port = free_port()
        print(
            f"Starting uvicorn --workers {args.server_workers} on 127.0.0.1:{port} ...",
            flush=True,
        )
        with Server(env, port, args.server_workers, work / "server.log") as uvicorn:
            print(f"{n_annotators} annotators labelling ...", flush=True)
            run = asyncio.run(
                annotate_all(
                    f"http://127.0.0.1:{port}",
                    setup["join_token"],
                    n_annotators,
                    args.think,
                    args.seed,
                    uvicorn,
                    max_answers,
                )
            )
            run.worker_peak_rss = uvicorn.worker_peak_rss()
        acks = work / "acks.json"
        acks.write_text(json.dumps(run.acks))
        checks = run_child(env, "check", args.items, str(acks))
    finally:
        drop_database(server, db_name)
    return setup, run, checks


def server_env(server, db_name, work, conn_max_age):
    """The server's environment: the throwaway database, nothing written to the repo's var/."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(server, db_name),
        DJANGO_SETTINGS_MODULE="quorum.settings",
        DEBUG="0",  # as in production; cookies over plain HTTP, though
        SECURE_COOKIES="0",
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        DB_CONN_MAX_AGE=str(conn_max_age),
        SECRET_KEY="bench-only",
        QUORUM_VAR_DIR=str(work / "var"),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_child(env, phase, n_items, path):
    """Run a Django phase in a fresh interpreter; it prints its figures as JSON on the last line."""
    cmd = [sys.executable, __file__, "--phase", phase, "--items", str(n_items), "--path", path]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"The {phase} phase failed (exit status {done.returncode}).")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoggedProcess:
    """A server in a subprocess, its output in `log_path`: `spawn` starts it, leaving the
    `with` block stops it (its log's tail printed if the block failed), `fail` stops it
    and exits with a message."""

    def spawn(self, cmd, cwd, env=None):
        self.log = open(self.log_path, "wb")  # noqa: SIM115  closed in __exit__
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if exc[0] is not None:
            sys.stderr.write(self.log_tail())

    def fail(self, message):
        self.__exit__(None, None, None)
        sys.stderr.write(self.log_tail())
        raise SystemExit(message)

    def log_tail(self, n_chars=4000):
        return self.log_path.read_bytes()[-n_chars:].decode(errors="replace")


class Server(LoggedProcess):
    """uvicorn in a subprocess, up once every worker has started, stopped on the way out."""

    def __init__(self, env, port, workers, log_path):
        self.cmd = [
            str(Path(sys.executable).parent / "uvicorn"),
            "quorum.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--timeout-keep-alive",
            str(KEEP_ALIVE_SECONDS),
            "--no-access-log",
            "--log-level",
            "info",  # for each worker's "Application startup complete."
        ]
        self.env, self.port, self.workers, self.log_path = env, port, workers, log_path

    def __enter__(self):
        self.spawn(self.cmd, REPO, self.env)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"uvicorn exited with status {self.proc.returncode}")
            # The port is open before the workers have loaded the app: wait for them all,
            # as a load balancer waits for a new server to be ready.
            started = self.log_path.read_bytes().count(b"Application startup complete.")
            if started >= self.workers:
                return self
            time.sleep(0.2)
        self.fail(f"uvicorn's {self.workers} workers did not start within {SERVER_START_TIMEOUT} s")

    def cpu_seconds(self):
        """User and system CPU time of uvicorn and its worker processes so far."""
        return sum(process_cpu_seconds(pid) for pid in [self.proc.pid, *children(self.proc.pid)])

    def worker_pids(self):
        """The worker processes: the supervisor's children that multiprocessing spawned, not
        its resource tracker."""
        return [
            pid
            for pid in children(self.proc.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    def worker_cpu_seconds(self):
        return [process_cpu_seconds(pid) for pid in self.worker_pids()]

    def worker_peak_rss(self):
        """Peak resident memory (VmHWM, bytes) of each worker process since it started."""
        return [process_peak_rss(pid) for pid in self.worker_pids()]


def children(pid):
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(p) for p in path.read_text().split()]
    return found


def process_cpu_seconds(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def process_peak_rss(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kilobytes = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(kilobytes[1]) * 1024 if kilobytes else 0


def machine_busy_seconds():
    """CPU seconds the whole machine has spent not idle, summed over its cores."""
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(t) for t in cpu[:8]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


# The annotators ----------------------------------------------------------------------------


class UnexpectedReply(Exception):
    pass


@dataclass
class Run:
    next_seconds: list = field(default_factory=list)
    submit_seconds: list = field(default_factory=list)
    cycle_seconds: list = field(default_factory=list)  # a submit and the GET it redirects to
    acks: list = field(default_factory=list)  # [worker, item, submission_id]
    repeats: int = 0  # an item shown again to an annotator who had submitted it
    retries: int = 0  # requests sent again after a transport error
    errors: list = field(default_factory=list)
    stopped_at_answers: int = 0  # annotators who gave all their answers before the study's end
    worker_peak_rss: list = field(default_factory=list)  # bytes, one per web worker
    worker_cpu_seconds: list = field(default_factory=list)  # over the run, one per web worker
    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    machine_cpu_seconds: float = 0.0


async def annotate_all(base_url, token, n_annotators, think, seed, server, max_answers=None):
    run = Run()
    tls = ssl.create_default_context()  # unused on plain HTTP; made once, not per client
    cpu, server_cpu, machine = time.process_time(), server.cpu_seconds(), machine_busy_seconds()
    worker_cpu = server.worker_cpu_seconds()
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            annotator(
                base_url,
                token,
                f"w{n}",
                think,
                max_answers,
                random.Random(seed * 100_003 + n),
                tls,
                run,
            )
            for n in range(1, n_annotators + 1)
        ),
        return_exceptions=True,
    )
    run.wall_seconds = time.perf_counter() - started
    run.client_cpu_seconds = time.process_time() - cpu
    run.server_cpu_seconds = server.cpu_seconds() - server_cpu
    worker_cpu = zip(server.worker_cpu_seconds(), worker_cpu, strict=True)
    run.worker_cpu_seconds = [after - before for after, before in worker_cpu]
    run.machine_cpu_seconds = machine_busy_seconds() - machine
    run.errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return run


async def annotator(base_url, token, worker, think, max_answers, rng, tls, run):
    """One crowd worker: join, then next item -> submit until the study sends them to done,
    or until they have given `max_answers` answers (None: no limit)."""
    label = f"/s/{SLUG}/label/"
    done = f"/s/{SLUG}/done/"
    submitted = set()
    given, submit_started = 0, None  # answers acknowledged; when the last was sent
    if think:
        await asyncio.sleep(rng.uniform(0, think))
    async with httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT, verify=tls) as client:
        join = f"/s/{SLUG}/join"
        reply = await send(client, run, "GET", join, params={"worker_id": worker, "token": token})
        expect_redirect(reply, label, worker)
        while True:
            started = time.perf_counter()
            reply = await send(client, run, "GET", label)
            run.next_seconds.append(time.perf_counter() - started)
            if submit_started is not None:
                run.cycle_seconds.append(time.perf_counter() - submit_started)
            if reply.status_code == 302 and reply.headers["location"] == done:
                return
            if max_answers is not None and given >= max_answers:
                run.stopped_at_answers += 1
                return
            if reply.status_code != 200:
                raise UnexpectedReply(f"{worker}: {what_went_wrong(reply)}")
            shown = time.perf_counter()
            form = read_form(reply.text, worker)
            if form["item"] in submitted:
                run.repeats += 1
            if think:
                await asyncio.sleep(rng.expovariate(1 / think))
            choices = defaultdict(list)
            for name, value in CHOICE_RE.findall(reply.text):
                choices[name].append(html.unescape(value))
            answers = {name: rng.choice(values) for name, values in choices.items()}
            started = submit_started = time.perf_counter()
            reply = await send(
                client,
                run,
                "POST",
                label,
                data={
                    **form,
                    **answers,
                    "active_seconds": f"{started - shown:.3f}",
                    "action": "submit",
                },
            )
            run.submit_seconds.append(time.perf_counter() - started)
            expect_redirect(reply, label, worker)
            submitted.add(form["item"])
            given += 1
            run.acks.append([worker, form["item"], form["submission_id"]])


async def send(client, run, method, url, **kwargs):
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TransportError:
        run.retries += 1
        return await client.request(method, url, **kwargs)


def read_form(page, worker):
    form = {}
    for name, pattern in FIELD_RE.items():
        match = pattern.search(page)
        if match is None:
            raise UnexpectedReply(f"{worker}: the label page has no {name!r} field")
        form[name] = html.unescape(match[1])
    match = CSRF_RE.search(page)
    if match is None:
        raise UnexpectedReply(f"{worker}: the label page has no CSRF token")
    form["csrfmiddlewaretoken"] = match[1]
    return form


def expect_redirect(reply, location, worker):
    if reply.status_code != 302 or reply.headers.get("location") != location:
        raise UnexpectedReply(f"{worker}: {what_went_wrong(reply)}, not a redirect to {location}")


def what_went_wrong(reply):
    """The reply in a line: its status and, from Django's debug page, the exception."""
    said = reply.headers.get("location", "")
    if match := EXCEPTION_RE.search(reply.text):
        said = f"{match[1]}: {' '.join(html.unescape(match[2]).split())}"
    elif match := ERROR_RE.search(reply.text):
        said = html.unescape(match[1])
    request = reply.request
    return f"{request.method} {request.url.path} answered {reply.status_code} {said}".rstrip()


# The report --------------------------------------------------------------------------------


def report(args, server, setup, run, checks):
    host = urlsplit(server).hostname
    cores = os.cpu_count()
    submissions = len(run.acks)
    requests = len(run.next_seconds) + len(run.submit_seconds) + args.annotators
    print()
    print(
        f"Quorum annotator bench: {args.annotators} annotators, {args.items:,} pairwise items, "
        f"overlap {OVERLAP} ({args.items * OVERLAP:,} labels to give)"
    )
    think = (
        f"~{args.think:g} s (exponential) before each submit, arrivals spread over {args.think:g} s"
        if args.think
        else "none, all arrive at once"
    )
    print(
        f"PostgreSQL {setup['server_version']} on {host}, Python {sys.version.split()[0]}, "
        f"{cores} CPUs; uvicorn --workers {args.server_workers}, DEBUG=0, Redis, "
        f"DB_CONN_MAX_AGE={args.conn_max_age}; think time: {think}"
    )
    print()
    print(f"{'request':<22}{'count':>8}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   target")
    p95 = percentile(run.next_seconds, 95)
    mark = f"p95 < {TARGET_P95_MS} ms {'PASS' if p95 * 1000 < TARGET_P95_MS else 'MISS'}"
    latency_row("next item (GET label)", run.next_seconds, mark)
    latency_row("submit (POST label)", run.submit_seconds, "(no target)")
    print("(milliseconds, as the client saw them; the GET that sends an annotator to done counts)")
    print()
    seconds = run.wall_seconds
    print(
        f"{submissions:,} submissions in {seconds:.1f} s: {submissions / seconds:,.1f} "
        f"submissions/s ({requests / seconds:,.0f} HTTP requests/s)"
    )
    rest = run.machine_cpu_seconds - run.server_cpu_seconds - run.client_cpu_seconds
    print(
        f"CPU over the run, share of one core: server {run.server_cpu_seconds / seconds:.0%}, "
        f"load generator {run.client_cpu_seconds / seconds:.0%}, PostgreSQL and the rest "
        f"{rest / seconds:.0%}"
        f" (of {cores * 100}%); server CPU per request "
        f"{run.server_cpu_seconds / requests * 1000:.1f} ms"
    )
    if not args.think:
        print(
            f"(no think time: each annotator always has a request in flight, so a request "
            f"waits about {args.annotators} / {requests / seconds:,.0f} requests/s = "
            f"{args.annotators / (requests / seconds) * 1000:,.0f} ms; try --think)"
        )
    print()
    found = violations(run, checks)
    print(f"{'violation':<44}{'count':>7}")
    for name, count in found.items():
        print(f"{name:<44}{count:>7}   {'PASS' if count == 0 else 'FAIL'}")
    print(
        f"(current human labels {checks['labels']:,} of {args.items * OVERLAP:,}; "
        f"labels stored without an acknowledgement {checks['unacknowledged']}; "
        f"reservations left {checks['reservations']}; requests sent again {run.retries})"
    )
    if run.errors:
        print()
        print(
            f"{len(run.errors)} annotator(s) stopped on an error (items they had reserved stay "
            "short of their labels until the reservation expires):"
        )
        for error in sorted(set(run.errors))[:10]:
            print(f"  {error}")
    return 1 if run.errors or any(found.values()) else 0


def violations(run, checks):
    """The assignment engine's invariants broken in the run, by name; items left short count
    only when the annotators labelled until the study was done."""
    found = {
        f"item over {OVERLAP} current human labels": checks["over_k"],
        "annotator with 2 labels on one item": checks["repeated_in_db"],
        "item shown again after its submission": run.repeats,
        "acknowledged submission not stored": checks["lost"],
    }
    if not run.stopped_at_answers:
        found[f"item short of {OVERLAP} labels at the end"] = checks["short"]
    return found


def closed_loop_report(args, server, results):
    """One row per number of annotators, then issue 19's targets beside the figures."""
    host = urlsplit(server).hostname
    version = next(iter(results.values()))[0]["server_version"]
    print()
    print(
        f"Quorum closed loop: {args.items:,} pairwise items, overlap {OVERLAP}, a fresh "
        f"database and server per row; each annotator: next item -> answer, no pause, up to "
        f"{args.answers} answers"
    )
    print(
        f"PostgreSQL {version} on {host}, Python {sys.version.split()[0]}, {os.cpu_count()} "
        f"CPUs; uvicorn --workers {args.server_workers}, DEBUG=0, Redis, "
        f"DB_CONN_MAX_AGE={args.conn_max_age}"
    )
    print()
    print(
        f"{'c':>4}{'answers':>8}{'next GET':>10}{'p95':>7}{'answer+next':>13}{'p95':>7}"
        f"{'answers/s':>11}{'CPU: server':>13}{'PG+rest':>9}{'client':>8}"
        f"{'worker peak RSS':>18}{'violations':>12}"
    )
    for count, (_, run, checks) in results.items():
        closed_loop_row(count, run, checks)
    print(
        "(p50 and p95 in ms as the client saw them; answer+next is the POST and the GET it "
        "redirects to, one click in a browser; CPU in ms per answer over the run: uvicorn and "
        "its workers, the rest of the machine (PostgreSQL, Redis, the kernel), this load "
        "generator)"
    )
    print()
    print(f"{'target':<40}{'figure':>12}")
    for count, limit in CLOSED_LOOP_NEXT_P95_MS.items():
        p95 = percentile(results[count][1].next_seconds, 95) * 1000 if count in results else None
        target_row(f"next-item GET p95 <= {limit} ms at c={count}", p95, "ms", at_most=limit)
    for count, rate in CLOSED_LOOP_ANSWERS_PER_S.items():
        run = results[count][1] if count in results else None
        per_second = len(run.acks) / run.wall_seconds if run else None
        target_row(f"answers/s >= {rate} at c={count}", per_second, "/s", at_least=rate)
    largest = max(mb(n) for _, run, _ in results.values() for n in run.worker_peak_rss)
    limit = CLOSED_LOOP_WORKER_RSS_MB
    target_row(f"web worker peak RSS <= {limit} MB", largest, "MB", at_most=limit)
    broken = sum(sum(violations(run, checks).values()) for _, run, checks in results.values())
    target_row("invariant violations = 0", broken, "", at_most=0)
    print()

    failed = False
    for count, (_, run, checks) in results.items():
        found = {name: n for name, n in violations(run, checks).items() if n}
        print(
            f"c={count}: current human labels {checks['labels']:,}, annotators stopped at "
            f"{args.answers} answers {run.stopped_at_answers}, reservations left "
            f"{checks['reservations']}, requests sent again {run.retries}, CPU seconds per "
            f"worker {', '.join(f'{seconds:.1f}' for seconds in run.worker_cpu_seconds)}"
            + "".join(f"; {name}: {n} FAIL" for name, n in found.items())
        )
        for error in sorted(set(run.errors))[:10]:
            print(f"  stopped on an error: {error}")
        failed = failed or bool(found or run.errors)
    return 1 if failed else 0


def closed_loop_row(count, run, checks):
    answers = len(run.acks)
    next_p50, next_p95, cycle_p50, cycle_p95 = (
        percentile(seconds, p) * 1000
        for seconds in (run.next_seconds, run.cycle_seconds)
        for p in (50, 95)
    )
    rest_seconds = run.machine_cpu_seconds - run.server_cpu_seconds - run.client_cpu_seconds
    server, rest, client = (
        seconds / max(answers, 1) * 1000
        for seconds in (run.server_cpu_seconds, rest_seconds, run.client_cpu_seconds)
    )
    rss = ", ".join(f"{mb(n):.0f}" for n in run.worker_peak_rss) + " MB"
    broken = sum(violations(run, checks).values())
    print(
        f"{count:>4}{answers:>8,}{next_p50:>10.1f}{next_p95:>7.1f}{cycle_p50:>13.1f}"
        f"{cycle_p95:>7.1f}{answers / run.wall_seconds:>11.1f}"
        f"{server:>13.1f}{rest:>9.1f}{client:>8.1f}{rss:>18}{broken:>12}"
    )


def target_row(name, figure, unit, *, at_most=None, at_least=None):
    """A target and its figure with PASS/MISS; a figure of None was not measured (its
    concurrency was not in the list)."""
    if figure is None:
        print(f"{name:<40}{'not run':>12}")
        return
    met = figure <= at_most if at_most is not None else figure >= at_least
    shown = f"{figure:>9,}" if isinstance(figure, int) else f"{figure:>9,.1f}"
    print(f"{name:<40}{shown} {unit:<3}  {'PASS' if met else 'MISS'}")


def mb(n_bytes):
    return n_bytes / 2**20


def latency_row(name, seconds, mark):
    figures = [percentile(seconds, p) for p in (50, 95, 99, 100)]
    cells = "".join(f"{s * 1000:>9.1f}" for s in figures)
    print(f"{name:<22}{len(seconds):>8,}{cells}   {mark}")


def percentile(values, p):
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


# The Django phases: set the study up, check the database afterwards ------------------------


def run_phase(phase, n_items, path):
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quorum.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count, Q

    from annotation.imports import import_items
    from annotation.models import Annotation, Rater, Reservation, Study

    if phase == "setup":
        call_command("migrate", verbosity=0)
        call_command("collectstatic", verbosity=0, interactive=False)
        study = Study.objects.create_with_rubric(
            slug=SLUG,
            name="Annotator bench",
            rubric=PAIRWISE_RUBRIC,
            status=Study.Status.OPEN,
            overlap=OVERLAP,
        )
        created = import_items(study, path).created
        if created != n_items:
            raise SystemExit(f"imported {created:,} items, not {n_items:,}")
        connection.ensure_connection()
        version = connection.connection.info.parameter_status("server_version")
        emit(join_token=study.join_token, server_version=version.split()[0])
        return

    if phase == "check":
        study = Study.objects.get(slug=SLUG)
        labels = Annotation.objects.of_study(study).filter(rater__kind=Rater.Kind.HUMAN)
        current = labels.current()
        per_item = study.items.annotate(
            n=Count(
                "annotations",
                filter=Q(annotations__is_current=True, annotations__rater__kind=Rater.Kind.HUMAN),
            )
        ).values_list("n", flat=True)
        stored = {
            str(sid): (worker, item)
            for sid, worker, item in labels.filter(
                rater__user__memberships__study=study
            ).values_list(
                "submission_id", "rater__user__memberships__worker_id", "item__external_id"
            )
        }
        acks = json.loads(Path(path).read_text())
        lost = sum(stored.get(sid) != (worker, item) for worker, item, sid in acks)
        emit(
            over_k=sum(n > study.overlap for n in per_item),
            short=sum(n < study.overlap for n in per_item),
            repeated_in_db=labels.values("item", "rater")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .count(),
            lost=lost,
            unacknowledged=len(stored.keys() - {sid for _, _, sid in acks}),
            labels=current.count(),
            reservations=Reservation.objects.filter(item__study=study).count(),
        )
        return
    raise SystemExit(f"unknown phase {phase!r}")


def emit(**figures):
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
