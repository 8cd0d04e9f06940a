"""`make bench`: import 100,000 pairwise items into PostgreSQL, export them, 300,000 labels
and their 100,000 final labels.

It prints throughput next to the targets of the issue (import >= 10,000 items/s, label CSV
export >= 100,000 rows/s) and the peak RSS of each phase. Every timed phase runs in a fresh
Python process, so its peak RSS is its own and not a leftover of the phase before; each phase
also runs at a tenth of the size, so a reader sees whether memory grows with the data or stays
flat (streaming, not the whole file in memory). Nothing is asserted: the figures are printed
with PASS/MISS beside them, and the exit status is non-zero only when something fails.

The run needs nothing but a PostgreSQL server: it creates a throwaway database on it
(BENCH_DATABASE_URL, default the local server as user postgres), migrates it, writes its
files to a temporary folder and drops both at the end.

    make bench                                          # 100,000 items, 300,000 labels
    .venv/bin/python tests/bench/run.py --items 10000   # a quick check (or BENCH_ITEMS=10000)
"""

import argparse
import csv
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
RATERS = ("rater1", "rater2", "rater3")
TENTH = 10

PAIRWISE_RUBRIC = {
    "name": "Pairwise",
    "questions": [
        {"key": "pref", "type": "pairwise", "prompt": "Which is better?", "allow_tie": True}
    ],
}

TARGETS = {"import-items": 10_000, "export-csv": 100_000}
# "Flat" memory: from a tenth of the data to all of it, peak RSS grows by less than a tenth
# of what the file grows by (so the file is not held in memory), or by less than the few
# megabytes that RSS varies from run to run anyway.
FLAT_SHARE = 0.10
RSS_NOISE_MB = 5
MEANINGFUL_TENTH = 10_000

PHASES = (
    # name, what is counted, the file it reads or writes
    ("import-items", "items", "items.jsonl"),
    ("import-labels", "labels", "labels.csv"),
    ("export-csv", "label rows", "export.csv"),
    ("export-jsonl", "items", "export.jsonl"),
    ("export-final", "final labels", "final.csv"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items",
        type=int,
        default=int(os.environ.get("BENCH_ITEMS", 100_000)),
        help="items to import (default BENCH_ITEMS or 100,000); labels are 3 per item",
    )
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--study", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase, args.study, args.path)
    else:
        run_bench(max(args.items, TENTH))


# The parent: data, database, one child process per phase, the report --------------------


def run_bench(n_items):
    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    db_name = f"quorum_bench_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="quorum-bench-"))
    sizes = {"full": n_items, "tenth": n_items // TENTH}
    try:
        print(f"Generating {n_items:,} items and {len(RATERS) * n_items:,} labels in {work} ...")
        for size, n in sizes.items():
            (work / size).mkdir()
            generate(work / size, n)
        create_database(server, db_name)
        try:
            env = child_env(server, db_name, work)
            print(f"Migrating the throwaway database {db_name} ...")
            server_version = run_child(env, "setup", "", "")["server_version"]
            results = {}
            for size in sizes:
                for phase, _, filename in PHASES:
                    print(f"  {phase} ({size} size) ...", flush=True)
                    results[size, phase] = run_child(
                        env, phase, f"bench-{size}", str(work / size / filename)
                    )
        finally:
            drop_database(server, db_name)
        check_counts(results, sizes)
        report(n_items, sizes, work, server, server_version, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def generate(folder, n_items):
    """Write items.jsonl (~2 KB an item) and labels.csv (3 human raters per item).

    A fixed seed, so every run imports the same bytes.
    """
    rng = random.Random(n_items)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(3000)
    ] + ["café", "naïve", "über", "façade", "résumé", "jalapeño"]
    sentences = [
        " ".join(rng.choice(words) for _ in range(rng.randint(12, 22))).capitalize() + "."
        for _ in range(2000)
    ]

    def text(n_sentences):
        return " ".join(rng.choices(sentences, k=n_sentences))

    categories = ("math", "code", "writing", "reasoning", "safety", "trivia")
    with (
        open(folder / "items.jsonl", "w", encoding="utf-8", newline="\n") as items,
        open(folder / "labels.csv", "w", encoding="utf-8", newline="") as labels_file,
    ):
        labels = csv.writer(labels_file)
        labels.writerow(
            ("item", "rater", "kind", "question", "value", "order", "confidence", "rationale")
        )
        for i in range(1, n_items + 1):
            external_id = f"b{i}"
            record = {
                "external_id": external_id,
                "prompt": f"Question {i}: {text(4)}",
                "responses": [
                    {"key": "A", "text": text(6), "model": "model-a-7b"},
                    {"key": "B", "text": text(6), "model": "model-b-70b"},
                ],
                "metadata": {
                    "category": categories[i % len(categories)],
                    "lang": "en",
                    "difficulty": rng.randint(1, 5),
                    "source": "bench",
                },
            }
            items.write(json.dumps(record, ensure_ascii=False))
            items.write("\n")
            for rater in RATERS:
                value = rng.choices(("A", "B", "tie"), weights=(45, 40, 15))[0]
                order = rng.choice(("AB", "BA"))
                rationale = 'Clearer, and "more" complete.' if rng.random() < 0.1 else ""
                labels.writerow((external_id, rater, "human", "pref", value, order, "", rationale))


def database_url(server, name):
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(server, name):
    import psycopg

    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        raise SystemExit(
            f"Cannot create a database on {server} (set BENCH_DATABASE_URL to a PostgreSQL "
            f"server where you may): {e}"
        ) from None


def drop_database(server, name):
    import psycopg

    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as e:
        print(f"Could not drop the database {name}: {e}", file=sys.stderr)


def child_env(server, db_name, work):
    """The environment of a phase: the throwaway database, DEBUG off, nothing written to var/."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(server, db_name),
        DJANGO_SETTINGS_MODULE="quorum.settings",
        DEBUG="0",  # DEBUG keeps every query in memory, which would swamp the RSS figures
        SECRET_KEY="bench-only",
        QUORUM_VAR_DIR=str(work / "var"),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_child(env, phase, study, path):
    """Run one phase in a fresh interpreter; it prints its figures as JSON on the last line."""
    cmd = [sys.executable, __file__, "--phase", phase, "--study", study, "--path", path]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"The {phase} phase failed (exit status {done.returncode}).")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_counts(results, sizes):
    """A fast phase that did the wrong amount of work is no result: compare every count."""
    for size, n in sizes.items():
        expected = {
            "import-items": n,
            "import-labels": len(RATERS) * n,
            "export-csv": len(RATERS) * n,
            "export-jsonl": n,
            "export-final": n,  # one question: one final label per item
        }
        for phase, count in expected.items():
            got = results[size, phase]["count"]
            if got != count:
                raise SystemExit(f"{phase} ({size} size) handled {got:,} rows, not {count:,}.")


def report(n_items, sizes, work, server, server_version, results):
    item_file = (work / "full" / "items.jsonl").stat().st_size
    label_file = (work / "full" / "labels.csv").stat().st_size
    host = urlsplit(server).hostname
    print()
    print(
        f"Quorum bench: {n_items:,} pairwise items ({item_file / n_items:,.0f} bytes each, "
        f"{mb(item_file)} JSONL) and {len(RATERS) * n_items:,} labels ({mb(label_file)} CSV)"
    )
    print(
        f"PostgreSQL {server_version} on {host}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; each phase in a fresh process"
    )
    print()
    print(f"{'phase':<15}{'rows':>10}{'seconds':>9}{'in Python':>11}{'rate':>24}   target")
    for phase, unit, _ in PHASES:
        r = results["full", phase]
        rate = r["count"] / r["seconds"]
        target = TARGETS.get(phase)
        mark = (
            f">= {target:,} {unit}/s {'PASS' if rate >= target else 'MISS'}"
            if target
            else "(no target)"
        )
        print(
            f"{phase:<15}{r['count']:>10,}{r['seconds']:>9.2f}"
            f"{r['cpu_seconds'] / r['seconds']:>11.0%}{f'{rate:,.0f} {unit}/s':>24}   {mark}"
        )
    print(
        "(in Python: the phase's CPU time as a share of its wall time; "
        "the rest is mostly waiting on PostgreSQL)"
    )
    print()
    floor = max(r["rss_before_mb"] for r in results.values())
    print(
        f"Peak RSS, MB (a phase's process before any work, Django set up: {floor:.0f}); "
        f"flat = grows less than {FLAT_SHARE:.0%} of the file's growth, or under {RSS_NOISE_MB} MB"
    )
    tenth, full = sizes["tenth"], sizes["full"]
    print(
        f"{'phase':<15}{f'{tenth:,} items':>14}{f'{full:,} items':>16}"
        f"{'RSS growth':>12}{'file growth':>13}   flat"
    )
    for phase, _, filename in PHASES:
        small, big = results["tenth", phase], results["full", phase]
        growth = big["rss_mb"] - small["rss_mb"]
        file_growth = (big["file_bytes"] - small["file_bytes"]) / 2**20
        flat = growth < max(FLAT_SHARE * file_growth, RSS_NOISE_MB)
        print(
            f"{phase:<15}{small['rss_mb']:>14.0f}{big['rss_mb']:>16.0f}"
            f"{f'{growth:+.0f} MB':>12}{f'{file_growth:+.0f} MB':>13}   "
            f"{'PASS' if flat else 'MISS'}  ({filename})"
        )
    if tenth < MEANINGFUL_TENTH:
        print(
            f"(with under {MEANINGFUL_TENTH:,} items at a tenth, the import and export batches of "
            "thousands of rows are not yet full, so these growth figures say little)"
        )


def mb(n_bytes):
    return f"{n_bytes / 2**20:,.{0 if n_bytes >= 10 * 2**20 else 1}f} MB"


# A child: one phase, timed, against the real import and export code --------------------


def run_phase(phase, slug, path):
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from annotation.exports import export_study_to_path
    from annotation.imports import import_items, import_labels
    from annotation.models import Study

    if phase == "setup":
        call_command("migrate", verbosity=0)
        for size in ("full", "tenth"):
            Study.objects.create_with_rubric(
                slug=f"bench-{size}", name=f"Bench ({size} size)", rubric=PAIRWISE_RUBRIC
            )
        connection.ensure_connection()
        version = connection.connection.info.parameter_status("server_version")
        emit(server_version=version.split()[0])
        return

    study = Study.objects.get(slug=slug)
    study.rubric_version  # noqa: B018  load it before the clock starts, as a caller would have
    connection.ensure_connection()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu_before = time.process_time()
    started = time.perf_counter()
    if phase == "import-items":
        count = import_items(study, path).created
    elif phase == "import-labels":
        count = import_labels(study, path).created  # one question: a label is one row
    elif phase == "export-csv":
        count = export_study_to_path(study, "csv", path)
    elif phase == "export-jsonl":
        count = export_study_to_path(study, "jsonl", path)
    elif phase == "export-final":
        count = export_study_to_path(study, "csv", path, final=True)
    else:
        raise SystemExit(f"unknown phase {phase!r}")
    seconds = time.perf_counter() - started
    emit(
        count=count,
        seconds=seconds,
        cpu_seconds=time.process_time() - cpu_before,
        rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        rss_before_mb=rss_before,
        file_bytes=Path(path).stat().st_size,
    )


def emit(**figures):
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
