"""Static files under ASGI, and a middleware chain that crosses to a thread once a request."""

import asyncio

import pytest
from django.conf import settings
from django.test import AsyncClient, Client
from django.utils.module_loading import import_string

from quorum.staticfiles import StaticFilesMiddleware


def test_every_middleware_can_run_in_the_async_chain():
    """One sync-only middleware would add two thread crossings to every request."""
    sync_only = [
        path
        for path in settings.MIDDLEWARE
        if not getattr(import_string(path), "async_capable", False)
    ]
    assert sync_only == []


@pytest.fixture
def served(settings, tmp_path):
    """WhiteNoise's production mode: files indexed once, at start, from STATIC_ROOT."""
    (tmp_path / "hello.txt").write_text("hello, annotators")
    settings.STATIC_ROOT = tmp_path
    settings.WHITENOISE_AUTOREFRESH = False
    settings.WHITENOISE_USE_FINDERS = False
    return tmp_path


def test_it_serves_a_static_file_under_asgi(served):
    async def fetch():
        return await AsyncClient().get("/static/hello.txt")

    response = async_run(fetch)

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"hello, annotators"


def test_it_passes_other_requests_on_under_asgi_and_wsgi(served):
    async def fetch():
        return await AsyncClient().get("/login/")

    assert async_run(fetch).status_code == 200
    assert Client().get("/login/").status_code == 200
    assert Client().get("/static/hello.txt").status_code == 200


def test_it_runs_in_the_mode_of_the_chain_it_is_given():
    async def downstream(request):
        return None

    assert StaticFilesMiddleware(downstream).async_mode
    assert not StaticFilesMiddleware(lambda request: None).async_mode


def async_run(fetch):
    return asyncio.run(fetch())
