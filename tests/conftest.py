"""Shared personas and builders: alice the admin, bob the annotator, carol the expert."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from django.db import connections

from annotation.models import Study, StudyMembership
from quorum.celery import app as celery_app

DEMO_DIR = Path(__file__).resolve().parent.parent / "annotation" / "demo"

PAIRWISE_RUBRIC = {
    "name": "Pairwise",
    "questions": [
        {"key": "pref", "type": "pairwise", "prompt": "Which is better?", "allow_tie": True},
        {"key": "why", "type": "text", "required": False},
    ],
}


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Templates render without `collectstatic`: the manifest storage is for production."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def make_study(slug="s1", rubric=None, **fields):
    return Study.objects.create_with_rubric(
        slug=slug, name=fields.pop("name", slug), rubric=rubric or PAIRWISE_RUBRIC, **fields
    )


def make_user(username, role=None, study=None, password="pw-for-tests-only"):
    user = User.objects.create_user(username=username, password=password)
    if role:
        StudyMembership.objects.create(study=study, user=user, role=role)
    return user


def demo_rubric():
    return json.loads((DEMO_DIR / "rubric.json").read_text(encoding="utf-8"))


@pytest.fixture
def eager_tasks():
    """Celery tasks run at once, in the test's process (routing after labels, say)."""
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    celery_app.conf.update(task_always_eager=False, task_eager_propagates=False)


@pytest.fixture
def study(db):
    return make_study()


@pytest.fixture
def alice(study):
    return make_user("alice", StudyMembership.Role.ADMIN, study)


@pytest.fixture
def bob(study):
    return make_user("bob", StudyMembership.Role.ANNOTATOR, study)


@pytest.fixture
def carol(study):
    return make_user("carol", StudyMembership.Role.EXPERT, study)


@pytest.fixture
def write(tmp_path):
    """Write text (or bytes) to a file under tmp_path, returning its path."""

    def _write(name, content):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return _write


REPO = Path(__file__).resolve().parent.parent


def subprocess_env(**extra):
    """Environment for a manage.py / celery / uvicorn subprocess that uses the test database.

    Only meaningful inside `django_db(transaction=True)` tests, whose writes are committed.
    """
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db, tmp_path_factory):
    """The ASGI app under uvicorn on a free loopback port, on the test database; its URL.

    Its output goes to a file: a pipe that nobody reads fills up (Django logs every 4xx under
    DEBUG), and the server then stops answering."""
    env = subprocess_env(DEBUG="1")
    port = free_port()
    with open(tmp_path_factory.mktemp("asgi-server") / "server.log", "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "quorum.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/login/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    yield base
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def demo_server(asgi_server):
    """`make run` in miniature: load_demo, then the server. Its URL and load_demo's output
    (the demo logins)."""
    loaded = subprocess.run(
        [sys.executable, "manage.py", "load_demo"],
        cwd=REPO,
        env=subprocess_env(DEBUG="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    return asgi_server, loaded.stdout


def demo_password(output, username):
    return re.search(rf"{username} / (\S+)", output)[1]


def login(base, output, username):
    """An httpx client logged in through the login form as a printed demo account."""
    client = httpx.Client(base_url=base, follow_redirects=True)
    page = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    client.post(
        "/login/",
        data={
            "username": username,
            "password": demo_password(output, username),
            "csrfmiddlewaretoken": token,
        },
    )
    return client


CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is not used
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "var" / "screenshots"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A browser test's own ORM calls run while Playwright's loop is on the thread and get
    connections of their own: closed here, or the test database could not be dropped."""
    try:
        return (yield)
    finally:
        if "page" in item.fixturenames:
            connections.close_all()


@pytest.fixture
def page(monkeypatch):
    """A Chromium page at 1280x800; script errors on the page fail the test."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM
    # calls are still plain synchronous code, as Playwright's Django guide explains.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
        yield page
        browser.close()
    assert errors == []
