"""Requests the API cannot use get a 4xx in JSON, never a 500 or the site's HTML page."""

import pytest
from conftest import make_user
from rest_framework.test import APIClient
from test_api import api_for
from test_judge_api import JUDGE_FIELDS

from annotation.models import StudyMembership
from judging.models import Judge

pytestmark = pytest.mark.django_db
DEEP = "[" * 100_000


@pytest.fixture
def dan(study):
    return make_user("dan", StudyMembership.Role.RESEARCHER, study)


@pytest.mark.parametrize(
    "url", ["/api/studies/s1/judge-runs/estimate/", "/api/studies/s1/judge-templates/likert/"]
)
@pytest.mark.parametrize("body", [DEEP, "[" * 33 + "]" * 33])
def test_it_refuses_deeply_nested_json(dan, url, body):
    response = api_for(dan).generic(
        "PUT" if "templates" in url else "POST", url, body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested more than 32 levels deep" in response.json()["detail"]


def test_it_still_reads_json_nested_within_the_limit(dan):
    body = '{"judge": "ghost", "questions": ' + "[" * 31 + "]" * 31 + "}"
    response = api_for(dan).generic(
        "POST", "/api/studies/s1/judge-runs/estimate/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "judge" in response.json()  # parsed, then refused for what it says


@pytest.mark.parametrize(
    "url",
    [
        "/api/studies/",
        "/api/studies/s1/items/",
        "/api/studies/s1/judge-runs/",
        "/api/studies/s1/judge-runs/estimate/",
        "/api/studies/s1/judge-templates/",
        "/api/studies/s1/judge-templates/likert/",
        "/api/studies/s1/judge-templates/nope/",
    ],
)
def test_it_answers_options(dan, url):
    assert api_for(dan).options(url).status_code == 200


def test_an_unknown_api_url_is_a_json_404(dan):
    client = api_for(dan)
    for url in ["/api/judges/null,null/", "/api/studies/a%0Ab/", "/api/nothing-here/"]:
        response = client.get(url)
        assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert APIClient().get("/api/nothing-here/").status_code == 401


def test_it_takes_only_the_json_types_the_schema_documents(dan):
    superuser = api_for(dan.__class__.objects.create_superuser("root"))
    for field, value in [
        ("name", 5),
        ("max_tokens", "5"),
        ("temperature", "0.5"),
        ("price_per_1k_input", 0.5),
        ("price_per_1k_input", "-1"),
        ("price_per_1k_input", "1e2"),
    ]:
        response = superuser.post("/api/judges/", {**JUDGE_FIELDS, field: value}, format="json")
        assert response.status_code == 400, (field, value)
        assert list(response.json()) == [field]
    Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    both_orders = api_for(dan).post(
        "/api/studies/s1/judge-runs/estimate/", {"judge": "stub", "both_orders": 0}, format="json"
    )
    assert both_orders.status_code == 400 and list(both_orders.json()) == ["both_orders"]
