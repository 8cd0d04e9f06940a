"""`make bench`, judging: 2,000 pairwise items in both orders against the local judge stub.

The stub answers after 200 ms, and the judge may have 32 requests in flight, so the ideal is
32 / 0.2 s = 160 requests/s; the target is 90% of that. A second run injects 10% errors (429
with Retry-After and 500) and checks that every one of the 4,000 verdicts is stored exactly
once. The stub runs in its own process and so does the run (as a Celery worker would), whose
peak RSS is printed. Needs only the local PostgreSQL (a throwaway database, as run.py).

    .venv/bin/python tests/bench/bench_judge.py [--items 2000]
"""

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from run import DEFAULT_SERVER, PAIRWISE_RUBRIC, create_database, database_url, drop_database

REPO = Path(__file__).resolve().parents[2]
LATENCY = 0.2
CONCURRENCY = 32
IDEAL = CONCURRENCY / LATENCY
TARGET_SHARE = 0.9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=int(os.environ.get("BENCH_JUDGE_ITEMS", 2000)))
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    name = f"quorum_bench_judge_{os.getpid()}"
    create_database(server, name)
    try:
        os.environ["DATABASE_URL"] = database_url(server, name)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quorum.settings")
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        bench(args.items)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(server, name)


def bench(n_items):
    from annotation.models import Item, Study
    from judging.models import Judge, Verdict
    from judging.work import plan_run

    study = Study.objects.create_with_rubric(slug="bench", name="bench", rubric=PAIRWISE_RUBRIC)
    Item.objects.bulk_create(
        Item(
            study=study,
            external_id=f"b{n}",
            position=n,
            prompt=f"Question {n}: explain.",
            responses=[
                {"key": "A", "text": "short " * (n % 7 + 1), "model": "m1"},
                {"key": "B", "text": "longer answer " * (n % 5 + 2), "model": "m2"},
            ],
        )
        for n in range(n_items)
    )
    print(
        f"Judge bench: {n_items:,} pairwise items in both orders = {2 * n_items:,} requests; "
        f"stub latency {LATENCY * 1000:.0f} ms, concurrency {CONCURRENCY}"
    )
    print(
        f"{'phase':<24}{'requests':>10}{'seconds':>9}{'req/s':>9}{'ideal':>8}"
        f"{'peak RSS':>10}  result"
    )
    for label, stub_flags in (
        ("no errors", []),
        ("10% 429/500 injected", ["--error-rate", "0.1", "--retry-after", "0.2"]),
    ):
        with stub_server(stub_flags) as base_url:
            judge = Judge.objects.create(
                name=f"stub {label}",
                base_url=base_url,
                model="stub-judge",
                max_concurrency=CONCURRENCY,
            )
            run = plan_run(study, judge, ["pref"], both_orders=True)
            seconds, rss_mb = run_in_worker(run.pk)
        verdicts = Verdict.objects.filter(run=run)
        stored = verdicts.filter(error="").count()
        distinct = len(set(verdicts.values_list("item_id", "order", "question")))
        planned = run.planned_requests()
        exactly_once = stored == distinct == planned == verdicts.count()
        rate = planned / seconds
        verdict = f"{'PASS' if rate >= TARGET_SHARE * IDEAL else 'MISS'} (>= {TARGET_SHARE:.0%})"
        if label != "no errors":
            verdict = f"{stored:,} of {planned:,} verdicts stored exactly once: " + (
                "PASS" if exactly_once else "FAIL"
            )
        print(
            f"{label:<24}{planned:>10,}{seconds:>9.1f}{rate:>9.1f}{IDEAL:>8.0f}"
            f"{rss_mb:>8.0f} MB  {verdict}"
        )
        if not exactly_once:
            sys.exit(
                f"verdicts lost or duplicated: {verdicts.count()} rows, {distinct} distinct, "
                f"{stored} without error, {planned} planned"
            )


def run_in_worker(run_id):
    """Run the judge in a fresh process, as a worker would: the seconds its execute() took
    (not the interpreter's start-up) and its peak RSS."""
    code = (
        "import resource, time, django; django.setup(); from judging.work import execute; "
        f"started = time.monotonic(); execute({run_id}); "
        "print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ),
        check=True,
        capture_output=True,
        text=True,
    )
    seconds, rss_kb = done.stdout.split()[-2:]
    return float(seconds), int(rss_kb) / 1024


class stub_server:  # a context manager, named like one
    def __init__(self, flags):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.flags = flags

    def __enter__(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "judge_stub.py"),
                "--port",
                str(self.port),
                "--latency",
                str(LATENCY),
                *self.flags,
            ],
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{self.port}/v1"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        return base

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=10)


if __name__ == "__main__":
    main()
