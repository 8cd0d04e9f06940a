"""The assignment engine: which item an annotator labels next, and taking their answer.

Invariants, under any number of web processes:
- an item has at most `overlap` current human labels plus live reservations (gold items,
  which every annotator sees once, excepted);
- no annotator is handed an item they labelled or skipped;
- a submission is stored once, however often the client retries it.

Handing out an item locks that item's row (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL;
SQLite serialises writers) and counts its labels and reservations again under the lock, so
two annotators can never both take the last place on an item. Expired reservations are
deleted lazily, at the next request, so no scheduler is needed.
"""

import random
import time
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation import quality
from annotation.consumers import announce_progress
from annotation.models import Annotation, Item, Rater, Reservation, Skip, Study

CANDIDATES = 20  # items tried per pass
LOCKED_RETRY_SECONDS = 2.0  # how long to look again while others hold candidate items


class InvalidSubmission(ValueError):
    """Answers that do not fit the rubric version the item was shown with."""


def next_item(study, user):
    """The annotator's current reservation, or a new one; None when there is nothing left.

    Partly labelled items come first, so that complete items accrue early; gold items are
    interleaved at the study's gold rate, and come alone while the annotator qualifies.
    Items routed to the expert queue are not handed out. Paused annotators get nothing.
    """
    if study.status != Study.Status.OPEN or quality.is_paused(study, user):
        return None
    now = timezone.now()
    qualifying = quality.is_qualifying(study, user)
    with transaction.atomic():
        held = (
            Reservation.objects.filter(item__study=study, user=user, expires_at__gt=now)
            .select_related("item")
            .first()
        )
        if held:
            return held
        Reservation.objects.filter(item__study=study, expires_at__lte=now).delete()
        gold_first = qualifying or (study.gold_rate > 0 and random.random() < study.gold_rate)
        kinds = (True,) if qualifying else (gold_first, not gold_first)
        deadline = time.monotonic() + LOCKED_RETRY_SECONDS
        while True:
            busy = False
            for gold in kinds:
                reservation, locked = _reserve_one(study, user, now, gold=gold)
                if reservation:
                    return reservation
                busy = busy or locked
            # Items that others were reserving at this instant may still have room: look
            # again rather than tell the annotator that nothing is left.
            if not busy or time.monotonic() > deadline:
                return None
            time.sleep(0.005)


def _reserve_one(study, user, now, *, gold):
    """(a new reservation or None, whether some candidate was locked by someone else)."""
    candidates = _candidates(study, user, now, gold=gold).values_list("pk", flat=True)
    locked_by_others = False
    for pk in candidates[:CANDIDATES]:
        locked = Item.objects.filter(pk=pk)
        if connection.features.has_select_for_update_skip_locked:
            locked = locked.select_for_update(skip_locked=True)
        item = locked.first()
        if item is None:
            locked_by_others = True  # another annotator holds this item's lock right now
            continue
        if not gold and _taken(item, now) >= study.overlap:
            continue
        return Reservation.objects.create(
            item=item,
            user=user,
            rubric_version=study.rubric_version,
            order=_order(study, item),
            expires_at=now + timedelta(minutes=study.reservation_minutes),
        ), False
    return None, locked_by_others


def _candidates(study, user, now, *, gold):
    """Items the user may take, fullest first, by the items' label counters; the exact
    count is taken again under the item's lock."""
    items = (
        Item.objects.filter(study=study, is_gold=gold, routed_at__isnull=True)
        .exclude(annotations__rater__user=user)
        .exclude(skips__user=user)
        .exclude(reservations__user=user)
    )
    if gold:
        return items.order_by("position")
    held = (
        Reservation.objects.filter(item=OuterRef("pk"), expires_at__gt=now)
        .order_by()
        .values("item")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        items.filter(human_labels__lt=study.overlap)
        .annotate(held=Coalesce(Subquery(held), 0))
        .filter(human_labels__lt=study.overlap - F("held"))
        .order_by("-human_labels", "position")
    )


def _taken(item, now):
    """Labels plus live reservations of a locked item; its label counter is set right."""
    labels = item.annotations.current().filter(rater__kind=Rater.Kind.HUMAN).count()
    if labels != item.human_labels:
        Item.objects.filter(pk=item.pk).update(human_labels=labels)
    return labels + item.reservations.filter(expires_at__gt=now).count()


def _order(study, item):
    if not study.rubric_version.parsed.has("pairwise") or len(item.responses) != 2:
        return ""
    if not study.randomise_order:
        return "AB"
    return random.choice(("AB", "BA"))


def submit(study, user, item, answers, *, submission_id, active_seconds=None):
    """Store the annotator's answers to an item; a retried submission returns the first.

    Answers are checked against the rubric version the item was reserved with. Answering an
    item labelled before revises it: the earlier label stays as history.
    """
    done = Annotation.objects.filter(submission_id=submission_id).first()
    if done:
        return done
    if study.status != Study.Status.OPEN:
        raise InvalidSubmission("the study is not open")
    rater = rater_for(user)
    with transaction.atomic():
        # Locked, so that no one can expire this reservation and take its place meanwhile.
        reservation = (
            Reservation.objects.select_for_update(of=("self",))  # not the shared version row
            .select_related("rubric_version")
            .filter(item=item, user=user)
            .first()
        )
        previous = item.annotations.current().filter(rater=rater).first()
        if reservation is None and previous is None:
            raise InvalidSubmission("this item is not reserved for you; open the next item")
        version = reservation.rubric_version if reservation else previous.rubric_version
        order = reservation.order if reservation else previous.order
        cleaned = clean_answers(version.parsed, item, answers)
        try:
            with transaction.atomic():
                if previous:
                    previous.is_current = False
                    previous.save(update_fields=["is_current"])
                annotation = Annotation.objects.create(
                    item=item,
                    rater=rater,
                    rubric_version=version,
                    answers=cleaned,
                    order=order,
                    source=Annotation.Source.UI,
                    started_at=reservation.created_at if reservation else None,
                    submitted_at=timezone.now(),
                    active_seconds=active_seconds,
                    submission_id=submission_id,
                )
                if previous is None:
                    Item.objects.filter(pk=item.pk).update(human_labels=F("human_labels") + 1)
        except IntegrityError:
            # The same submission arrived twice at once: the other request stored it.
            annotation = Annotation.objects.get(submission_id=submission_id)
        if reservation:
            reservation.delete()
        quality.review_after_label(study, user, annotation)
        transaction.on_commit(lambda: announce_progress(study))
    return annotation


def skip(study, user, item):
    """Record that the annotator passed on the item and release their reservation."""
    if study.status != Study.Status.OPEN:
        raise InvalidSubmission("the study is not open")
    with transaction.atomic():
        Skip.objects.get_or_create(item=item, user=user)
        Reservation.objects.filter(item=item, user=user).delete()


def clean_answers(rubric, item, answers):
    """Answers keyed by question cell, in stored form; required questions must be there."""
    cleaned = {}
    for cell, value in answers.items():
        if value in ("", None):
            continue
        try:
            _, cleaned[cell] = rubric.clean(
                cell, value, item_checklist=item.checklist, response_keys=item.response_keys
            )
        except ValueError as e:
            raise InvalidSubmission(f"{cell}: {e}") from None
    for q in rubric.questions:
        if not q.required:
            continue
        cells = (
            [f"{q.key}[{i}]" for i in range(len(q.checklist_for(item.checklist)))]
            if q.type == "checklist"
            else [q.key]
        )
        missing = [c for c in cells if c not in cleaned]
        if missing:
            raise InvalidSubmission(f"{missing[0]}: an answer is required")
    for cell, problem in rubric.strength_problems(cleaned, complete=True):
        raise InvalidSubmission(f"{cell}: {problem}")
    return cleaned


def rater_for(user):
    """The rater that stands for a user's own labels, made on their first label."""
    rater, _ = Rater.objects.get_or_create(
        user=user, defaults={"kind": Rater.Kind.HUMAN, "name": user.get_username()}
    )
    return rater
