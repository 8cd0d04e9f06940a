"""Quality control: qualification on gold items, pausing on low gold accuracy, flags."""

import json
import uuid
from datetime import timedelta

import pytest
from conftest import make_study, make_user

from annotation import quality
from annotation.assignment import next_item, skip, submit
from annotation.imports import import_items
from annotation.models import Annotation, Reservation, Study, StudyMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold_study(write):
    study = make_study(slug="qc", overlap=1, status=Study.Status.OPEN)
    lines = [
        {
            "external_id": f"g{n}",
            "prompt": "p",
            "gold": {"pref": "A"},
            "responses": [{"text": "good"}, {"text": "bad"}],
        }
        for n in range(6)
    ] + [
        {"external_id": f"r{n}", "prompt": "p", "responses": [{"text": "x"}, {"text": "y"}]}
        for n in range(12)
    ]
    import_items(study, write("items.jsonl", "".join(json.dumps(x) + "\n" for x in lines)))
    return study


def annotator(study, name="bob"):
    return make_user(name, StudyMembership.Role.ANNOTATOR, study)


def label_next(study, user, value, *, seconds=None, client_seconds=None, order=None):
    """Answer the next item: `seconds` is the server's time from reservation to submission,
    `client_seconds` what the page reports, `order` the order the responses were shown in."""
    reservation = next_item(study, user)
    assert reservation is not None
    if order:
        Reservation.objects.filter(pk=reservation.pk).update(order=order)
    label = submit(
        study,
        user,
        reservation.item,
        value if isinstance(value, dict) else {"pref": value},
        submission_id=uuid.uuid4(),
        active_seconds=client_seconds,
    )
    if seconds is not None:
        Annotation.objects.filter(pk=label.pk).update(
            started_at=label.submitted_at - timedelta(seconds=seconds)
        )
    return reservation.item


def test_it_serves_only_gold_items_until_the_annotator_qualifies(gold_study):
    gold_study.qualification_gold_items = 3
    gold_study.save()
    bob = annotator(gold_study)
    served = [label_next(gold_study, bob, "A").external_id for _ in range(3)]
    assert all(e.startswith("g") for e in served)
    assert next_item(gold_study, bob).item.external_id.startswith("r")
    assert not quality.is_paused(gold_study, bob)


def test_it_pauses_an_annotator_who_fails_qualification(gold_study):
    gold_study.qualification_gold_items = 3
    gold_study.qualification_accuracy = 0.8
    gold_study.save()
    bob = annotator(gold_study)
    for value in ("A", "B", "B"):  # 1 of 3 right
        label_next(gold_study, bob, value)
    assert quality.is_paused(gold_study, bob)
    assert next_item(gold_study, bob) is None
    membership = StudyMembership.objects.get(study=gold_study, user=bob)
    assert membership.paused_reason == "failed qualification (1 of 3 gold items right)"
    # flagged, not deleted
    assert Annotation.objects.filter(rater__user=bob).count() == 3


def test_skipping_qualification_items_counts_as_failing_them(gold_study):
    gold_study.qualification_gold_items = 3
    gold_study.save()
    bob = annotator(gold_study)
    label_next(gold_study, bob, "A")
    for _ in range(2):
        skip(gold_study, bob, next_item(gold_study, bob).item)

    assert quality.is_paused(gold_study, bob)
    assert next_item(gold_study, bob) is None
    membership = StudyMembership.objects.get(study=gold_study, user=bob)
    assert membership.paused_reason == "failed qualification (1 of 3 gold items right)"


def test_it_pauses_below_the_gold_threshold_only_after_enough_gold(gold_study):
    gold_study.gold_rate = 1.0  # gold first, to reach the threshold quickly
    gold_study.gold_pause_below = 0.5
    gold_study.save()
    bob = annotator(gold_study)
    for value in ("B", "B", "B", "B"):
        label_next(gold_study, bob, value)
        assert not quality.is_paused(gold_study, bob)  # fewer than MIN_GOLD_FOR_PAUSE
    label_next(gold_study, bob, "B")
    assert quality.MIN_GOLD_FOR_PAUSE == 5
    assert quality.is_paused(gold_study, bob)
    assert "gold accuracy 0% below 50%" in StudyMembership.objects.get(user=bob).paused_reason


def test_it_keeps_annotators_above_the_threshold(gold_study):
    gold_study.gold_rate = 1.0
    gold_study.gold_pause_below = 0.5
    gold_study.save()
    bob = annotator(gold_study)
    for value in ("A", "A", "B", "A", "B", "A"):
        label_next(gold_study, bob, value)
    assert not quality.is_paused(gold_study, bob)
    (summary,) = quality.annotator_summaries(gold_study)
    assert (summary.gold_answered, summary.gold_right) == (6, 4)
    assert summary.gold_accuracy == pytest.approx(4 / 6)


def test_it_flags_speeders_and_straight_liners(gold_study):
    gold_study.overlap = 3
    gold_study.randomise_order = False
    gold_study.save()
    careful, fast = annotator(gold_study, "carol"), annotator(gold_study, "flash")
    for n in range(12):
        label_next(gold_study, careful, "AB"[n % 2], seconds=30)
        label_next(gold_study, fast, "A", seconds=2)
    summaries = {s.name: s for s in quality.annotator_summaries(gold_study)}
    assert summaries["flash"].speeder and summaries["flash"].straight_liner
    assert not summaries["carol"].speeder and not summaries["carol"].straight_liner
    assert summaries["carol"].median_seconds == 30
    # The thresholds are the study's: off for speed, always-the-same only for answers.
    gold_study.speeder_share = 0
    gold_study.straight_line_share = 1
    gold_study.save()
    (flash,) = [s for s in quality.annotator_summaries(gold_study) if s.name == "flash"]
    assert not flash.speeder and flash.straight_liner
    gold_study.straight_line_share = 0.5
    gold_study.save()
    (carol,) = [s for s in quality.annotator_summaries(gold_study) if s.name == "carol"]
    assert carol.straight_liner  # "A" half the time


def test_it_flags_an_annotator_who_always_picks_the_first_response_shown(gold_study):
    gold_study.overlap = 2
    gold_study.save()
    bob, dot = annotator(gold_study, "bob"), annotator(gold_study, "dot")
    for n in range(12):
        order = ("AB", "BA")[n % 2]
        label_next(gold_study, bob, "A", order=order)  # names A and B by position equally
        label_next(gold_study, dot, order[0], order=order)  # always "Response 1"
    summaries = {s.name: s for s in quality.annotator_summaries(gold_study)}
    assert summaries["dot"].straight_liner
    assert not summaries["bob"].straight_liner


def test_it_flags_straight_lining_on_a_checklist_asked_first(write):
    rubric = {
        "name": "Checks",
        "questions": [{"key": "check", "type": "checklist", "items": ["Correct?", "Safe?"]}],
    }
    study = make_study(slug="checks", rubric=rubric, overlap=2, status=Study.Status.OPEN)
    lines = [
        {"external_id": f"i{n}", "prompt": "p", "responses": [{"text": "x"}, {"text": "y"}]}
        for n in range(12)
    ]
    import_items(study, write("items.jsonl", "".join(json.dumps(x) + "\n" for x in lines)))
    bob, dot = annotator(study, "bob"), annotator(study, "dot")
    for n in range(12):
        label_next(study, bob, {"check[0]": ("yes", "no")[n % 2], "check[1]": "yes"})
        label_next(study, dot, {"check[0]": "yes", "check[1]": "yes"})
    summaries = {s.name: s for s in quality.annotator_summaries(study)}
    assert summaries["dot"].straight_liner
    assert not summaries["bob"].straight_liner


def test_it_times_labels_by_the_server_not_the_client_clock(gold_study):
    gold_study.overlap = 2
    gold_study.save()
    careful, bot = annotator(gold_study, "carol"), annotator(gold_study, "bot")
    for n in range(12):
        label_next(gold_study, careful, "AB"[n % 2], seconds=30, client_seconds=30)
        label_next(gold_study, bot, "AB"[n % 2], seconds=2, client_seconds=30)
    summaries = {s.name: s for s in quality.annotator_summaries(gold_study)}
    assert summaries["bot"].speeder
    assert summaries["bot"].median_seconds == 2


def test_it_times_labels_from_reservation_without_a_client_clock(gold_study):
    bob = annotator(gold_study)
    label_next(gold_study, bob, "A", seconds=42)
    (summary,) = quality.annotator_summaries(gold_study)
    assert summary.median_seconds == 42


def test_it_falls_back_to_the_client_clock_for_a_revised_label(gold_study):
    bob = annotator(gold_study)
    item = label_next(gold_study, bob, "A", seconds=42)
    # a revision has no reservation, so the server has no start time
    submit(gold_study, bob, item, {"pref": "B"}, submission_id=uuid.uuid4(), active_seconds=7)
    (summary,) = quality.annotator_summaries(gold_study)
    assert summary.median_seconds == 7


def test_the_dashboard_shows_annotators_flags_and_the_join_link(client, gold_study):
    gold_study.qualification_gold_items = 1
    gold_study.save()
    bob = annotator(gold_study)
    label_next(gold_study, bob, "B")
    client.force_login(make_user("alice", StudyMembership.Role.ADMIN, gold_study))
    page = client.get("/studies/qc/").content.decode()
    assert "failed qualification (0 of 1 gold items right)" in page
    assert f"/s/qc/join?token={gold_study.join_token}&amp;worker_id={{WORKER_ID}}" in page
    assert "Labels per day" in page
