"""The assignment engine under many annotators at once, each on their own connection.

Every annotator runs in a thread with its own database connection, as web workers would, so
these tests commit for real (`transaction=True`) and hold on both SQLite and PostgreSQL.
"""

import contextlib
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from conftest import make_study, make_user
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from annotation.assignment import InvalidSubmission, next_item, submit
from annotation.models import Annotation, Item, Rater, Reservation, Study, StudyMembership

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = 30
OVERLAP = 3
ANNOTATORS = 16
WAIT = 10  # seconds a thread waits for another before the test gives up on it


def open_study(slug="s1", **fields):
    return make_study(slug, status=Study.Status.OPEN, **fields)


def annotator(username, study):
    """An annotator who never logs in here: no password, so no slow hashing."""
    return make_user(username, StudyMembership.Role.ANNOTATOR, study, password=None)


def add_items(study, n):
    return [
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt=f"Question {i}",
            responses=[
                {"key": "A", "text": "Answer A", "model": "model-a"},
                {"key": "B", "text": "Answer B", "model": "model-b"},
            ],
        )
        for i in range(1, n + 1)
    ]


def in_threads(work, args):
    """Run `work(arg)` for each arg in its own thread and connection, all starting together."""
    start = threading.Barrier(len(args))

    def run(arg):
        try:
            start.wait(timeout=WAIT)
            return work(arg)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(args)) as pool:
        return list(pool.map(run, args))  # re-raises the first thread's exception


def places_taken(study):
    """Per item: (current human labels, live reservations), read in one statement."""
    now = timezone.now()
    rows = study.items.annotate(
        labels=Count(
            "annotations",
            filter=Q(annotations__is_current=True, annotations__rater__kind=Rater.Kind.HUMAN),
            distinct=True,
        ),
        held=Count("reservations", filter=Q(reservations__expires_at__gt=now), distinct=True),
    ).values_list("external_id", "labels", "held")
    return {external_id: (labels, held) for external_id, labels, held in rows}


def test_it_fills_every_item_exactly_to_its_overlap_however_many_annotators_ask_at_once():
    study = open_study(overlap=OVERLAP)
    add_items(study, ITEMS)
    users = [annotator(f"annotator{n:02}", study) for n in range(ANNOTATORS)]
    overfull = []

    def label_until_done(user_pk):
        """One annotator's session: take, answer (a double click now and then), repeat."""
        study_here = Study.objects.get(pk=study.pk)
        user = User.objects.get(pk=user_pk)
        handed, acknowledged = [], []
        while (reservation := next_item(study_here, user)) is not None:
            handed.append(reservation.item_id)
            overfull.extend(
                (item, places)
                for item, places in places_taken(study_here).items()
                if sum(places) > OVERLAP
            )
            submission_id = uuid.uuid4()
            answers = {"pref": random.choice(["A", "B", "tie"])}
            annotation = submit(
                study_here, user, reservation.item, answers, submission_id=submission_id
            )
            if random.random() < 0.25:
                again = submit(
                    study_here, user, reservation.item, answers, submission_id=submission_id
                )
                assert again.pk == annotation.pk
            acknowledged.append((submission_id, reservation.item_id, user_pk))
        return handed, acknowledged

    sessions = in_threads(label_until_done, [u.pk for u in users])

    acknowledged = [ack for _, acks in sessions for ack in acks]
    stored = {
        (a.submission_id, a.item_id, a.rater.user_id)
        for a in Annotation.objects.select_related("rater")
    }
    assert overfull == []
    for handed, _ in sessions:
        assert len(handed) == len(set(handed)), "an annotator was given an item twice"
    assert set(acknowledged) <= stored, "an acknowledged submission is missing"
    assert len(stored) == len(acknowledged)
    assert not Reservation.objects.exists()
    assert set(places_taken(study).values()) == {(OVERLAP, 0)}
    assert Annotation.objects.count() == ITEMS * OVERLAP
    assert Annotation.objects.current().count() == ITEMS * OVERLAP
    pairs = Annotation.objects.values("item", "rater").annotate(n=Count("id"))
    assert {p["n"] for p in pairs} == {1}, "an annotator labelled an item twice"


def test_it_gives_the_last_place_on_an_item_to_exactly_one_of_two_racing_annotators():
    rounds = []
    for n in range(10):
        study = open_study(f"race{n}", overlap=1)
        add_items(study, 1)
        rounds.append((study, annotator(f"bob{n}", study), annotator(f"carol{n}", study)))

    for study, bob, carol in rounds:

        def race(user, study=study):
            return next_item(Study.objects.get(pk=study.pk), user)

        won = [r for r in in_threads(race, [bob, carol]) if r is not None]

        assert len(won) == 1
        assert list(Reservation.objects.filter(item__study=study)) == won


def test_it_gives_the_last_place_on_a_partly_labelled_item_to_one_of_many():
    study = open_study(overlap=3)
    (item,) = add_items(study, 1)
    for name in ("dave", "erin"):
        user = annotator(name, study)
        submit(study, user, next_item(study, user).item, {"pref": "A"}, submission_id=uuid.uuid4())
    racers = [annotator(f"racer{n}", study) for n in range(8)]

    won = [
        r
        for r in in_threads(lambda user: next_item(Study.objects.get(pk=study.pk), user), racers)
        if r is not None
    ]

    assert len(won) == 1
    assert item.annotations.count() + item.reservations.count() == 3


def test_it_stores_one_current_label_when_a_retry_arrives_while_the_first_is_being_stored():
    """A double click: the second request has found no label yet when the first one commits."""
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)
    submission_id = uuid.uuid4()
    looked, first_stored = threading.Event(), threading.Event()

    def pause_after_looking_for_the_submission(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not looked.is_set() and sql.startswith("SELECT") and '"submission_id" =' in sql:
            looked.set()
            first_stored.wait(timeout=WAIT)
        return result

    def request(slow):
        if slow:
            with connection.execute_wrapper(pause_after_looking_for_the_submission):
                return submit(study, bob, item, {"pref": "A"}, submission_id=submission_id)
        assert looked.wait(timeout=WAIT)
        try:
            return submit(study, bob, item, {"pref": "A"}, submission_id=submission_id)
        finally:
            first_stored.set()

    slow, fast = in_threads(request, [True, False])

    assert slow.pk == fast.pk
    assert Annotation.objects.count() == 1
    assert Annotation.objects.get().is_current, "the only label of this submission is history"
    assert item.annotations.current().count() == 1


def test_it_never_hands_out_the_place_of_an_expired_reservation_that_is_being_answered():
    """Bob answers just after his reservation expired, as Carol asks for an item."""
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    bob, carol = annotator("bob", study), annotator("carol", study)
    held = next_item(study, bob)
    Reservation.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    label_written, carol_asked = threading.Event(), threading.Event()

    def pause_before_releasing_the_reservation(execute, sql, params, many, context):
        if sql.startswith("DELETE") and "annotation_reservation" in sql:
            label_written.set()
            # Where Carol has to wait for Bob (SQLite's write lock, or a lock a fix takes) this
            # times out and Bob commits first; otherwise Carol asks while the label is unwritten.
            carol_asked.wait(timeout=3)
        return execute(sql, params, many, context)

    def request(user):
        if user == bob:
            with connection.execute_wrapper(pause_before_releasing_the_reservation):
                try:
                    return submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())
                except InvalidSubmission as e:
                    return e  # refusing the late answer keeps the invariant too
        assert label_written.wait(timeout=WAIT)
        try:
            return next_item(Study.objects.get(pk=study.pk), carol)
        finally:
            carol_asked.set()

    in_threads(request, [bob, carol])

    labels, held = places_taken(study)["q1"]
    assert labels + held <= 1, f"{labels} label and {held} live reservation on an item needing 1"


def test_two_windows_revising_one_item_at_once_store_one_current_label():
    """Bob changes his answer in two tabs at the same moment: each tab read his label before
    either wrote. One revision is stored; the other is refused with a message, never a 500."""
    study = open_study(overlap=1)
    (item,) = add_items(study, 1)
    bob = annotator("bob", study)
    next_item(study, bob)
    submit(study, bob, item, {"pref": "A"}, submission_id=uuid.uuid4())
    both_read = threading.Barrier(2)

    def pause_after_reading_the_label(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("SELECT") and '"is_current"' in sql and "annotation_annotation" in sql:
            # SQLite lets one writer in at a time: there the other tab comes after.
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait(timeout=2)
        return result

    def revise(answer):
        with connection.execute_wrapper(pause_after_reading_the_label):
            try:
                return submit(study, bob, item, {"pref": answer}, submission_id=uuid.uuid4())
            except InvalidSubmission as e:
                return e

    results = in_threads(revise, ["B", "tie"])

    stored = [r for r in results if isinstance(r, Annotation)]
    refused = [r for r in results if isinstance(r, InvalidSubmission)]
    assert len(stored) + len(refused) == 2 and stored
    assert all("another window" in str(e) for e in refused)
    current = item.annotations.current().get()
    assert current.answers["pref"] in ("B", "tie")


def test_it_gives_every_annotator_an_item_when_many_ask_at_once_for_a_few_items():
    """A crowd study's launch: everyone arrives together, and every item needs them all."""
    study = open_study(overlap=ANNOTATORS)
    add_items(study, 2)
    users = [annotator(f"annotator{n:02}", study) for n in range(ANNOTATORS)]

    reservations = in_threads(lambda user: next_item(Study.objects.get(pk=study.pk), user), users)

    told_done = [u.username for u, r in zip(users, reservations, strict=True) if r is None]
    assert told_done == [], "told there is nothing left while every item has places open"
    assert Reservation.objects.count() == ANNOTATORS


def test_it_reclaims_expired_reservations_when_many_annotators_ask_at_once():
    study = open_study(overlap=1)
    items = add_items(study, 2 * ANNOTATORS)
    users = [annotator(f"annotator{n:02}", study) for n in range(ANNOTATORS)]
    Reservation.objects.bulk_create(
        Reservation(
            item=item,
            user=users[n // 2],
            rubric_version=study.rubric_version,
            order="AB",
            expires_at=timezone.now() - timedelta(minutes=1),
        )
        for n, item in enumerate(items)
    )

    reservations = in_threads(lambda user: next_item(Study.objects.get(pk=study.pk), user), users)

    assert None not in reservations
    assert len({r.item_id for r in reservations}) == ANNOTATORS
    assert Reservation.objects.count() == ANNOTATORS
    assert not Reservation.objects.filter(expires_at__lte=timezone.now()).exists()
