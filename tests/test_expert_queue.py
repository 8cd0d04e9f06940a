"""The expert queue: which routed item an expert gets, what a decision does to routing, and
sending an item back to the annotators for more labels."""

import io
import uuid
from datetime import timedelta

import pytest
from conftest import make_study, make_user
from django.core.management import call_command
from django.utils import timezone
from test_assignment_concurrency import add_items, in_threads
from test_route import labels_file

from annotation import adjudication
from annotation.adjudication import InvalidDecision
from annotation.assignment import next_item, submit
from annotation.models import (
    Adjudication,
    Annotation,
    Item,
    QueueReservation,
    RoutingDecision,
    Study,
    StudyMembership,
)
from calibration.queueing import route

pytestmark = pytest.mark.django_db
EXPERT = StudyMembership.Role.EXPERT


def routed(study, ext, reasons, agreement):
    Item.objects.filter(study=study, external_id=ext).update(
        routed_at=timezone.now(),
        routed_reason="routing rules",
        routing_reasons=reasons,
        reason_count=len(reasons),
        routing_agreement=agreement,
    )
    return Item.objects.get(study=study, external_id=ext)


def import_labels(study, write, rows):
    call_command("import_labels", study.slug, labels_file(write, rows), stdout=io.StringIO())


def test_the_queue_serves_most_reasons_then_lowest_agreement_then_import_order():
    study = make_study()
    add_items(study, 6)
    routed(study, "q1", ["no_majority:pref"], 0.5)
    routed(study, "q2", ["no_majority:pref", "judge_conflict:pref"], 0.5)
    routed(study, "q3", ["low_agreement:pref"], 0.34)
    routed(study, "q4", ["low_agreement:pref"], 0.34)
    routed(study, "q5", ["unable:pref"], None)  # no human label but `unable`
    experts = [make_user(f"e{n}", EXPERT, study, None) for n in range(6)]

    served = [adjudication.next_for_expert(study, e) for e in experts]

    assert [r.item.external_id if r else None for r in served] == [
        "q2",
        "q5",
        "q3",
        "q4",
        "q1",
        None,  # q6 was never routed
    ]


def test_an_expert_keeps_their_item_until_it_expires_and_then_anyone_may_take_it():
    study = make_study(reservation_minutes=10)
    add_items(study, 1)
    routed(study, "q1", ["no_majority:pref"], 0.5)
    ann, ben = make_user("ann", EXPERT, study, None), make_user("ben", EXPERT, study, None)

    held = adjudication.next_for_expert(study, ann)
    assert adjudication.next_for_expert(study, ann).pk == held.pk  # the same, on a reload
    assert adjudication.next_for_expert(study, ben) is None  # one expert per item

    QueueReservation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    taken = adjudication.next_for_expert(study, ben)
    assert taken.item.external_id == "q1" and taken.user == ben
    assert QueueReservation.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_experts_opening_the_queue_at_once_get_different_items():
    study = make_study()
    add_items(study, 8)
    for n in range(1, 9):
        routed(study, f"q{n}", ["no_majority:pref"], 0.5)
    experts = [make_user(f"e{n}", EXPERT, study, None) for n in range(12)]

    served = in_threads(lambda e: adjudication.next_for_expert(study, e), experts)

    items = [r.item_id for r in served if r]
    assert len(items) == 8 and len(set(items)) == 8  # every item once, four experts without
    assert QueueReservation.objects.count() == 8


def test_a_decision_is_its_own_record_and_leaves_every_label_as_it_was(write):
    study = make_study(routing_rules={"no_majority": True})
    add_items(study, 1)
    import_labels(
        study,
        write,
        [("q1", "h1", "human", "pref", "A", "AB"), ("q1", "h2", "human", "pref", "B", "AB")],
    )
    route(study)
    item = Item.objects.get()
    assert item.routing_reasons == ["no_majority:pref"]
    before = list(Annotation.objects.values_list("pk", "answers", "is_current"))
    ann = make_user("ann", EXPERT, study, None)
    adjudication.next_for_expert(study, ann)

    with pytest.raises(InvalidDecision, match="pref: expected one of"):
        adjudication.decide(study, ann, item, {"pref": "C"})
    with pytest.raises(InvalidDecision, match="pref: a final answer is required"):
        adjudication.decide(study, ann, item, {})
    decision = adjudication.decide(study, ann, item, {"pref": "B"}, note=" B is right ")

    assert (decision.outcome, decision.answers, decision.note) == (
        "decided",
        {"pref": "B"},
        "B is right",
    )
    assert decision.reasons == ["no_majority:pref"] and decision.started_at is not None
    assert list(Annotation.objects.values_list("pk", "answers", "is_current")) == before
    assert not QueueReservation.objects.exists()
    assert adjudication.next_for_expert(study, ann) is None  # decided: out of the queue
    with pytest.raises(InvalidDecision, match="not waiting"):
        adjudication.decide(study, ann, item, {"pref": "A"})

    route(study)  # the same labels: the decision stands
    assert not adjudication.waiting(study).exists()


def test_another_experts_live_hold_refuses_a_decision():
    study = make_study()
    add_items(study, 1)
    item = routed(study, "q1", ["no_majority:pref"], 0.5)
    ann, ben = make_user("ann", EXPERT, study, None), make_user("ben", EXPERT, study, None)
    adjudication.next_for_expert(study, ann)

    with pytest.raises(InvalidDecision, match="another expert"):
        adjudication.mark_unresolved(study, ben, item)
    assert not Adjudication.objects.exists()


def test_new_labels_after_a_decision_put_the_item_back_in_the_queue(write):
    study = make_study(routing_rules={"no_majority": True})
    add_items(study, 1)
    two = [("q1", "h1", "human", "pref", "A", "AB"), ("q1", "h2", "human", "pref", "B", "AB")]
    import_labels(study, write, two)
    route(study)
    ann = make_user("ann", EXPERT, study, None)
    item = Item.objects.get()
    adjudication.mark_unresolved(study, ann, item, note="both fine")
    assert not adjudication.waiting(study).exists()

    # Four labels, two each: still no majority, and new since the decision.
    more = [("q1", "h3", "human", "pref", "A", "AB"), ("q1", "h4", "human", "pref", "B", "AB")]
    import_labels(study, write, more)
    route(study)

    assert list(adjudication.waiting(study)) == [item]
    history = [(kind, getattr(r, "routed", None)) for _, kind, r in adjudication.history(item)]
    assert history.count(("routing", True)) == 2  # routed, then routed anew
    assert [kind for kind, _ in history][-1] == "routing"


@pytest.mark.django_db(transaction=True)
def test_an_item_sent_back_gets_more_labels_and_is_decided_again_when_they_are_in(eager_tasks):
    study = make_study(
        status=Study.Status.OPEN,
        overlap=2,
        randomise_order=False,
        routing_rules={"no_majority": True},
    )
    add_items(study, 1)
    humans = [make_user(n, StudyMembership.Role.ANNOTATOR, study, None) for n in "abcd"]

    def label(user, value):
        reservation = next_item(study, user)
        assert reservation is not None, f"{user} got no item"
        submit(study, user, reservation.item, {"pref": value}, submission_id=uuid.uuid4())

    label(humans[0], "A")
    label(humans[1], "B")
    item = Item.objects.get()
    assert item.routed_at is not None  # a tie, routed when its labels were complete
    assert next_item(study, humans[2]) is None  # not handed out while routed

    ann = make_user("ann", EXPERT, study, None)
    assert adjudication.next_for_expert(study, ann).item == item
    with pytest.raises(InvalidDecision, match="a whole number from 1 to 20"):
        adjudication.send_back(study, ann, item, 0)
    adjudication.send_back(study, ann, item, 2, note="need more")
    item.refresh_from_db()
    assert (item.routed_at, item.extra_labels, item.labels_needed(study)) == (None, 2, 4)

    route(study)  # a route of the whole study meanwhile waits for the labels asked for
    item.refresh_from_db()
    assert item.routed_at is None

    label(humans[2], "A")
    item.refresh_from_db()
    assert item.routed_at is None  # 3 of 4: still being labelled
    label(humans[3], "A")
    item.refresh_from_db()
    assert item.routed_at is None and item.routing_reasons == []  # A, B, A, A: a majority
    outcomes = [
        (kind, getattr(r, "outcome", None) or getattr(r, "by", None))
        for _, kind, r in adjudication.history(item)
        if kind != "label"
    ]
    assert outcomes == [
        ("routing", "routing rules"),
        ("adjudication", "sent_back"),
        ("routing", adjudication.SENT_BACK),
        ("routing", "routing rules"),
    ]
    assert RoutingDecision.objects.filter(routed=False).count() == 2


def test_the_study_page_counts_the_queue_by_state_reason_and_expert(client):
    study = make_study()
    add_items(study, 5)
    for ext in ("q1", "q2", "q3", "q4"):
        routed(study, ext, ["no_majority:pref"], 0.5)
    routed(study, "q5", ["judge_conflict:pref", "no_majority:pref"], 0.5)
    ann, ben = make_user("ann", EXPERT, study, None), make_user("ben", EXPERT, study, None)
    first = adjudication.next_for_expert(study, ann).item  # q5, most reasons
    adjudication.decide(study, ann, first, {"pref": "A"})
    second = adjudication.next_for_expert(study, ann).item
    adjudication.send_back(study, ann, second, 1)
    third = adjudication.next_for_expert(study, ben).item
    adjudication.mark_unresolved(study, ben, third)
    adjudication.next_for_expert(study, ben)  # held now

    summary = adjudication.queue_summary(study)

    assert summary["states"] == {
        "waiting": 1,
        "reserved": 1,
        "decided": 1,
        "sent_back": 1,
        "unresolved": 1,
    }
    assert summary["reasons"] == [
        {
            "reason": "judge_conflict:pref",
            "waiting": 0,
            "reserved": 0,
            "decided": 1,
            "sent_back": 0,
            "unresolved": 0,
        },
        {
            "reason": "no_majority:pref",
            "waiting": 1,
            "reserved": 1,
            "decided": 1,
            "sent_back": 1,
            "unresolved": 1,
        },
    ]
    today = timezone.now().date().isoformat()
    assert summary["decisions_per_day"] == [{"day": today, "decisions": 3}]
    by_name = {e["name"]: e for e in summary["experts"]}
    assert (by_name["ann"]["decided"], by_name["ann"]["sent_back"], by_name["ann"]["reserved"]) == (
        1,
        1,
        0,
    )
    assert (by_name["ben"]["unresolved"], by_name["ben"]["reserved"]) == (1, 1)
    assert by_name["ann"]["median_seconds"] >= 0

    researcher = make_user("rita", StudyMembership.Role.RESEARCHER, study)
    client.force_login(researcher)
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert '<dd data-queue-state="sent_back">1</dd>' in page
    assert "<code>judge_conflict:pref</code>" in page
