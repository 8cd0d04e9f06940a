"""`next_item`: which item an annotator gets next, reserved for them until it expires."""

import uuid
from datetime import timedelta

import pytest
from conftest import make_study, make_user
from django.utils import timezone

from annotation.assignment import next_item, rater_for, skip, submit
from annotation.models import Annotation, Item, Rater, Reservation, Study, StudyMembership

pytestmark = pytest.mark.django_db

LIKERT_RUBRIC = {"name": "Likert", "questions": [{"key": "score", "type": "likert", "scale": 5}]}


def open_study(slug="s1", **fields):
    return make_study(slug, status=Study.Status.OPEN, **fields)


def annotator(username, study):
    """An annotator who never logs in here: no password, so no slow hashing."""
    return make_user(username, StudyMembership.Role.ANNOTATOR, study, password=None)


def add_items(study, n, *, gold=False, responses=2):
    """`n` items after the study's last one, in import order."""
    start = study.items.count()
    return [
        Item.objects.create(
            study=study,
            external_id=f"{'g' if gold else 'q'}{start + i}",
            position=start + i,
            prompt=f"Question {start + i}",
            responses=[
                {"key": key, "text": f"Answer {key}", "model": f"model-{key}"}
                for key in "ABC"[:responses]
            ],
            is_gold=gold,
            gold_answers={"pref": "A"} if gold else {},
        )
        for i in range(1, n + 1)
    ]


def answer_next(study, user, answers=None):
    """Take the next item and answer it, as the labelling page does; None when nothing is left."""
    reservation = next_item(study, user)
    if reservation is None:
        return None
    return submit(
        study, user, reservation.item, answers or {"pref": "A"}, submission_id=uuid.uuid4()
    )


def imported_label(item, user, *, is_current=True):
    """A human label that arrived by import, not through the labelling page."""
    label = Annotation.objects.create(
        item=item,
        rater=rater_for(user),
        rubric_version=item.study.rubric_version,
        answers={"pref": "A"},
        source=Annotation.Source.IMPORT,
        is_current=is_current,
    )
    Item.objects.filter(pk=item.pk).recount_labels()  # as the label importer does
    return label


def handed_out(study, user):
    """External ids of the items the annotator is given, skipping each, until none is left."""
    ids = []
    while (reservation := next_item(study, user)) is not None:
        ids.append(reservation.item.external_id)
        skip(study, user, reservation.item)
    return ids


def test_it_reserves_an_item_for_the_study_reservation_minutes():
    study = open_study(reservation_minutes=15)
    first, _ = add_items(study, 2)
    bob = annotator("bob", study)

    before = timezone.now()
    reservation = next_item(study, bob)
    after = timezone.now()

    assert reservation.item == first
    assert reservation.user == bob
    assert reservation.rubric_version == study.rubric_version
    assert before + timedelta(minutes=15) <= reservation.expires_at
    assert reservation.expires_at <= after + timedelta(minutes=15)
    assert list(Reservation.objects.all()) == [reservation]


def test_it_hands_back_the_same_reservation_on_a_repeat_request():
    study = open_study()
    add_items(study, 3)
    bob = annotator("bob", study)

    first = next_item(study, bob)
    again = next_item(study, bob)

    assert again == first
    assert Reservation.objects.filter(user=bob).count() == 1


def test_it_keeps_reservations_in_another_study_apart():
    one, other = open_study("one"), open_study("other")
    add_items(one, 1)
    (theirs,) = add_items(other, 1)
    bob = annotator("bob", one)

    next_item(one, bob)
    reservation = next_item(other, bob)

    assert reservation.item == theirs


def test_it_never_hands_out_an_item_the_annotator_labelled_or_skipped():
    study = open_study(overlap=3)
    labelled, skipped, fresh = add_items(study, 3)
    bob = annotator("bob", study)
    imported_label(labelled, bob)
    skip(study, bob, skipped)

    reservation = next_item(study, bob)
    skip(study, bob, reservation.item)

    assert reservation.item == fresh
    assert next_item(study, bob) is None


def test_it_does_not_hand_out_an_item_the_annotator_revised_before():
    study = open_study(overlap=3)
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    imported_label(item, bob, is_current=False)  # only history is left of bob's label

    assert next_item(study, bob) is None


def test_it_counts_live_reservations_toward_the_overlap():
    study = open_study(overlap=2)
    (item,) = add_items(study, 1)
    bob, carol, dave = (annotator(name, study) for name in ("bob", "carol", "dave"))

    assert next_item(study, bob).item == item
    assert next_item(study, carol).item == item
    assert next_item(study, dave) is None


def test_it_counts_submitted_labels_toward_the_overlap():
    study = open_study(overlap=2)
    (item,) = add_items(study, 1)
    bob, carol, dave = (annotator(name, study) for name in ("bob", "carol", "dave"))

    answer_next(study, bob)
    answer_next(study, carol)

    assert item.annotations.count() == 2
    assert next_item(study, dave) is None


def test_it_returns_an_expired_reservation_to_the_pool_at_the_next_request():
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    held = next_item(study, bob)
    assert next_item(study, carol) is None

    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    reservation = next_item(study, carol)

    assert reservation.item == item
    assert reservation.user == carol
    assert not Reservation.objects.filter(pk=held.pk).exists()


def test_it_gives_an_annotator_a_new_item_once_their_own_reservation_expired():
    study = open_study(overlap=1)
    add_items(study, 2)
    bob = annotator("bob", study)
    held = next_item(study, bob)

    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    reservation = next_item(study, bob)

    assert reservation.pk != held.pk
    assert reservation.expires_at > timezone.now()
    assert list(Reservation.objects.all()) == [reservation]


def test_it_does_not_count_judge_labels_toward_the_overlap():
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    judge = Rater.objects.create(kind=Rater.Kind.LLM, name="judge-a")
    Annotation.objects.create(
        item=item,
        rater=judge,
        rubric_version=study.rubric_version,
        answers={"pref": "B"},
        source=Annotation.Source.JUDGE,
    )
    bob = annotator("bob", study)

    assert next_item(study, bob).item == item


def test_it_does_not_count_the_history_of_revised_labels_toward_the_overlap():
    study = open_study(overlap=2)
    (item,) = add_items(study, 1)
    dave = annotator("dave", study)
    imported_label(item, dave, is_current=False)
    imported_label(item, dave)
    bob, carol = annotator("bob", study), annotator("carol", study)

    assert next_item(study, bob).item == item
    assert next_item(study, carol) is None


def label_counts(study):
    return dict(study.items.values_list("external_id", "human_labels"))


def test_it_counts_each_items_current_human_labels_as_they_arrive():
    study = open_study(overlap=3)
    add_items(study, 2)
    bob = annotator("bob", study)
    reservation = next_item(study, bob)
    sent = uuid.uuid4()
    submit(study, bob, reservation.item, {"pref": "A"}, submission_id=sent)
    submit(study, bob, reservation.item, {"pref": "A"}, submission_id=sent)  # a retry
    submit(study, bob, reservation.item, {"pref": "B"}, submission_id=uuid.uuid4())  # revised

    assert label_counts(study) == {"q1": 1, "q2": 0}


def test_it_corrects_a_label_counter_that_fell_behind_under_the_items_lock():
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    dave = annotator("dave", study)
    imported_label(item, dave)
    Item.objects.filter(pk=item.pk).update(human_labels=0)  # e.g. a label written by hand

    assert next_item(study, annotator("bob", study)) is None
    assert label_counts(study) == {"q1": 1}


def test_it_hands_out_fresh_items_in_import_order():
    study = open_study()
    add_items(study, 3)
    bob = annotator("bob", study)

    assert handed_out(study, bob) == ["q1", "q2", "q3"]


def test_it_does_not_hand_out_items_routed_to_the_expert_queue():
    study = open_study()
    _, routed, _ = add_items(study, 3)
    routed.routed_at, routed.routed_reason = timezone.now(), "no majority"
    routed.save()
    bob = annotator("bob", study)

    assert handed_out(study, bob) == ["q1", "q3"]


def test_it_does_not_hand_out_gold_items_routed_to_the_expert_queue():
    study = open_study(gold_rate=1.0)
    (gold,) = add_items(study, 1, gold=True)
    Item.objects.filter(pk=gold.pk).update(routed_at=timezone.now())
    add_items(study, 1)
    bob = annotator("bob", study)

    assert handed_out(study, bob) == ["q2"]


def test_it_finishes_the_fullest_partly_labelled_items_first():
    study = open_study(overlap=3)
    _, _, two_labels, one_label = add_items(study, 4)
    dave, erin = annotator("dave", study), annotator("erin", study)
    imported_label(two_labels, dave)
    imported_label(two_labels, erin)
    imported_label(one_label, dave)
    bob = annotator("bob", study)

    assert handed_out(study, bob) == ["q3", "q4", "q1", "q2"]


def test_it_hands_out_gold_items_first_at_a_gold_rate_of_one():
    study = open_study(gold_rate=1.0)
    add_items(study, 2)
    add_items(study, 2, gold=True)
    bob = annotator("bob", study)

    assert handed_out(study, bob) == ["g3", "g4", "q1", "q2"]


def test_it_hands_out_gold_items_only_after_the_regular_ones_at_a_gold_rate_of_zero():
    study = open_study(gold_rate=0.0)
    add_items(study, 1, gold=True)
    add_items(study, 2)
    bob = annotator("bob", study)

    assert handed_out(study, bob) == ["q2", "q3", "g1"]


def test_it_shows_every_annotator_each_gold_item_once_whatever_the_overlap():
    study = open_study(overlap=1, gold_rate=1.0)
    (gold,) = add_items(study, 1, gold=True)
    (regular,) = add_items(study, 1)
    bob, carol, dave = (annotator(name, study) for name in ("bob", "carol", "dave"))

    bob_items = [answer_next(study, bob).item for _ in range(2)]
    carol_gold = answer_next(study, carol).item
    dave_gold = next_item(study, dave).item

    assert bob_items == [gold, regular]
    assert answer_next(study, bob) is None
    assert carol_gold == dave_gold == gold
    assert answer_next(study, carol) is None  # the regular item has its one label
    assert gold.annotations.count() == 2


def test_it_interleaves_gold_items_at_about_the_gold_rate():
    study = open_study(gold_rate=0.5)
    add_items(study, 60)
    add_items(study, 60, gold=True)
    bob = annotator("bob", study)

    first_sixty = [Item.objects.get(external_id=i).is_gold for i in handed_out(study, bob)[:60]]

    # Binomial(60, 0.5): 30 ± 3.9; outside 15..45 about once in ten thousand runs.
    assert 15 <= sum(first_sixty) <= 45


@pytest.mark.parametrize("status", [Study.Status.DRAFT, Study.Status.PAUSED, Study.Status.CLOSED])
def test_it_hands_out_nothing_unless_the_study_is_open(status):
    study = make_study(status=status)
    add_items(study, 2)
    bob = annotator("bob", study)

    assert next_item(study, bob) is None
    assert not Reservation.objects.exists()


def test_it_withholds_a_held_reservation_while_the_study_is_paused():
    study = open_study()
    add_items(study, 2)
    bob = annotator("bob", study)
    held = next_item(study, bob)

    study.status = Study.Status.PAUSED
    study.save()
    while_paused = next_item(study, bob)
    study.status = Study.Status.OPEN
    study.save()

    assert while_paused is None
    assert next_item(study, bob) == held


def test_it_shows_a_pair_in_a_random_order_when_the_study_randomises():
    study = open_study(randomise_order=True)
    add_items(study, 40)
    bob = annotator("bob", study)

    orders = []
    while (reservation := next_item(study, bob)) is not None:
        orders.append(reservation.order)
        skip(study, bob, reservation.item)

    # Both orders turn up: all forty the same happens once in 2**39 runs.
    assert len(orders) == 40
    assert set(orders) == {"AB", "BA"}


def test_it_shows_a_pair_as_imported_when_the_study_does_not_randomise():
    study = open_study(randomise_order=False)
    add_items(study, 10)
    bob = annotator("bob", study)

    orders = []
    while (reservation := next_item(study, bob)) is not None:
        orders.append(reservation.order)
        skip(study, bob, reservation.item)

    assert orders == ["AB"] * 10


def test_it_records_no_order_when_there_is_no_pair_to_compare():
    likert = open_study("likert", rubric=LIKERT_RUBRIC)
    add_items(likert, 1)
    pairwise = open_study("three")
    add_items(pairwise, 1, responses=3)
    bob = annotator("bob", likert)

    assert next_item(likert, bob).order == ""
    assert next_item(pairwise, bob).order == ""


def test_it_reserves_new_items_against_the_rubric_s_latest_version():
    study = open_study(overlap=2)
    add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    before = next_item(study, bob)

    study.rubric.revise({**study.rubric_version.definition, "name": "Pairwise v2"})
    after = next_item(Study.objects.get(pk=study.pk), carol)

    assert before.rubric_version.number == 1
    assert after.rubric_version.number == 2
