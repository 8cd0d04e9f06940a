"""`make bench`, the calibration report: `build_report` on two 100,000-item studies.

Study A is pairwise: each item has 3 human labels (from a pool of 30 annotators) and the
verdicts of two LLM judges, one order each and a fifth of the items in both orders for
judge-a; one question, `pref`. Study B has the same items and a three-question rubric
(pairwise `pref`, Likert `quality`, a three-row checklist `checks`) that every label answers
in full. The data is realistic enough for every part of the report to have work: responses
of six models and of varied length, judges with position and verbosity bias and a model
family each (self-preference), category and difficulty metadata (the breakdowns). Both
studies are loaded the way a researcher would, with `import_items` and `import_labels`.

For each study it times `build_report` with 1,000 bootstrap resamples and without, each
after clearing the cache, and serving the report page from the cache afterwards (Django's
test client as a researcher of the study, the median of 10 GETs). Beside each figure: the
issue's target (for 100,000 items) and the process's peak RSS during that phase, the
kernel's high-water mark (VmHWM) reset just before it. Nothing is asserted.

It needs a PostgreSQL server, as run.py: a throwaway database on BENCH_DATABASE_URL (default
the local server as user postgres), dropped at the end with the temporary folder.

    .venv/bin/python tests/bench/bench_report.py                 # 100,000 items a study
    .venv/bin/python tests/bench/bench_report.py --items 10000 --only A --profile /tmp/r.prof
"""

import argparse
import cProfile
import csv
import json
import math
import os
import pstats
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path

from run import DEFAULT_SERVER, TARGETS, child_env, create_database, drop_database

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = 1000
PAGE_GETS = 10
HUMANS = tuple(f"annotator{n:02}" for n in range(1, 31))
JUDGES = {"judge-a": "gpt", "judge-b": "claude"}  # name: model family (self-preference)
MODELS = {  # name: strength, from which the hidden true preference follows
    "gpt-4o": 1.0,
    "gpt-4o-mini": 0.3,
    "claude-3-5-sonnet": 0.9,
    "llama-3-70b": 0.2,
    "mistral-large": 0.0,
    "qwen2-72b": -0.2,
}
CATEGORIES = ("math", "code", "writing", "reasoning", "safety", "trivia")
CHECKS = ("answers the question", "avoids factual errors", "follows the format")
PAIRWISE = {"key": "pref", "type": "pairwise", "prompt": "Which is better?", "allow_tie": True}
RUBRICS = {
    "A": {"name": "Pairwise", "questions": [PAIRWISE]},
    "B": {
        "name": "Pairwise, quality and checklist",
        "questions": [
            PAIRWISE,
            {"key": "quality", "type": "likert", "prompt": "How good is A?", "scale": 5},
            {"key": "checks", "type": "checklist", "prompt": "Does A…", "items": list(CHECKS)},
        ],
    },
}
# Targets of the issue, for 100,000 items.
BUILD_TARGET_SECONDS = {"A": 10, "B": 30}
RSS_TARGET_MB = 1024
PAGE_TARGET_MS = 100
LABEL_IMPORT_TARGET = 20_000  # rows/s
ITEM_IMPORT_TARGET = TARGETS["import-items"]  # items/s, as run.py


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--items",
        type=int,
        default=int(os.environ.get("BENCH_ITEMS", 100_000)),
        help="items of each study (default BENCH_ITEMS or 100,000)",
    )
    parser.add_argument("--only", choices=("A", "B"), help="one study only")
    parser.add_argument(
        "--bootstraps",
        default=f"{BOOTSTRAP},0",
        help=f"the resample counts to build the report with, in order (default {BOOTSTRAP},0)",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help=f"then build study A's report (bootstrap {BOOTSTRAP}) under cProfile, write the "
        "stats to PATH and print the 25 functions of most cumulative time",
    )
    args = parser.parse_args()
    studies = [args.only] if args.only else ["A", "B"]
    bootstraps = [int(b) for b in args.bootstraps.split(",")]
    if args.profile and "A" not in studies:
        parser.error("--profile profiles study A")

    server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
    db_name = f"quorum_bench_report_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="quorum-bench-report-"))
    try:
        create_database(server, db_name)
        try:
            os.environ.update(child_env(server, db_name, work))
            bench(args.items, studies, bootstraps, args.profile, work)
        finally:
            from django.db import connections

            connections.close_all()
            drop_database(server, db_name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(n_items, studies, bootstraps, profile_path, work):
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from calibration.reports import build_report

    # The page renders without `collectstatic`, as in the tests; and not under
    # setup_test_environment, whose instrumented template rendering would add to its time.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    override_settings(
        STORAGES={**settings.STORAGES, "staticfiles": plain},
        ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"],
    ).enable()
    call_command("migrate", verbosity=0)
    connection.ensure_connection()
    version = connection.connection.info.parameter_status("server_version").split()[0]

    print(f"Writing {n_items:,} items and their labels to {work} ...", flush=True)
    rows = write_study_files(work, n_items, studies)
    print(
        f"Calibration report bench: {n_items:,} items a study (targets are for 100,000); "
        f"PostgreSQL {version}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}"
    )
    print(f"peak RSS: {PEAK_RSS_SOURCE}; CPU: the process's CPU time as a share of wall time")
    print()
    print(HEADER)
    for name in studies:
        study, researcher = load_study(name, work, rows[name])
        for resamples in bootstraps:
            cache.clear()
            _, t = measured(partial(build_report, study, bootstrap=resamples))
            target = BUILD_TARGET_SECONDS[name] if resamples == BOOTSTRAP else None
            line(
                name,
                f"build_report bootstrap={resamples}",
                None,
                t,
                f"{t.seconds:.1f} s",
                _verdict(t.seconds <= target, f"<= {target} s") if target else "(no target)",
                rss_target=True,
            )
            if resamples == BOOTSTRAP:
                page_from_cache(name, study, researcher)
    if profile_path:
        profile_report(profile_path)


# The data: one items file for both studies, one label file each -------------------------


def write_study_files(work, n_items, studies):
    """Write items.jsonl and labels-A.csv / labels-B.csv; return each label file's row count.

    Each item has a hidden true answer to every question; a human gives it 75% of the time
    and otherwise a random answer; judge-a errs less often but then picks the response shown
    first, judge-b picks the longer one, and both are lenient on the rubric's other questions.
    A fixed seed, so every run imports the same bytes.
    """
    rng = random.Random(n_items)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(3000)
    ]
    sentences = [
        " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize() + "."
        for _ in range(2000)
    ]
    models = list(MODELS)
    rows = dict.fromkeys(studies, 0)
    with ExitStack() as files:
        items = files.enter_context(open(work / "items.jsonl", "w", encoding="utf-8", newline="\n"))
        writers = {
            name: csv.writer(
                files.enter_context(open(work / f"labels-{name}.csv", "w", newline=""))
            )
            for name in studies
        }
        for w in writers.values():
            w.writerow(("item", "rater", "kind", "question", "value", "order", "confidence"))
        for i in range(1, n_items + 1):
            external_id = f"r{i}"
            model_a, model_b = rng.sample(models, 2)
            n_a, n_b = rng.randint(1, 14), rng.randint(1, 14)
            record = {
                "external_id": external_id,
                "prompt": f"Question {i}: " + " ".join(rng.choices(sentences, k=3)),
                "responses": [
                    {"key": "A", "text": " ".join(rng.choices(sentences, k=n_a)), "model": model_a},
                    {"key": "B", "text": " ".join(rng.choices(sentences, k=n_b)), "model": model_b},
                ],
                "metadata": {
                    "category": rng.choice(CATEGORIES),
                    "difficulty": rng.randint(1, 5),
                    "lang": "en",
                },
            }
            items.write(json.dumps(record))
            items.write("\n")
            truth = _true_answers(rng, MODELS[model_a] - MODELS[model_b] + 0.05 * (n_a - n_b))
            longer = "A" if n_a > n_b else "B" if n_b > n_a else rng.choice("AB")
            labels = [
                (h, "human", rng.choice(("AB", "BA")), _human(rng, truth), "")
                for h in rng.sample(HUMANS, 3)
            ]
            orders = ("AB", "BA") if rng.random() < 0.2 else (rng.choice(("AB", "BA")),)
            for order in orders:
                labels.append(("judge-a", "llm", order, *_judge(rng, truth, 0.8, order[0])))
            labels.append(
                ("judge-b", "llm", rng.choice(("AB", "BA")), *_judge(rng, truth, 0.7, longer))
            )
            for name, w in writers.items():
                for rater, kind, order, answers, confidence in labels:
                    cells = ["pref"] if name == "A" else answers
                    for cell in cells:
                        w.writerow(
                            (external_id, rater, kind, cell, answers[cell], order, confidence)
                        )
                    rows[name] += len(cells)
    return rows


def _true_answers(rng, advantage):
    """The hidden answer of every question: pref from the models' strengths and lengths."""
    if rng.random() < 0.15:
        pref = "tie"
    else:
        pref = "A" if rng.random() < 1 / (1 + math.exp(-advantage)) else "B"
    truth = {"pref": pref, "quality": rng.choices(range(1, 6), weights=(1, 2, 4, 5, 3))[0]}
    for k in range(len(CHECKS)):
        truth[f"checks[{k}]"] = "yes" if rng.random() < 0.7 else "no"
    return truth


def _human(rng, truth):
    return {
        cell: value if rng.random() < 0.75 else _random_answer(rng, cell)
        for cell, value in truth.items()
    }


def _judge(rng, truth, accuracy, fallback):
    """A judge's answers and confidence: the truth at `accuracy`, else `fallback` for pref,
    one point more for quality and "yes" for a check (leniency)."""
    right = rng.random() < accuracy
    answers = dict(truth)
    if not right:
        answers["pref"] = fallback
        answers["quality"] = min(truth["quality"] + 1, 5)
        answers.update({cell: "yes" for cell in truth if cell.startswith("checks[")})
    confidence = round(rng.uniform(0.6, 1.0) if right else rng.uniform(0.4, 0.9), 2)
    return answers, confidence


def _random_answer(rng, cell):
    if cell == "pref":
        return rng.choice(("A", "B", "tie"))
    if cell == "quality":
        return rng.randint(1, 5)
    return rng.choice(("yes", "no"))


def load_study(name, work, n_rows):
    """Create the study, import its items and labels (timed), give the judges their model
    families and the study a researcher."""
    from django.contrib.auth.models import User

    from annotation.imports import import_items, import_labels
    from annotation.models import Rater, Study, StudyMembership

    study = Study.objects.create_with_rubric(
        slug=f"bench-{name.lower()}", name=f"Report bench {name}", rubric=RUBRICS[name]
    )
    study.rubric_version  # noqa: B018  loaded before the clock starts, as a caller would have
    imported, t = measured(lambda: import_items(study, work / "items.jsonl").created)
    rate = imported / t.seconds
    line(
        name,
        "import_items",
        imported,
        t,
        f"{rate:,.0f} items/s",
        _verdict(rate >= ITEM_IMPORT_TARGET, f">= {ITEM_IMPORT_TARGET:,} items/s"),
    )
    labels, t = measured(lambda: import_labels(study, work / f"labels-{name}.csv").created)
    rate = n_rows / t.seconds
    line(
        name,
        f"import_labels ({labels:,} labels)",
        n_rows,
        t,
        f"{rate:,.0f} rows/s",
        _verdict(rate >= LABEL_IMPORT_TARGET, f">= {LABEL_IMPORT_TARGET:,} rows/s"),
    )
    for judge, family in JUDGES.items():
        Rater.objects.filter(kind=Rater.Kind.LLM, name=judge).update(family=family)
    researcher, _ = User.objects.get_or_create(username="researcher")
    StudyMembership.objects.create(
        study=study, user=researcher, role=StudyMembership.Role.RESEARCHER
    )
    return study, researcher


# Measuring ------------------------------------------------------------------------------


class Timing:
    """Wall seconds of a phase, its CPU time as a share of them, the peak RSS meanwhile."""

    def __init__(self, seconds, cpu_seconds, peak_mb):
        self.seconds, self.cpu_share, self.peak_mb = seconds, cpu_seconds / seconds, peak_mb


def _reset_peak_rss():
    """Linux resets a process's peak RSS (VmHWM) to its current RSS on "5" in clear_refs."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


PEAK_RSS_SOURCE = (
    "the process's VmHWM, reset before each phase"
    if _reset_peak_rss()
    else "the process's ru_maxrss, its high-water mark since it started (no reset here)"
)


def measured(call):
    """`call()`'s result and its Timing."""
    _reset_peak_rss()
    cpu, started = time.process_time(), time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    return result, Timing(seconds, time.process_time() - cpu, _peak_rss_mb())


def _peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for text in f:
                if text.startswith("VmHWM:"):
                    return int(text.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def page_from_cache(name, study, researcher):
    """The page of a built report, as a researcher: the median of PAGE_GETS GETs."""
    from django.test import Client

    client = Client()
    client.force_login(researcher)
    url = f"/studies/{study.slug}/report/"

    def get_all():
        rounds = []
        for _ in range(PAGE_GETS):
            started = time.perf_counter()
            response = client.get(url)
            rounds.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:  # 202 is the "being built" page: a cache miss
                raise SystemExit(f"GET {url} answered {response.status_code}, not the report")
        return rounds, len(response.content)

    (rounds, size), t = measured(get_all)
    median = statistics.median(rounds)
    line(
        name,
        f"report page ({size / 2**20:.1f} MB)",
        PAGE_GETS,
        t,
        f"median {median:.0f} ms, max {max(rounds):.0f}",
        _verdict(median <= PAGE_TARGET_MS, f"<= {PAGE_TARGET_MS} ms"),
    )


def profile_report(path):
    from django.core.cache import cache

    from annotation.models import Study
    from calibration.reports import build_report

    study = Study.objects.get(slug="bench-a")
    cache.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(build_report, study, bootstrap=BOOTSTRAP)
    seconds = time.perf_counter() - started
    profiler.dump_stats(path)
    print()
    print(f"Study A, build_report bootstrap={BOOTSTRAP} under cProfile: {seconds:.1f} s ({path})")
    pstats.Stats(path).sort_stats("cumulative").print_stats(25)


HEADER = (
    f"{'study':<6}{'phase':<32}{'count':>10}{'seconds':>9}{'CPU':>6}{'peak RSS':>10}"
    f"{'figure':>26}   target"
)


def line(study, phase, count, t, figure, mark, rss_target=False):
    if rss_target:
        mark += "; RSS " + _verdict(t.peak_mb <= RSS_TARGET_MB, f"<= {RSS_TARGET_MB:,} MB")
    count = f"{count:,}" if count is not None else ""
    print(
        f"{study:<6}{phase:<32}{count:>10}{t.seconds:>9.1f}{t.cpu_share:>6.0%}"
        f"{f'{t.peak_mb:,.0f} MB':>10}{figure:>26}   {mark}",
        flush=True,
    )


def _verdict(ok, target):
    return f"{target} {'PASS' if ok else 'MISS'}"


if __name__ == "__main__":
    main()
