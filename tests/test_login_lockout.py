"""Wrong passwords lock one account out from one address (django-axes), with a page that says
so and an admin unlock: 40 wrong passwords in 15 s must not end with the right one logging in."""

import re
from datetime import timedelta

import httpx
import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

PASSWORD = "pw-for-tests-only"
LIMIT = settings.AXES_FAILURE_LIMIT
LOCKED = "Too many failed logins for this account from your address"


@pytest.fixture
def dana(db):
    return User.objects.create_user("dana", email="Dana@example.org", password=PASSWORD)


@pytest.fixture
def browser():
    """A test client that, like a browser, must send the login form's CSRF token."""
    return Client(enforce_csrf_checks=True)


def log_in(client, login, password, address="127.0.0.1"):
    """Post the login form as a browser at `address` does: the page first, then the form."""
    client.get("/login/", REMOTE_ADDR=address)
    token = client.cookies["csrftoken"].value
    return client.post(
        "/login/",
        {"username": login, "password": password, "csrfmiddlewaretoken": token},
        REMOTE_ADDR=address,
    )


def fail(client, login, times, address="127.0.0.1"):
    for _ in range(times):
        log_in(client, login, "wrong", address)


def logged_in(client):
    return "_auth_user_id" in client.session


def test_it_refuses_the_right_password_after_the_limit_with_the_lockout_page(
    browser, dana, settings
):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    fail(browser, "dana", 40)

    reply = log_in(browser, "dana", PASSWORD)

    assert reply.status_code == 429
    page = reply.content.decode()
    assert f"{LOCKED}; try again in 15 minutes or ask an admin to unlock it." in page
    assert not logged_in(browser)


def test_it_shows_the_login_error_until_the_limit_is_reached(browser, dana):
    replies = [log_in(browser, "dana", "wrong") for _ in range(LIMIT)]

    assert [r.status_code for r in replies] == [200] * (LIMIT - 1) + [429]
    assert "did not match" in replies[-2].content.decode()
    assert LOCKED in replies[-1].content.decode()


def test_it_counts_a_user_name_and_every_spelling_of_its_email_as_one_account(browser, dana):
    spellings = ["dana", "Dana@example.org", "DANA@EXAMPLE.ORG", "dana@example.ORG"]
    for i in range(LIMIT):
        log_in(browser, spellings[i % len(spellings)], "wrong")

    reply = log_in(browser, "dana@example.org", PASSWORD)

    assert reply.status_code == 429
    assert not logged_in(browser)


def test_it_lets_another_user_log_in_from_the_same_address(browser, dana):
    User.objects.create_user("eve", password=PASSWORD)
    fail(browser, "dana", LIMIT)

    reply = log_in(browser, "eve", PASSWORD)

    assert reply.status_code == 302
    assert logged_in(browser)


def test_it_lets_the_same_user_log_in_from_another_address(browser, dana):
    fail(browser, "dana", LIMIT, address="198.51.100.7")

    reply = log_in(browser, "dana", PASSWORD, address="203.0.113.20")

    assert reply.status_code == 302
    assert logged_in(browser)


def test_it_lets_the_user_in_once_an_admin_deletes_the_attempt(browser, dana, admin_client):
    fail(browser, "dana", LIMIT)
    attempt = AccessAttempt.objects.get(username="dana")
    listed = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert "dana" in listed.content.decode()

    admin_client.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert log_in(browser, "dana", PASSWORD).status_code == 302
    assert logged_in(browser)


def test_it_lets_the_user_in_once_an_admin_resets_the_user_name(browser, dana, capsys):
    fail(browser, "dana", LIMIT)

    call_command("axes_reset_username", "dana")

    assert "1 attempts removed" in capsys.readouterr().out
    assert log_in(browser, "dana", PASSWORD).status_code == 302


def test_it_forgets_earlier_failures_after_a_successful_login(browser, dana):
    fail(browser, "dana", LIMIT - 1)
    assert log_in(browser, "dana", PASSWORD).status_code == 302
    browser.post("/logout/", {"csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    fail(browser, "dana", LIMIT - 1)

    reply = log_in(browser, "dana", PASSWORD)

    assert reply.status_code == 302
    assert logged_in(browser)


def test_it_sends_the_user_to_an_admin_when_lockouts_never_expire(browser, dana, settings):
    settings.AXES_COOLOFF_TIME = None
    fail(browser, "dana", LIMIT)

    reply = log_in(browser, "dana", PASSWORD)

    assert reply.status_code == 429
    page = reply.content.decode()
    assert f"{LOCKED}; ask an admin to unlock it." in page
    assert "try again" not in page


def served_log_in(client, login, password, forwarded_for):
    """The login form through the served app, from behind a proxy that says who the client is."""
    page = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    return client.post(
        "/login/",
        data={"username": login, "password": password, "csrfmiddlewaretoken": token},
        headers={"X-Forwarded-For": forwarded_for},
    )


@pytest.fixture
def no_trusted_proxy(transactional_db, monkeypatch):
    """uvicorn, started after this, trusts no proxy's X-Forwarded-For, not even a local one."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")


def test_it_locks_out_by_the_address_a_trusted_proxy_forwards(asgi_server):
    """uvicorn trusts a proxy on the same host by default (FORWARDED_ALLOW_IPS)."""
    User.objects.create_user("dana", password=PASSWORD)
    with httpx.Client(base_url=asgi_server) as client:
        for _ in range(LIMIT):
            served_log_in(client, "dana", "wrong", forwarded_for="198.51.100.7")

        locked = served_log_in(client, "dana", PASSWORD, forwarded_for="198.51.100.7")
        elsewhere = served_log_in(client, "dana", PASSWORD, forwarded_for="203.0.113.20")

    assert locked.status_code == 429
    assert LOCKED in locked.text
    assert elsewhere.status_code == 302


def test_it_ignores_a_forwarded_address_from_an_untrusted_peer(no_trusted_proxy, asgi_server):
    User.objects.create_user("dana", password=PASSWORD)
    with httpx.Client(base_url=asgi_server) as client:
        for _ in range(LIMIT):
            served_log_in(client, "dana", "wrong", forwarded_for="198.51.100.7")

        spoofed = served_log_in(client, "dana", PASSWORD, forwarded_for="203.0.113.20")

    assert spoofed.status_code == 429
    assert LOCKED in spoofed.text
