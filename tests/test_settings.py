"""The one settings file: embedded defaults, environment overrides, production safety."""

import json
import os
import re
import stat
import subprocess
import sys

from conftest import REPO


def run_python(code, tmp_path, **env):
    """Load the settings in a fresh interpreter, with var/ in tmp_path and the given env."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")
    }
    base.update(QUORUM_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="quorum.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=base,
        capture_output=True,
        text=True,
        check=False,
    )


SHOW = """
import json
import os
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({"engine": db["ENGINE"], "name": str(db["NAME"]),
                  "broker": settings.CELERY_BROKER_URL,
                  "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
                  "secret": settings.SECRET_KEY, "debug": settings.DEBUG,
                  "secure_cookies": settings.SESSION_COOKIE_SECURE,
                  "csrf_secure": settings.CSRF_COOKIE_SECURE,
                  "pool": db.get("OPTIONS", {}).get("pool"),
                  "hosts": settings.ALLOWED_HOSTS}))
"""


def test_it_runs_embedded_with_no_environment(tmp_path):
    out = run_python(SHOW, tmp_path)
    shown = json.loads(out.stdout)
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["name"] == str(tmp_path / "quorum.sqlite3")
    assert shown["broker"] == "filesystem://"
    assert shown["layer"] == "channels.layers.InMemoryChannelLayer"
    assert shown["debug"] is False and shown["secure_cookies"] is True


def test_it_takes_postgres_and_redis_from_the_environment(tmp_path):
    out = run_python(
        SHOW,
        tmp_path,
        DATABASE_URL="postgres://u@db.example:5433/q",
        REDIS_URL="redis://cache.example:6379/2",
        ALLOWED_HOSTS="q.example, x.y",
    )
    shown = json.loads(out.stdout)
    assert shown["engine"] == "django.db.backends.postgresql"
    assert shown["name"] == "q"
    assert shown["broker"] == "redis://cache.example:6379/2"
    assert shown["layer"] == "channels_redis.core.RedisChannelLayer"
    assert shown["hosts"] == ["q.example", "x.y"]
    assert shown["pool"]["max_size"] == 10  # each request runs in a thread of its own


def test_it_pools_no_connections_when_told_or_when_it_keeps_them(tmp_path):
    url = "postgres://u@db.example:5433/q"
    assert (
        json.loads(run_python(SHOW, tmp_path, DATABASE_URL=url, DB_POOL_SIZE="0").stdout)["pool"]
        is None
    )
    kept = run_python(SHOW, tmp_path, DATABASE_URL=url, DB_CONN_MAX_AGE="60")
    assert json.loads(kept.stdout)["pool"] is None


def test_cookies_can_travel_over_plain_http_only_when_asked(tmp_path):
    plain = json.loads(run_python(SHOW, tmp_path, SECURE_COOKIES="0").stdout)
    assert (plain["debug"], plain["secure_cookies"], plain["csrf_secure"]) == (False, False, False)
    dev = json.loads(run_python(SHOW, tmp_path, DEBUG="1").stdout)
    assert (dev["secure_cookies"], dev["csrf_secure"]) == (False, False)


def test_it_generates_a_secret_key_once_and_keeps_it_private(tmp_path):
    first = json.loads(run_python(SHOW, tmp_path).stdout)["secret"]
    second = json.loads(run_python(SHOW, tmp_path).stdout)["secret"]
    assert first == second and len(first) >= 50
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_it_prefers_the_secret_key_from_the_environment(tmp_path):
    shown = json.loads(run_python(SHOW, tmp_path, SECRET_KEY="k" * 60).stdout)
    assert shown["secret"] == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_it_passes_the_deploy_check_but_for_the_proxys_https_settings(tmp_path):
    code = (
        "import django, sys; django.setup();"
        "from django.core.management import call_command;"
        "call_command('collectstatic', '--noinput', verbosity=0);"
        "call_command('check', '--deploy')"
    )
    out = run_python(code, tmp_path, DEBUG="0")
    reported = set(re.findall(r"\((\w+\.[WE]\d+)\)", out.stdout + out.stderr))
    # W004 (HSTS) and W008 (SSL redirect) depend on the HTTPS proxy in front of Quorum.
    assert reported <= {"security.W004", "security.W008"}, out.stdout + out.stderr
    assert "System check identified" in out.stdout + out.stderr
