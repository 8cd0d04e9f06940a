"""`submit` and `skip`: an annotator's answer is stored once, checked, timed and never lost."""

import uuid
from datetime import timedelta

import pytest
from conftest import PAIRWISE_RUBRIC, make_study, make_user
from django.utils import timezone

from annotation.assignment import InvalidSubmission, next_item, skip, submit, ticket_for
from annotation.models import Annotation, Item, Rater, Reservation, Skip, Study, StudyMembership

pytestmark = pytest.mark.django_db

PAIRWISE_WITH_SCORE = {
    "name": "Pairwise",
    "questions": [
        *PAIRWISE_RUBRIC["questions"],
        {"key": "score", "type": "likert", "scale": 5},
    ],
}
CHECKLIST_RUBRIC = {
    "name": "Checklist",
    "questions": [{"key": "check", "type": "checklist", "items": ["Polite?", "Short?"]}],
}
UNABLE_RUBRIC = {
    "name": "Unable",
    "questions": [
        {"key": "pref", "type": "pairwise", "allow_unable": True},
        {"key": "fluent", "type": "binary"},
    ],
}

STRENGTH_RUBRIC = {
    "name": "Preference with strength",
    "questions": [
        {"key": "overall", "type": "pairwise", "strength": True, "allow_unable": True},
        {"key": "style", "type": "pairwise", "strength": ["a bit", "far"], "required": False},
    ],
}


def open_study(slug="s1", **fields):
    return make_study(slug, status=Study.Status.OPEN, **fields)


def annotator(username, study):
    """An annotator who never logs in here: no password, so no slow hashing."""
    return make_user(username, StudyMembership.Role.ANNOTATOR, study, password=None)


def add_items(study, n):
    start = study.items.count()
    return [
        Item.objects.create(
            study=study,
            external_id=f"q{start + i}",
            position=start + i,
            prompt=f"Question {start + i}",
            responses=[
                {"key": "A", "text": "Answer A", "model": "model-a"},
                {"key": "B", "text": "Answer B", "model": "model-b"},
            ],
        )
        for i in range(1, n + 1)
    ]


def set_status(study, status):
    study.status = status
    study.save()


def test_it_stores_the_answers_to_the_reserved_item_as_a_human_label():
    study = open_study()
    add_items(study, 2)
    bob = annotator("bob", study)
    reservation = next_item(study, bob)
    submission_id = uuid.uuid4()

    annotation = submit(
        study,
        bob,
        reservation.item,
        {"pref": "tie", "why": "Both fine"},
        submission_id=submission_id,
    )

    annotation.refresh_from_db()
    assert annotation.item == reservation.item
    assert annotation.rater.user == bob
    assert annotation.rater.kind == Rater.Kind.HUMAN
    assert annotation.answers == {"pref": "tie", "why": "Both fine"}
    assert annotation.source == Annotation.Source.UI
    assert annotation.rubric_version == reservation.rubric_version
    assert annotation.submission_id == submission_id
    assert annotation.is_current
    assert not Reservation.objects.exists()


def test_it_stores_one_annotation_for_a_retried_submission():
    study = open_study()
    add_items(study, 2)
    bob = annotator("bob", study)
    item = next_item(study, bob).item
    submission_id = uuid.uuid4()

    first = submit(study, bob, item, {"pref": "A"}, submission_id=submission_id)
    retried = submit(study, bob, item, {"pref": "A"}, submission_id=submission_id)

    assert retried.pk == first.pk
    assert Annotation.objects.count() == 1
    assert Annotation.objects.get().is_current


def test_it_refuses_an_item_that_is_not_reserved_for_the_annotator():
    study = open_study(overlap=2)
    carols, unreserved = add_items(study, 2)
    bob, carol = annotator("bob", study), annotator("carol", study)
    next_item(study, carol)

    for item in (carols, unreserved):
        with pytest.raises(InvalidSubmission, match="time on this item ran out"):
            submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())

    assert not Annotation.objects.exists()


def test_it_refuses_a_late_answer_once_the_expired_reservation_went_to_someone_else():
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    held = next_item(study, bob)
    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    next_item(study, carol)

    with pytest.raises(InvalidSubmission, match="others have taken its places"):
        submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4(), ticket=ticket_for(held))

    assert not Annotation.objects.exists()
    assert Reservation.objects.get().user == carol


def test_a_late_answer_takes_a_place_still_free_with_the_order_it_was_shown_in():
    study = open_study(overlap=2)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    held = next_item(study, bob)
    held.order = "BA"
    held.save()
    ticket = ticket_for(held)
    held.delete()  # expired, and let go by a later request
    next_item(study, carol)  # one place of two

    late = submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4(), ticket=ticket)

    assert (late.order, late.rubric_version, late.started_at) == ("BA", held.rubric_version, None)
    assert item.annotations.current().count() == 1


@pytest.mark.parametrize("whose", ["another item's", "another annotator's", "a forged"])
def test_a_late_answer_needs_the_ticket_of_its_own_page(whose):
    study = open_study(overlap=3)
    item, other = add_items(study, 2)
    bob, carol = annotator("bob", study), annotator("carol", study)
    if whose == "another item's":
        held = next_item(study, bob)
        held.item = other
        ticket = ticket_for(held)
    elif whose == "another annotator's":
        ticket = ticket_for(next_item(study, carol))
    else:
        ticket = ticket_for(next_item(study, bob))[:-2] + "xx"
    Reservation.objects.filter(user=bob).delete()

    with pytest.raises(InvalidSubmission, match="time on this item ran out"):
        submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4(), ticket=ticket)

    assert not Annotation.objects.filter(rater__user=bob).exists()


def test_it_checks_answers_against_the_rubric_version_the_item_was_shown_with():
    study = open_study(overlap=2)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    next_item(study, bob)
    study.rubric.revise(PAIRWISE_WITH_SCORE)
    revised = Study.objects.get(pk=study.pk)
    next_item(revised, carol)

    with pytest.raises(InvalidSubmission, match="unknown question 'score'"):
        submit(revised, bob, item, {"pref": "A", "score": "4"}, submission_id=uuid.uuid4())
    bobs = submit(revised, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())
    with pytest.raises(InvalidSubmission, match="score: an answer is required"):
        submit(revised, carol, item, {"pref": "B"}, submission_id=uuid.uuid4())
    carols = submit(revised, carol, item, {"pref": "B", "score": "4"}, submission_id=uuid.uuid4())

    assert bobs.rubric_version.number == 1
    assert bobs.answers == {"pref": "A"}
    assert carols.rubric_version.number == 2
    assert carols.answers == {"pref": "B", "score": 4}


@pytest.mark.parametrize(
    "answers, error",
    [
        ({}, "pref: an answer is required"),
        ({"pref": ""}, "pref: an answer is required"),
        ({"why": "No idea"}, "pref: an answer is required"),
        ({"pref": "C"}, "pref: expected one of 'A', 'B' or 'tie'"),
        ({"pref": "A", "colour": "red"}, "unknown question 'colour'"),
    ],
)
def test_it_refuses_answers_that_do_not_fit_the_rubric(answers, error):
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)

    with pytest.raises(InvalidSubmission, match=error):
        submit(study, bob, item, answers, submission_id=uuid.uuid4())

    assert not Annotation.objects.exists()
    assert Reservation.objects.filter(item=item, user=bob).exists()


def test_it_requires_every_row_of_a_required_checklist():
    study = open_study(rubric=CHECKLIST_RUBRIC)
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)

    with pytest.raises(InvalidSubmission, match=r"check\[1\]: an answer is required"):
        submit(study, bob, item, {"check[0]": "yes"}, submission_id=uuid.uuid4())
    annotation = submit(
        study, bob, item, {"check[0]": "yes", "check[1]": "na"}, submission_id=uuid.uuid4()
    )

    assert annotation.answers == {"check[0]": "yes", "check[1]": "na"}


def test_it_accepts_unable_to_assess_only_where_the_question_allows_it():
    study = open_study(rubric=UNABLE_RUBRIC)
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)

    with pytest.raises(InvalidSubmission, match="fluent: expected one of 'yes' or 'no'"):
        submit(study, bob, item, {"pref": "A", "fluent": "unable"}, submission_id=uuid.uuid4())
    annotation = submit(
        study, bob, item, {"pref": "unable", "fluent": "yes"}, submission_id=uuid.uuid4()
    )

    annotation.refresh_from_db()
    assert annotation.answers == {"pref": "unable", "fluent": "yes"}


def reserved_for_bob(rubric):
    study = open_study(rubric=rubric)
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)
    return study, bob, item


def test_it_stores_the_strength_of_a_preference_as_its_own_cell():
    study, bob, item = reserved_for_bob(STRENGTH_RUBRIC)

    annotation = submit(
        study,
        bob,
        item,
        {"overall": "B", "overall.strength": "2", "style": "A", "style.strength": "1"},
        submission_id=uuid.uuid4(),
    )

    annotation.refresh_from_db()
    assert annotation.answers == {
        "overall": "B",
        "overall.strength": 2,
        "style": "A",
        "style.strength": 1,
    }


@pytest.mark.parametrize(
    "answers, stored",
    [
        ({"overall": "tie"}, {"overall": "tie"}),
        ({"overall": "unable"}, {"overall": "unable"}),
        (  # style is optional, its strength too
            {"overall": "A", "overall.strength": "3", "style": "B"},
            {"overall": "A", "overall.strength": 3, "style": "B"},
        ),
        (
            {"overall": "A", "overall.strength": "1", "style": "tie", "style.strength": ""},
            {"overall": "A", "overall.strength": 1, "style": "tie"},
        ),
    ],
)
def test_it_asks_no_strength_of_a_tie_or_an_optional_question(answers, stored):
    study, bob, item = reserved_for_bob(STRENGTH_RUBRIC)

    annotation = submit(study, bob, item, answers, submission_id=uuid.uuid4())

    annotation.refresh_from_db()
    assert annotation.answers == stored


@pytest.mark.parametrize(
    "answers, error",
    [
        ({"overall": "A"}, "overall.strength: an answer is required"),
        ({"overall": "B", "overall.strength": ""}, "overall.strength: an answer is required"),
        (
            {"overall": "tie", "overall.strength": "2"},
            "overall.strength: a strength goes only with an answer naming a response; "
            "'overall' is 'tie'",
        ),
        (
            {"overall": "unable", "overall.strength": "2"},
            "overall.strength: a strength goes only with an answer naming a response; "
            "'overall' is 'unable'",
        ),
        (
            {"overall": "A", "overall.strength": "1", "style.strength": "1"},
            "style.strength: a strength goes only with an answer naming a response; "
            "'style' has no answer",
        ),
        (
            {"overall": "A", "overall.strength": "4"},
            "overall.strength: expected an integer 1..3 (1 'slightly better' to 3 'much better')",
        ),
    ],
)
def test_it_refuses_a_missing_or_misplaced_strength(answers, error):
    study, bob, item = reserved_for_bob(STRENGTH_RUBRIC)

    with pytest.raises(InvalidSubmission) as excinfo:
        submit(study, bob, item, answers, submission_id=uuid.uuid4())

    assert str(excinfo.value) == error
    assert not Annotation.objects.exists()


def test_it_refuses_a_strength_where_the_rubric_asks_for_none():
    study, bob, item = reserved_for_bob(PAIRWISE_RUBRIC)

    with pytest.raises(InvalidSubmission) as excinfo:
        submit(study, bob, item, {"pref": "A", "pref.strength": "1"}, submission_id=uuid.uuid4())

    assert str(excinfo.value) == (
        "pref.strength: question 'pref' has no strength scale in this rubric; "
        "write its answer as 'pref'"
    )


def test_it_records_the_time_from_reservation_to_submission_and_the_active_time():
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    reservation = next_item(study, bob)

    annotation = submit(
        study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4(), active_seconds=42.5
    )

    annotation.refresh_from_db()
    assert annotation.started_at == reservation.created_at
    assert reservation.created_at <= annotation.submitted_at <= timezone.now()
    assert annotation.active_seconds == 42.5


def test_it_leaves_the_active_time_empty_when_the_client_sent_none():
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)

    annotation = submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())

    assert annotation.active_seconds is None


def test_it_records_the_order_the_pair_was_shown_in():
    study = open_study(overlap=1, randomise_order=True)
    add_items(study, 30)
    bob = annotator("bob", study)

    shown, stored = [], []
    while (reservation := next_item(study, bob)) is not None:
        shown.append(reservation.order)
        annotation = submit(study, bob, reservation.item, {"pref": "A"}, submission_id=uuid.uuid4())
        stored.append(annotation.order)

    assert stored == shown
    assert set(stored) == {"AB", "BA"}  # all thirty the same: once in 2**29 runs


def test_it_records_the_imported_order_when_the_study_does_not_randomise():
    study = open_study(randomise_order=False)
    add_items(study, 5)
    bob = annotator("bob", study)

    orders = []
    while (reservation := next_item(study, bob)) is not None:
        annotation = submit(study, bob, reservation.item, {"pref": "B"}, submission_id=uuid.uuid4())
        orders.append(annotation.order)

    assert orders == ["AB"] * 5


def test_it_keeps_the_earlier_label_as_history_when_an_annotator_revises_it():
    study = open_study(overlap=1, randomise_order=True)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    next_item(study, bob)
    first = submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())
    study.rubric.revise(PAIRWISE_WITH_SCORE)

    revised = submit(
        study, bob, item, {"pref": "B", "why": "Read again"}, submission_id=uuid.uuid4()
    )

    first.refresh_from_db()
    assert revised.pk != first.pk
    assert revised.is_current
    assert revised.answers == {"pref": "B", "why": "Read again"}
    assert revised.order == first.order
    assert revised.rubric_version == first.rubric_version
    assert not first.is_current
    assert first.answers == {"pref": "A"}
    assert item.annotations.current().count() == 1
    assert next_item(Study.objects.get(pk=study.pk), carol) is None


def test_it_releases_the_reservation_and_records_a_skip():
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    next_item(study, bob)

    skip(study, bob, item)

    assert Skip.objects.filter(item=item, user=bob).exists()
    assert not Reservation.objects.filter(user=bob).exists()
    assert next_item(study, bob) is None
    assert next_item(study, carol).item == item


def test_it_records_a_skip_once_however_often_it_is_sent():
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)

    skip(study, bob, item)
    skip(study, bob, item)

    assert Skip.objects.filter(item=item, user=bob).count() == 1


@pytest.mark.parametrize("status", [Study.Status.DRAFT, Study.Status.PAUSED, Study.Status.CLOSED])
def test_it_refuses_answers_unless_the_study_is_open(status):
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)
    set_status(study, status)

    with pytest.raises(InvalidSubmission, match="the study is not open"):
        submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())

    assert not Annotation.objects.exists()


def test_it_refuses_a_revision_once_the_study_is_closed():
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)
    first = submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())
    set_status(study, Study.Status.CLOSED)

    with pytest.raises(InvalidSubmission, match="the study is not open"):
        submit(study, bob, item, {"pref": "B"}, submission_id=uuid.uuid4())

    assert list(item.annotations.all()) == [first]
    assert item.annotations.get().is_current


def test_it_refuses_a_skip_once_the_study_is_closed():
    """A closed study is read-only: a skip sent from a page left open must not write."""
    study = open_study()
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)
    set_status(study, Study.Status.CLOSED)

    with pytest.raises(InvalidSubmission, match="the study is not open"):
        skip(study, bob, item)

    assert not Skip.objects.exists()
