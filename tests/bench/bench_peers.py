"""Quorum beside a peer: the same closed loop against Potato and Quorum in one run (issue 19).

The issue compares Quorum's labelling throughput with Potato's (potato-annotation on PyPI) on
the same items and the same loop, in the same run on the same machine. This bench installs
Potato (POTATO_VERSION) into a throwaway virtualenv in a temporary folder (never a dependency
of Quorum; --potato-venv reuses one already made), writes the annotator bench's pairwise items
(bench_annotators.generate) as a Potato task with one radio question (A / B / tie) and
num_annotators_per_item: 3, and for each number of annotators in --closed-loop runs:

- Quorum's closed loop, by calling bench_annotators.label_study (a fresh PostgreSQL database
  and uvicorn --workers 2, as `bench_annotators.py --closed-loop` does);
- the same loop against a fresh Potato task served by Potato's own server (`potato start`, a
  threaded Flask/Werkzeug process) on a free loopback port.

A Potato annotator does what its annotation page does: it logs in through the URL
(`login.type: url_direct`, `/?worker_id=...`, which registers the worker), GETs `/` (timed:
the next-item page), and for an answer POSTs `/updateinstance` (the label, as JSON) and
`/annotate` with `action: next_instance` (what the page's Next button sends), then GETs `/`
again; answer+next is those three requests, as Quorum's is its POST and the GET it redirects
to: one click in a browser. Each annotator stops after --answers answers or when Potato shows
no more items. Items are assigned by Potato's least_annotated strategy (one item at a time, as
a crowd study needs; the default fixed_order hands every worker the whole corpus at login).

It prints one table per number of annotators, Quorum and Potato side by side, with the ratio
Potato / Quorum of each figure (above 1: Quorum is faster, except for answers/s, where above
1 means Potato answered more), and for Potato the items that got more than 3 annotators, read
from the user_state.json files it writes. No figure changes the exit status; an error (an
unexpected reply, a server that does not start, a failed install) does, except a 5xx from
Potato, which stops that worker and is printed with the exception from Potato's log.

    .venv/bin/python tests/bench/bench_peers.py --closed-loop 1,8,32   # issue 19's comparison
    .venv/bin/python tests/bench/bench_peers.py --closed-loop 1 --items 200 --answers 50
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_annotators  # the Quorum side: its items, server, loop and figures
from bench_annotators import OVERLAP, Run, UnexpectedReply, free_port, percentile, send

POTATO_VERSION = "2.12.1"
POTATO_START_TIMEOUT = 120  # seconds; it indexes the items and builds its templates first
INSTANCE_RE = re.compile(r'<input[^>]*\bname="instance_id"[^>]*\bvalue="([^"]*)"')
CHOICES = ("A", "B", "tie")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--closed-loop",
        type=bench_annotators.concurrencies,
        default=[1, 8, 32],
        metavar="C,C,...",
        help="numbers of annotators, one run of each tool per number (default 1,8,32)",
    )
    parser.add_argument(
        "--items",
        type=int,
        default=int(os.environ.get("BENCH_ITEMS_LABEL", 2000)),
        help="pairwise items (default BENCH_ITEMS_LABEL or 2,000)",
    )
    parser.add_argument(
        "--answers", type=int, default=300, help="answers each annotator gives (default 300)"
    )
    parser.add_argument(
        "--potato-venv",
        type=Path,
        help="a virtualenv with potato-annotation installed, kept (default: a throwaway one)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # What bench_annotators.label_study reads from its own arguments.
    args.server_workers = bench_annotators.CLOSED_LOOP_SERVER_WORKERS
    args.conn_max_age = 0
    args.think = 0.0
    sys.exit(compare(args))


def compare(args):
    server = os.environ.get("BENCH_DATABASE_URL", bench_annotators.DEFAULT_SERVER)
    work = Path(tempfile.mkdtemp(prefix="quorum-bench-peers-"))
    try:
        venv = args.potato_venv or install_potato(work / "potato-venv")
        version = potato_version(venv)
        print(f"Generating {args.items:,} items in {work} ...")
        bench_annotators.generate(work, args.items)
        results = {}
        for count in args.closed_loop:
            print(f"\nQuorum, {count} annotator(s):", flush=True)
            setup, quorum, checks = bench_annotators.label_study(
                args, server, work, count, max_answers=args.answers
            )
            print(f"Potato {version}, {count} annotator(s):", flush=True)
            potato, state = potato_closed_loop(args, venv, work, count)
            results[count] = (quorum, checks, potato, state)
        return report(args, version, setup, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# Potato: install, configure, serve --------------------------------------------------------


def install_potato(venv):
    print(f"Installing potato-annotation=={POTATO_VERSION} into a throwaway virtualenv {venv} ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    done = subprocess.run([*pip, f"potato-annotation=={POTATO_VERSION}"], capture_output=True)
    if done.returncode != 0:
        sys.stderr.write(
            done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        )
        raise SystemExit(f"pip could not install potato-annotation=={POTATO_VERSION}")
    return venv


def potato_version(venv):
    code = "from importlib.metadata import version; print(version('potato-annotation'))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"no potato-annotation in {venv}: {done.stderr.strip()}")
    return done.stdout.strip()


def write_task(task, items_path):
    """A Potato task for the bench's items: the prompt and both responses as the item's text,
    one radio question, overlap 3, login by a worker id in the URL."""
    task.mkdir()
    with open(items_path, encoding="utf-8") as src, open(task / "items.jsonl", "w") as out:
        for line in src:
            item = json.loads(line)
            text = "\n\n".join(
                [item["prompt"], *(f"{r['key']}: {r['text']}" for r in item["responses"])]
            )
            out.write(json.dumps({"id": item["external_id"], "text": text}) + "\n")
    config = {
        "annotation_task_name": "Bench peers",
        "task_dir": str(task),
        "output_annotation_dir": str(task / "out"),
        "data_files": ["items.jsonl"],
        "item_properties": {"id_key": "id", "text_key": "text"},
        "login": {"type": "url_direct", "url_argument": "worker_id"},
        "assignment_strategy": "least_annotated",
        "num_annotators_per_item": OVERLAP,
        "annotation_schemes": [
            {
                "annotation_type": "radio",
                "name": "preference",
                "description": "Which response is better?",
                "labels": list(CHOICES),
            }
        ],
    }
    # JSON is YAML: no YAML writer needed on Quorum's side.
    (task / "config.yaml").write_text(json.dumps(config, indent=2))
    return task / "config.yaml"


class PotatoServer(bench_annotators.LoggedProcess):
    """`potato start` in a subprocess, up once /health answers 200, stopped on the way out."""

    def __init__(self, venv, config, port, log_path):
        self.cmd = [str(venv / "bin" / "potato"), "start", str(config), "-p", str(port)]
        self.cmd += ["--host", "127.0.0.1"]
        self.port, self.log_path, self.cwd = port, log_path, config.parent

    def __enter__(self):
        self.spawn(self.cmd, self.cwd)
        deadline = time.monotonic() + POTATO_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"potato exited with status {self.proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.fail(f"potato did not answer /health within {POTATO_START_TIMEOUT} s")

    def cpu_seconds(self):
        return bench_annotators.process_cpu_seconds(self.proc.pid)

    def peak_rss(self):
        return bench_annotators.process_peak_rss(self.proc.pid)


def potato_closed_loop(args, venv, work, n_annotators):
    """(run, state) of one fresh Potato task labelled by the annotators; state is what Potato
    stored, read from its files once the server has stopped."""
    task = work / f"potato-{n_annotators}"
    config = write_task(task, work / "items.jsonl")
    port = free_port()
    print(f"Starting potato start on 127.0.0.1:{port} ...", flush=True)
    with PotatoServer(venv, config, port, task / "server.log") as potato:
        print(f"{n_annotators} annotators labelling ...", flush=True)
        run = asyncio.run(annotate_all(f"http://127.0.0.1:{port}", n_annotators, args, potato))
        run.worker_peak_rss = [potato.peak_rss()]
    state = stored_labels(task / "out")
    log = (task / "server.log").read_text(errors="replace").splitlines()
    state["log_errors"] = [line for line in log if re.search(r"\w+(Error|Exception):", line)]
    return run, state


async def annotate_all(base_url, n_annotators, args, server):
    run = Run()
    cpu, server_cpu = time.process_time(), server.cpu_seconds()
    machine = bench_annotators.machine_busy_seconds()
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            annotator(base_url, f"w{n}", args.answers, args.seed * 100_003 + n, run)
            for n in range(1, n_annotators + 1)
        ),
        return_exceptions=True,
    )
    run.wall_seconds = time.perf_counter() - started
    run.client_cpu_seconds = time.process_time() - cpu
    run.server_cpu_seconds = server.cpu_seconds() - server_cpu
    run.machine_cpu_seconds = bench_annotators.machine_busy_seconds() - machine
    run.errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    run.peer_failures = sum(isinstance(r, PotatoServerError) for r in results)
    return run


async def annotator(base_url, worker, max_answers, seed, run):
    """One crowd worker on Potato: log in by URL, then next item -> answer until Potato shows
    no item or `max_answers` answers are given."""
    choice = CHOICES[seed % len(CHOICES)]  # the answer does not change the server's work
    submitted = set()
    given, submit_started = 0, None
    async with httpx.AsyncClient(
        base_url=base_url, timeout=bench_annotators.HTTP_TIMEOUT, follow_redirects=True
    ) as client:
        reply = await send(client, run, "GET", "/", params={"worker_id": worker})
        expect_ok(reply, worker)
        while True:
            started = time.perf_counter()
            reply = await send(client, run, "GET", "/")
            run.next_seconds.append(time.perf_counter() - started)
            if submit_started is not None:
                run.cycle_seconds.append(time.perf_counter() - submit_started)
            expect_ok(reply, worker)
            match = INSTANCE_RE.search(reply.text)
            if match is None or not match[1]:
                return  # the done page: no item left for this worker
            if max_answers is not None and given >= max_answers:
                run.stopped_at_answers += 1
                return
            item = match[1]
            if item in submitted:
                run.repeats += 1  # Potato showed an answered item again: it has nothing new
                return
            started = submit_started = time.perf_counter()
            reply = await send(
                client,
                run,
                "POST",
                "/updateinstance",
                json={"instance_id": item, "annotations": {f"preference:{choice}": choice}},
            )
            expect_ok(reply, worker)
            if reply.json().get("status") != "success":
                raise UnexpectedReply(f"{worker}: /updateinstance refused {item}: {reply.text}")
            reply = await send(
                client,
                run,
                "POST",
                "/annotate",
                json={"action": "next_instance", "instance_id": item},
                headers={"X-Potato-Navigation": "1"},
            )
            run.submit_seconds.append(time.perf_counter() - started)
            expect_ok(reply, worker)
            submitted.add(item)
            given += 1
            run.acks.append([worker, item])


class PotatoServerError(UnexpectedReply):
    """Potato answered 5xx: its failure, reported, not the bench's (the worker gives up)."""


def expect_ok(reply, worker):
    if reply.status_code != 200:
        request = reply.request
        failure = PotatoServerError if reply.status_code >= 500 else UnexpectedReply
        raise failure(f"{worker}: {request.method} {request.url.path} answered {reply.status_code}")


def stored_labels(out):
    """What Potato stored: annotators per item, from each worker's user_state.json."""
    per_item = Counter()
    for path in out.glob("*/user_state.json"):
        state = json.loads(path.read_text())
        per_item.update(state.get("instance_id_to_label_to_value", {}).keys())
    return {
        "labels": sum(per_item.values()),
        "over_k": sum(n > OVERLAP for n in per_item.values()),
        "most": max(per_item.values(), default=0),
    }


# The report --------------------------------------------------------------------------------


def report(args, version, setup, results):
    print()
    print(
        f"Quorum beside Potato {version}: the same closed loop, {args.items:,} pairwise items, "
        f"overlap {OVERLAP}; each annotator: next item -> answer, no pause, up to "
        f"{args.answers} answers; a fresh database/task and server per run"
    )
    print(
        f"Quorum: PostgreSQL {setup['server_version']}, uvicorn --workers "
        f"{args.server_workers}, DEBUG=0; Potato: `potato start` (one threaded Flask process), "
        f"least_annotated assignment; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    failed = False
    for count, (quorum, checks, potato, state) in results.items():
        print()
        print(f"c = {count}")
        print(f"{'figure':<26}{'Quorum':>10}{'Potato':>10}{'Potato/Quorum':>15}")
        for name, key in (("next-item GET p50 ms", 50), ("next-item GET p95 ms", 95)):
            row(name, *(percentile(r.next_seconds, key) * 1000 for r in (quorum, potato)))
        row(
            "answer+next p95 ms",
            *(percentile(r.cycle_seconds, 95) * 1000 for r in (quorum, potato)),
        )
        row("answers/s", *(len(r.acks) / r.wall_seconds for r in (quorum, potato)))
        row("answers", len(quorum.acks), len(potato.acks))
        row("server peak RSS MB", *(sum(r.worker_peak_rss) / 2**20 for r in (quorum, potato)))
        broken = sum(bench_annotators.violations(quorum, checks).values())
        print(
            f"Quorum: {checks['labels']:,} current human labels, items over {OVERLAP}: "
            f"{checks['over_k']}, invariant violations {broken}. Potato: {state['labels']:,} "
            f"labels stored, items over {OVERLAP} annotators: {state['over_k']} (most on one "
            f"item: {state['most']}), items shown again {potato.repeats}"
        )
        for name, run in (("Quorum", quorum), ("Potato", potato)):
            for error in sorted(set(run.errors))[:10]:
                print(f"  {name} annotator stopped on an error: {error}")
        for line in state["log_errors"][-3:]:
            print(f"  Potato's log: {line.strip()[:200]}")
        # Potato's own 5xx replies are figures about Potato; anything else is a broken bench.
        failed = failed or bool(quorum.errors) or len(potato.errors) > potato.peer_failures
    print()
    print(
        "(milliseconds as the client saw them; Quorum's answer+next is its POST and the GET it "
        "redirects to, Potato's the /updateinstance and /annotate POSTs and the GET of /; "
        "server RSS: the uvicorn workers together, the Potato process)"
    )
    return 1 if failed else 0


def row(name, quorum, potato):
    ratio = potato / quorum if quorum else float("nan")
    cells = "".join(f"{v:>10,}" if isinstance(v, int) else f"{v:>10,.1f}" for v in (quorum, potato))
    print(f"{name:<26}{cells}{ratio:>15.2f}")


if __name__ == "__main__":
    main()
