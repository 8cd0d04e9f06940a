"""`make bench`, the data browser: page 1 against page 2,000 of a 100,000-item study.

The items list pages by keyset (`?after=<position>`), so its last page should cost what its
first does. This times both through the whole view (the access check, the filters, the page
query, the template) with Django's test client, and the page query alone, unfiltered and
with a filter (`gold=no`); beside them, what the same page costs by OFFSET, the way keyset
paging avoids. Nothing is asserted: the figures are printed, the median of --repeat rounds.

The study lives in a throwaway database: on the PostgreSQL server of BENCH_DATABASE_URL
(default the local one, as run.py), or with --sqlite in a temporary SQLite file.

    .venv/bin/python tests/bench/bench_browse.py            # 100,000 items on PostgreSQL
    .venv/bin/python tests/bench/bench_browse.py --sqlite --items 20000
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from run import DEFAULT_SERVER, PAIRWISE_RUBRIC, create_database, database_url, drop_database

REPO = Path(__file__).resolve().parents[2]
BATCH = 5000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=int(os.environ.get("BENCH_ITEMS", 100_000)))
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file instead")
    args = parser.parse_args()
    os.environ.update(DEBUG="0", SECRET_KEY="bench-only", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quorum.settings")
    with tempfile.TemporaryDirectory(prefix="quorum-bench-browse-") as work:
        os.environ["QUORUM_VAR_DIR"] = work
        if args.sqlite:
            os.environ["DATABASE_URL"] = f"sqlite:///{work}/bench.sqlite3"
            run(args)
            return
        server = os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER)
        name = f"quorum_bench_browse_{os.getpid()}"
        create_database(server, name)
        try:
            os.environ["DATABASE_URL"] = database_url(server, name)
            run(args)
        finally:
            from django.db import connections

            connections.close_all()
            drop_database(server, name)


def run(args):
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()  # the test client's host, "testserver", is allowed
    # Pages render without `collectstatic`, as in the tests: the manifest is for production.
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}).enable()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    study, user = build(args.items)
    with connection.cursor() as cursor:
        # A live database has statistics (autovacuum's); without them PostgreSQL reads a
        # filtered late page through the wrong index.
        cursor.execute("ANALYZE")
    print(
        f"Data browser on {connection.vendor} ({connection.settings_dict['NAME']}): "
        f"{args.items:,} items built in {time.perf_counter() - started:.1f}s"
    )
    measure(study, user, args.items, args.repeat)


def build(n_items):
    """A study of `n_items` pairwise items, positions 1..n, every 7th one gold."""
    from django.contrib.auth.models import User

    from annotation.models import Item, Study, StudyMembership

    study = Study.objects.create_with_rubric(slug="bench", name="bench", rubric=PAIRWISE_RUBRIC)
    user = User.objects.create_user("researcher")
    StudyMembership.objects.create(study=study, user=user, role=StudyMembership.Role.RESEARCHER)
    text = "A response of a few sentences, about as long as a short answer would be. " * 4
    for start in range(1, n_items + 1, BATCH):
        Item.objects.bulk_create(
            Item(
                study=study,
                external_id=f"b{i}",
                position=i,
                prompt=f"Question {i}: " + "what would a careful answer say here? " * 5,
                responses=[{"key": "A", "text": text}, {"key": "B", "text": text}],
                metadata={"category": ("maths", "code", "prose")[i % 3]},
                is_gold=i % 7 == 0,
                human_labels=i % 4,
            )
            for i in range(start, min(start + BATCH, n_items + 1))
        )
    return study, user


def measure(study, user, n_items, repeat):
    from django.test import Client

    from annotation.browsing import PAGE_SIZE, ItemFilters

    client = Client()
    client.force_login(user)
    last_page = max(n_items // PAGE_SIZE, 1)
    late = (last_page - 1) * PAGE_SIZE  # the cursor of the last page
    pages = {"page 1": "", f"page {last_page:,}": f"?after={late}"}

    def view(query):
        response = client.get(f"/studies/{study.slug}/items/{query}")
        assert response.status_code == 200, response.status_code

    def page_query(data):
        form = ItemFilters(data)
        assert form.is_valid(), form.errors
        return len(form.page(form.items(study), "position").rows)

    def by_offset(offset):
        form = ItemFilters({})
        assert form.is_valid()
        return len(list(form.items(study).order_by("position")[offset : offset + PAGE_SIZE]))

    print(f"median of {repeat} rounds, milliseconds; {PAGE_SIZE} items a page")
    print(f"{'':<34}" + "".join(f"{name:>14}" for name in pages))
    rows = {
        "whole request (view + template)": view,
        "page query": lambda q: page_query(_params(q)),
        "page query, gold=no": lambda q: page_query({**_params(q), "gold": "no"}),
        "by OFFSET instead (for contrast)": lambda q: by_offset(int(_params(q).get("after", 0))),
    }
    for name, call in rows.items():
        figures = [timed(call, query, repeat) for query in pages.values()]
        print(f"{name:<34}" + "".join(f"{ms:>14.2f}" for ms in figures))


def _params(query):
    return dict(part.split("=", 1) for part in query.lstrip("?").split("&") if part)


def timed(call, query, repeat):
    call(query)  # warm: the first round reads the pages from disk
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call(query)
        rounds.append((time.perf_counter() - started) * 1000)
    return statistics.median(rounds)


if __name__ == "__main__":
    main()
