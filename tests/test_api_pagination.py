"""API pages: at most 1,000 results however many are asked for, and a 400 for a page size
or offset that is not a whole number in range."""

import pytest
from conftest import make_user
from test_api import api_for

from annotation.models import Item, StudyMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(study):
    Item.objects.bulk_create(
        Item(study=study, external_id=f"q{i}", position=i, prompt="p", responses=[])
        for i in range(1001)
    )
    return api_for(make_user("dan", StudyMembership.Role.RESEARCHER, study))


def test_it_serves_a_page_larger_than_the_cap_at_the_cap(client):
    body = client.get("/api/studies/s1/items/?limit=100000000").json()
    assert (body["count"], len(body["results"])) == (1001, 1000)
    assert "limit=1000" in body["next"] and "offset=1000" in body["next"]


def test_it_keeps_the_default_page_and_an_asked_one_within_the_cap(client):
    assert len(client.get("/api/studies/s1/items/").json()["results"]) == 100
    page = client.get("/api/studies/s1/items/?limit=2&offset=1000").json()
    assert [i["external_id"] for i in page["results"]] == ["q1000"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=-1",
        "limit=0",
        "limit=",
        "limit=abc",
        "limit=1.5",
        "limit=%C2%B2",
        "offset=-1",
        "offset=",
    ],
)
def test_it_refuses_a_limit_or_offset_that_is_not_a_whole_number_in_range(client, query):
    response = client.get(f"/api/studies/s1/items/?{query}")
    name = query.split("=")[0]
    assert response.status_code == 400
    assert "whole number" in response.json()[name][0]


def test_the_schema_documents_the_cap_and_the_400(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/studies/{slug}/items/"]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert "more than 1000 are served as 1000" in limit["description"]
    assert limit["schema"]["minimum"] == 1
    assert "400" in operation["responses"]
