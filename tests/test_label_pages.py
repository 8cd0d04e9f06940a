"""The annotator's pages through Django's test client: studies list, label, revise and done."""

import json
import re
import uuid

import pytest
from conftest import PAIRWISE_RUBRIC, make_study, make_user
from django.utils import timezone

from annotation.assignment import next_item, submit
from annotation.imports import import_items
from annotation.models import Item, Study, StudyMembership

pytestmark = pytest.mark.django_db

CODE = 'id="completion-code"'


@pytest.fixture
def study():
    study = make_study("s1", status=Study.Status.OPEN, rubric=PAIRWISE_RUBRIC, overlap=1)
    for i, external_id in enumerate(["q1", "q2", "math/q 3?"], 1):
        Item.objects.create(
            study=study,
            external_id=external_id,
            position=i,
            prompt=f"Question {i}",
            responses=[{"key": "A", "text": "one"}, {"key": "B", "text": "two"}],
        )
    return study


@pytest.fixture
def bob(study, client):
    bob = make_user("bob", StudyMembership.Role.ANNOTATOR, study, password=None)
    client.force_login(bob)
    return bob


def label_next(study, user):
    reservation = next_item(study, user)
    submit(study, user, reservation.item, {"pref": "A"}, submission_id=uuid.uuid4())
    return reservation.item.external_id


def previous_link(page):
    match = re.search(r'<a href="([^"]+)" id="previous-link"', page.content.decode())
    return match and match[1]


def set_status(study, status):
    study.status = status
    study.save()


def test_an_item_id_with_a_slash_can_be_gone_back_to(study, bob, client):
    labelled = [label_next(study, bob) for _ in range(3)]
    assert labelled[-1] == "math/q 3?"

    done = client.get("/s/s1/done/")
    revise = client.get(previous_link(done))

    assert previous_link(done) == "/s/s1/label/math/q%203%3F/"
    assert revise.status_code == 200
    assert revise.context["item"].external_id == "math/q 3?"


def test_going_back_walks_through_every_earlier_item(study, bob, client):
    labelled = [label_next(study, bob) for _ in range(3)]

    walked, url = [], previous_link(client.get("/s/s1/done/"))
    while url:
        page = client.get(url)
        walked.append(page.context["item"].external_id)
        url = previous_link(page)

    assert walked == labelled[::-1]


def test_the_completion_code_waits_for_the_work(study, bob, client):
    assert CODE not in client.get("/s/s1/done/").content.decode()  # straight from the link
    label_next(study, bob)
    page = client.get("/s/s1/done/").content.decode()
    assert CODE not in page and 'id="continue-link"' in page  # items left
    label_next(study, bob)
    label_next(study, bob)

    page = client.get("/s/s1/done/").content.decode()

    assert CODE in page and study.completion_code in page


@pytest.mark.parametrize("status", [Study.Status.PAUSED, Study.Status.DRAFT])
def test_a_study_that_is_not_open_gives_no_completion_code(study, bob, client, status):
    label_next(study, bob)
    set_status(study, status)

    page = client.get("/s/s1/done/").content.decode()

    assert CODE not in page and "come back later" in page


def test_a_closed_study_gives_the_code_to_those_who_labelled(study, bob, client):
    label_next(study, bob)
    set_status(study, Study.Status.CLOSED)

    assert CODE in client.get("/s/s1/done/").content.decode()


def test_a_paused_annotator_gets_no_completion_code(study, bob, client):
    for _ in range(3):
        label_next(study, bob)
    StudyMembership.objects.filter(user=bob).update(paused_reason="gold", paused_at=timezone.now())

    page = client.get("/s/s1/done/").content.decode()

    assert CODE not in page and "paused" in page


def test_a_refused_revision_comes_back_as_the_revision(study, bob, client):
    external_id = label_next(study, bob)
    form = client.get(f"/s/s1/label/{external_id}/").context

    reply = client.post(
        f"/s/s1/label/{external_id}/",
        {"item": external_id, "submission_id": str(uuid.uuid4()), "action": "submit"},
    )

    assert reply.status_code == 400
    assert reply.context["revising"] and reply.context["item"] == form["item"]
    assert 'id="skip-button"' not in reply.content.decode()
    assert "pref: an answer is required" in reply.content.decode()


def test_a_closed_study_shows_earlier_answers_read_only(study, bob, client):
    external_id = label_next(study, bob)
    set_status(study, Study.Status.CLOSED)

    page = client.get(f"/s/s1/label/{external_id}/").content.decode()

    assert '<fieldset class="answers" disabled>' in page
    assert 'value="submit"' not in page
    assert "can no longer change" in page


@pytest.mark.parametrize(
    "role, link",
    [
        (StudyMembership.Role.ANNOTATOR, "/s/s1/label/"),
        (StudyMembership.Role.EXPERT, "/s/s1/label/"),
        (StudyMembership.Role.RESEARCHER, "/studies/s1/"),
    ],
)
def test_the_studies_list_links_each_member_to_their_page(study, client, role, link):
    client.force_login(make_user("dana", role, study, password=None))

    page = client.get("/").content.decode()

    assert f'<a href="{link}">' in page


def test_an_annotator_stops_at_the_studys_items_per_annotator(study, bob, client):
    study.items_per_annotator = 2
    study.save()
    label_next(study, bob)
    assert "1 of 2 labelled" in client.get("/s/s1/label/").content.decode()
    label_next(study, bob)  # the item that page reserved

    assert next_item(study, bob) is None
    page = client.get("/s/s1/done/").content.decode()
    assert CODE in page and "You labelled 2 items" in page


def test_the_item_count_follows_an_items_import(study, bob, client, write):
    assert "3 items in the study" in client.get("/s/s1/label/").content.decode()
    item = {"external_id": "q4", "prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
    import_items(study, write("more.jsonl", json.dumps(item) + "\n"))
    assert "4 items in the study" in client.get("/s/s1/label/").content.decode()
