"""The adjudication page through Django's test client: what an expert sees, unblinded, and
what each decision does; the item's history page."""

import io

import pytest
from conftest import make_study, make_user
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from annotation.models import Adjudication, Annotation, Item, StudyMembership

pytestmark = pytest.mark.django_db
Role = StudyMembership.Role


@pytest.fixture
def queue(write):
    """s1 hides model names from annotators; q1 and q2 are routed, q3 is not."""
    study = make_study(hide_model_names=True, overlap=2)
    for n in (1, 2, 3):
        Item.objects.create(
            study=study,
            external_id=f"q{n}",
            position=n,
            prompt=f"Prompt {n}",
            reference=f"Reference {n}",
            responses=[
                {"key": "A", "text": f"Answer A{n}", "model": "secret-model-a"},
                {"key": "B", "text": f"Answer B{n} <script>alert(1)</script>", "model": "m-b"},
            ],
        )
    header = "item,rater,kind,question,value,order,confidence,rationale\n"
    rows = [
        "q1,h1,human,pref,A,AB,,A is kind\n",
        "q1,h2,human,pref,B,BA,,B is right\n",
        "q1,judge-x,llm,pref,B,AB,0.8,cites the source\n",
        "q1,judge-x,llm,pref,A,BA,0.55,\n",
        "q2,h1,human,pref,A,AB,,\n",
        "q2,h2,human,pref,tie,AB,,\n",
    ]
    call_command(
        "import_labels", "s1", write("l.csv", header + "".join(rows)), stdout=io.StringIO()
    )
    Annotation.objects.filter(rater__name="h1", item__external_id="q1").update(active_seconds=42)
    now = timezone.now()
    for ext, reasons in [
        ("q1", ["no_majority:pref", "judge_inconsistent:pref"]),
        ("q2", ["no_majority:pref"]),
    ]:
        Item.objects.filter(study=study, external_id=ext).update(
            routed_at=now,
            routed_reason="routing rules",
            routing_reasons=reasons,
            reason_count=len(reasons),
        )
    return study


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_an_expert_sees_the_item_unblinded_with_every_label_and_why_it_was_routed(queue):
    carol = make_user("carol", Role.EXPERT, queue)
    page = client_for(carol).get("/s/s1/queue/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="item" value="q1"' in html  # most reasons first
    for shown in [
        "secret-model-a",  # model names, hidden from the annotators
        "Reference 1",
        "A is kind",
        "B is right",
        "42 s",  # time spent
        "cites the source",
        "confidence 0.80",
        "<code>judge_inconsistent</code> on <code>pref</code>",
        "judge-x (AB): B; judge-x (BA): A",
    ]:
        assert shown in html, shown
    assert "<script>alert(1)</script>" not in html  # a response's markup is escaped
    assert 'value="unable"' not in html  # cannot-be-resolved is its own button


def test_annotators_never_see_the_queue_or_an_items_history(queue):
    bob = make_user("bob", Role.ANNOTATOR, queue)
    client = client_for(bob)
    assert client.get("/s/s1/queue/").status_code == 404
    assert client.post("/s/s1/queue/", {"item": "q1", "action": "unresolved"}).status_code == 404
    assert client.get("/s/s1/items/q1/history/").status_code == 404
    assert not Adjudication.objects.exists()


def test_a_decision_is_recorded_and_the_next_item_follows(queue):
    carol = make_user("carol", Role.EXPERT, queue)
    client = client_for(carol)
    client.get("/s/s1/queue/")
    response = client.post(
        "/s/s1/queue/", {"item": "q1", "action": "decide", "q:pref": "B", "note": "sourced"}
    )
    assert response.status_code == 302 and response["Location"] == "/s/s1/queue/"
    decision = Adjudication.objects.get()
    assert (decision.expert, decision.outcome, decision.answers, decision.note) == (
        carol,
        "decided",
        {"pref": "B"},
        "sourced",
    )
    assert decision.started_at is not None  # from the reservation: the time it took
    assert 'name="item" value="q2"' in client.get("/s/s1/queue/").content.decode()


@pytest.mark.parametrize(
    "form, error",
    [
        ({"action": "decide"}, "pref: a final answer is required"),
        ({"action": "decide", "q:pref": "C"}, "pref: expected one of"),
        ({"action": "send_back", "extra_labels": "many"}, "a whole number from 1 to 20"),
        ({"action": "send_back", "extra_labels": "21"}, "a whole number from 1 to 20"),
        ({"action": "shrug"}, "decide, send back or mark as cannot be resolved"),
    ],
)
def test_a_bad_decision_is_refused_saying_why_and_keeps_the_note(queue, form, error):
    carol = make_user("carol", Role.EXPERT, queue)
    client = client_for(carol)
    client.get("/s/s1/queue/")
    response = client.post("/s/s1/queue/", {"item": "q1", "note": "my note", **form})
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html and "my note" in html
    assert not Adjudication.objects.exists()


def test_an_item_sent_back_asks_for_more_labels_and_its_history_says_so(queue):
    carol = make_user("carol", Role.EXPERT, queue)
    client = client_for(carol)
    client.get("/s/s1/queue/")
    client.post("/s/s1/queue/", {"item": "q1", "action": "send_back", "extra_labels": "3"})
    item = queue.items.get(external_id="q1")
    assert (item.routed_at, item.extra_labels, item.labels_needed(queue)) == (None, 3, 5)

    history = client.get("/s/s1/items/q1/history/")
    assert history.status_code == 200
    html = history.content.decode()
    kinds = [part.split('"')[0] for part in html.split('data-kind="')[1:]]
    assert kinds == ["label"] * 4 + ["adjudication", "routing"]
    assert "Sent back" in html and "3 more human labels" in html and "Left the queue" in html
    assert "promote-button" not in html  # nothing decided to promote
