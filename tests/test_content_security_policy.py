"""Every page carries a strict Content-Security-Policy: our own scripts and styles only.

Whether the pages still work under it is for the browser (test_csp_browser.py); this checks
that each kind of page, the admin's and the error pages too, sends the policy.
"""

import pytest
from conftest import make_study, make_user

from annotation.models import Study, StudyMembership
from judging.models import Judge

pytestmark = pytest.mark.django_db


def policy(response):
    """The header as {directive: [sources]}."""
    directives = (d.split() for d in response["Content-Security-Policy"].split(";"))
    return {name: sources for name, *sources in directives}


@pytest.fixture
def alice():
    """The study's admin, and site staff for the admin pages."""
    study = make_study(slug="s1", status=Study.Status.OPEN)
    user = make_user("alice", StudyMembership.Role.ADMIN, study)
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def test_it_sends_the_policy_on_every_kind_of_page(client, alice):
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    assert "Content-Security-Policy" in client.get("/login/")
    client.force_login(alice)
    pages = [
        "/",
        "/studies/s1/",
        "/s/s1/label/",
        "/s/s1/done/",
        "/studies/s1/report/",
        "/studies/s1/judge-runs/estimate/?judge=stub&questions=pref",
        "/admin/",
        f"/admin/judging/judge/{judge.pk}/change/",
        "/studies/no-such-study/",
    ]
    for url in pages:
        response = client.get(url, follow=True)
        assert response["Content-Type"].startswith("text/html"), url
        assert policy(response) == {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "img-src": ["'self'", "data:"],
            "connect-src": ["'self'"],
            "object-src": ["'none'"],
            "base-uri": ["'self'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
        }, url
