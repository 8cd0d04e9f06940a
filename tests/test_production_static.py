"""DEBUG off: static files come from `collectstatic`, and a deployment that skipped it says so.

Without the manifest that `collectstatic` writes, every page would be a 500; instead the web
server refuses to start and `check --deploy` fails, both naming the command to run. Each test
is a fresh production process with var/ (and so STATIC_ROOT) in an empty folder.
"""

import os
import re
import subprocess
import sys
import time

import httpx
from conftest import REPO, free_port


def production_env(var_dir):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")
    }
    # Plain-HTTP cookies: the test talks to the server without a TLS proxy in front.
    env.update(QUORUM_VAR_DIR=str(var_dir), DEBUG="0", SECURE_COOKIES="0", PYTHONUNBUFFERED="1")
    return env


def manage(var_dir, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=production_env(var_dir),
        capture_output=True,
        text=True,
        check=False,
    )


def uvicorn(port):
    return [sys.executable, "-m", "uvicorn", "quorum.asgi:application", "--port", str(port)]


def test_it_refuses_to_start_the_web_server_without_collectstatic(tmp_path):
    server = subprocess.run(
        uvicorn(free_port()),
        cwd=REPO,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert server.returncode != 0
    assert "run `python manage.py collectstatic --noinput`" in server.stderr


def test_it_fails_the_deploy_check_without_collectstatic(tmp_path):
    checked = manage(tmp_path, "check", "--deploy")
    assert checked.returncode != 0
    assert "(quorum.E001)" in checked.stderr
    assert "collectstatic" in checked.stderr


def test_it_lets_migrate_and_collectstatic_run_before_any_static_files_exist(tmp_path):
    """The release step runs both, in that order, on an empty STATIC_ROOT."""
    assert manage(tmp_path, "migrate", "--noinput").returncode == 0
    collected = manage(tmp_path, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()


def test_it_serves_pages_and_their_hashed_static_files_after_collectstatic(tmp_path):
    assert manage(tmp_path, "collectstatic", "--noinput").returncode == 0
    assert "quorum.E001" not in manage(tmp_path, "check", "--deploy").stderr
    port = free_port()
    server = subprocess.Popen(
        uvicorn(port),
        cwd=REPO,
        env=production_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        page = get_when_up(f"http://127.0.0.1:{port}/login/")
        assert page.status_code == 200
        css = re.search(r'href="(/static/css/quorum\.[0-9a-f]{12}\.css)"', page.text)[1]
        sheet = httpx.get(f"http://127.0.0.1:{port}{css}")
        assert sheet.status_code == 200 and "--accent" in sheet.text
    finally:
        server.terminate()
        server.communicate(timeout=30)


def get_when_up(url):
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
