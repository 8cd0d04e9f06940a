"""Staff log in at /login/ with their user name or their email address, and a password."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"


@pytest.fixture
def dana(db):
    return User.objects.create_user("dana", email="Dana@example.org", password=PASSWORD)


def log_in(client, login, password=PASSWORD):
    return client.post("/login/", {"username": login, "password": password})


@pytest.mark.parametrize("login", ["dana", "Dana@example.org", "dana@EXAMPLE.org"])
def test_staff_log_in_with_their_user_name_or_email(client, dana, login):
    reply = log_in(client, login)

    assert reply.status_code == 302
    assert int(client.session["_auth_user_id"]) == dana.pk


@pytest.mark.parametrize(
    "login, password",
    [
        ("dana@example.org", "wrong"),
        ("nobody@example.org", PASSWORD),
        ("shared@example.org", PASSWORD),  # two users' address
    ],
)
def test_a_login_that_names_no_one_user_is_refused(client, dana, login, password):
    for name in ("sam", "sue"):
        User.objects.create_user(name, email="shared@example.org", password=PASSWORD)

    reply = log_in(client, login, password)

    assert reply.status_code == 200
    assert "did not match" in reply.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_user_name_that_looks_like_an_email_is_a_user_name_first(client, dana):
    named = User.objects.create_user("Dana@example.org", password="another-password-1")

    log_in(client, "Dana@example.org", "another-password-1")

    assert int(client.session["_auth_user_id"]) == named.pk
