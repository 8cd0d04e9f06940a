"""The assignment engine: which item an annotator labels next, and taking their answer.

Invariants, under any number of web processes:
- an item has at most `overlap` current human labels plus live reservations, and as many
  more as experts asked for when sending it back (gold items, which every annotator sees
  once, excepted);
- no annotator is handed an item they labelled or skipped;
- a submission is stored once, however often the client retries it.

Handing out an item locks that item's row (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL,
in the same statement that picks it; SQLite serialises writers) and counts its labels and
reservations again under the lock, so two annotators can never both take the last place on
an item. An expired reservation keeps its place until it is deleted, which happens lazily,
at a later request, outside any item's lock (a late answer to it may be holding its row), so
no scheduler is needed: when its holder asks again, and when an annotator meets an item held
only by expired reservations. An answer that arrives after its reservation was deleted takes
a place still free under the item's lock, as a new reservation would.
"""

import random
import time
from datetime import timedelta

from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation import quality
from annotation.consumers import announce_progress
from annotation.models import Annotation, Item, Rater, Reservation, RubricVersion, Skip, Study
from annotation.signals import labels_settled, labels_written

CANDIDATES = 20  # items tried per pass
LOCKED_RETRY_SECONDS = 2.0  # how long to look again while others hold candidate items
TICKET_SALT = "quorum.assignment.ticket"


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
    held = _held(study, user, now)
    if held:
        return held
    if _reached_target(study, user):
        return None
    qualifying = quality.is_qualifying(study, user)
    gold_first = qualifying or (study.gold_rate > 0 and random.random() < study.gold_rate)
    kinds = (True,) if qualifying else (gold_first, not gold_first)
    deadline = time.monotonic() + LOCKED_RETRY_SECONDS
    while True:
        busy = stale = False
        for gold in kinds:
            with transaction.atomic():
                reservation, locked, expired = _reserve_one(study, user, now, gold=gold)
            if reservation:
                return reservation
            busy, stale = busy or locked, stale or expired
        if stale:
            # Places held only by expired reservations: free them, then look again.
            Reservation.objects.filter(item__study=study, expires_at__lte=now).delete()
        # Items that others were reserving at this instant may still have room: look
        # again rather than tell the annotator that nothing is left.
        elif not busy:
            return None
        if time.monotonic() > deadline:
            return None
        if busy:
            time.sleep(0.005)


def has_work(study, user):
    """Whether the study has an item the user could be handed now (nothing is reserved)."""
    if study.status != Study.Status.OPEN or quality.is_paused(study, user):
        return False
    now = timezone.now()
    if _held(study, user, now):
        return True
    if _reached_target(study, user):
        return False
    kinds = (True,) if quality.is_qualifying(study, user) else (True, False)
    return any(_candidate(study, user, now, gold=gold, tried=[]) for gold in kinds)


def _reached_target(study, user):
    """Whether the user has labelled the study's items_per_annotator (when it sets one)."""
    target = study.items_per_annotator
    return bool(target) and study.labels_by(user).count() >= target


def _held(study, user, now):
    """The user's live reservation in the study, if any; their expired ones are let go."""
    mine = Reservation.objects.filter(item__study=study, user=user)
    held = mine.select_related("item", "rubric_version").order_by("-expires_at").first()
    if held is None or held.expires_at > now:
        return held
    mine.filter(expires_at__lte=now).delete()
    return None


def _reserve_one(study, user, now, *, gold):
    """(a new reservation or None, whether a candidate was locked by someone else, whether
    one was full only because of expired reservations)."""
    skip_locked = connection.features.has_select_for_update_skip_locked
    tried, expired_seen = [], False
    for _ in range(CANDIDATES):
        item = _candidate(study, user, now, gold=gold, tried=tried, lock=skip_locked)
        if item is None:
            # Rows others hold are invisible to a locking read: look without locking.
            locked = skip_locked and _candidate(study, user, now, gold=gold, tried=tried)
            return None, bool(locked), expired_seen
        labels, live, expired = _places(item, now)
        if gold or labels + live + expired < item.labels_needed(study):
            reservation = Reservation.objects.create(
                item=item,
                user=user,
                rubric_version=study.rubric_version,
                order=_order(study, item),
                expires_at=now + timedelta(minutes=study.reservation_minutes),
            )
            return reservation, False, expired_seen
        expired_seen = expired_seen or labels + live < item.labels_needed(study)
        tried.append(item.pk)
    return None, False, expired_seen


# The hot path's statements are written out: the ORM took longer to build them than the
# database to run them. Tables are the models' (app_model).
CANDIDATE_SQL = """
SELECT i.* FROM annotation_item i
WHERE i.study_id = %s AND i.is_gold = %s AND i.routed_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM annotation_annotation a
        JOIN annotation_rater r ON r.id = a.rater_id WHERE a.item_id = i.id AND r.user_id = %s)
    AND NOT EXISTS (SELECT 1 FROM annotation_skip s WHERE s.item_id = i.id AND s.user_id = %s)
    AND NOT EXISTS (SELECT 1 FROM annotation_reservation v
        WHERE v.item_id = i.id AND v.user_id = %s)
"""
# A regular item with room by its label counter and the live reservations on it. The first
# two comparisons follow from the last. Fullest first, the walk would meet every full item
# first: the first starts it below them (a range of the next_item_order index, up to the most
# labels any item of the study needs, by the items_sent_back index), the second passes over
# those left without counting their reservations. In a study of 100,000 full items the
# query took 165 ms, now 1.
ROOM_SQL = """
    AND i.human_labels < %s + (SELECT COALESCE(MAX(m.extra_labels), 0) FROM annotation_item m
        WHERE m.study_id = %s AND m.extra_labels > 0)
    AND i.human_labels < %s + i.extra_labels
    AND i.human_labels + (SELECT COUNT(*) FROM annotation_reservation v
        WHERE v.item_id = i.id AND v.expires_at > %s) < %s + i.extra_labels
"""
PLACES_SQL = """
SELECT
    (SELECT COUNT(*) FROM annotation_annotation a
        JOIN annotation_rater r ON r.id = a.rater_id
        WHERE a.item_id = %s AND a.is_current AND r.kind = %s),
    (SELECT COUNT(*) FROM annotation_reservation WHERE item_id = %s AND expires_at > %s),
    (SELECT COUNT(*) FROM annotation_reservation WHERE item_id = %s AND expires_at <= %s)
"""


def _candidate(study, user, now, *, gold, tried, lock=False):
    """The first item the user may take, fullest first by the items' label counters (the
    exact count is taken again under the item's lock), not one of `tried`; with `lock`,
    locked for this transaction, passing over items others are locking at this instant."""
    sql, params = CANDIDATE_SQL, [study.pk, gold, user.pk, user.pk, user.pk]
    if not gold:
        sql += ROOM_SQL
        at = connection.ops.adapt_datetimefield_value(now)
        params += [study.overlap, study.pk, study.overlap, at, study.overlap]
    if tried:
        sql += f" AND i.id NOT IN ({', '.join(['%s'] * len(tried))})"
        params += tried
    sql += " ORDER BY i.position" if gold else " ORDER BY i.human_labels DESC, i.position"
    sql += " LIMIT 1"
    if lock:
        sql += " FOR UPDATE SKIP LOCKED"
    return next(iter(Item.objects.raw(sql, params)), None)


def _places(item, now):
    """(current human labels, live reservations, expired reservations) of a locked item; its
    label counter is set right on the way."""
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(PLACES_SQL, [item.pk, Rater.Kind.HUMAN.value, item.pk, at, item.pk, at])
        labels, live, expired = cursor.fetchone()
    if labels != item.human_labels:
        Item.objects.filter(pk=item.pk).update(human_labels=labels)
    return labels, live, expired


def _order(study, item):
    if not study.rubric_version.parsed.has("pairwise") or len(item.responses) != 2:
        return ""
    if not study.randomise_order:
        return "AB"
    return random.choice(("AB", "BA"))


def submit(study, user, item, answers, *, submission_id, active_seconds=None, ticket=""):
    """Store the annotator's answers to an item; a retried submission returns the first.

    Answers are checked against the rubric version the item was reserved with. Answering an
    item labelled before revises it: the earlier label stays as history. An answer whose
    reservation expired and was let go still takes a place if the item has one free, when
    it brings the page's `ticket` (see `ticket_for`).
    """
    done = Annotation.objects.filter(
        submission_id=submission_id, item=item, rater__user=user
    ).first()
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
        if reservation:
            version, order = reservation.rubric_version, reservation.order
        elif previous:
            version, order = previous.rubric_version, previous.order
        elif (shown := _ticket_shows(ticket, item, user)) and _place_for_late_answer(
            study, user, item
        ):
            version, order = shown
        else:
            raise InvalidSubmission(
                "your time on this item ran out and others have taken its places; "
                "open the next item"
            )
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
            # The same submission arrived twice at once, and the other request stored it; or
            # another page of the same item (a second tab) was answered at this instant.
            annotation = Annotation.objects.filter(submission_id=submission_id).first()
            if annotation is None:
                raise InvalidSubmission(
                    "this item was answered in another window at the same moment; "
                    "open it again to change that answer"
                ) from None
        if reservation:
            reservation.delete()
        quality.review_gold(study, user, item)
        complete = Q(human_labels__gte=study.overlap + F("extra_labels"))
        if Item.objects.filter(complete, pk=item.pk).exists():
            labels_settled.send(sender=Annotation, study=study, items=[item.pk])
        labels_written.send(sender=Annotation, study=study)
        transaction.on_commit(lambda: announce_progress(study))
    return annotation


def _place_for_late_answer(study, user, item):
    """Whether the item, locked now, has a place for the user's answer after all: not routed
    to experts, not skipped by them, and fewer labels and reservations (expired ones too, whose
    holders may still answer) than the overlap."""
    item = Item.objects.select_for_update().get(pk=item.pk)
    if item.routed_at or Skip.objects.filter(item=item, user=user).exists():
        return False
    labels, live, expired = _places(item, timezone.now())
    return item.is_gold or labels + live + expired < item.labels_needed(study)


def ticket_for(reservation):
    """A signed note, carried by the page, that the item was handed to the user in this order
    and rubric version: an answer that arrives after the reservation was let go shows it
    instead (a form cannot choose its item)."""
    fields = [reservation.item_id, reservation.user_id, reservation.order]
    return signing.dumps([*fields, reservation.rubric_version_id], salt=TICKET_SALT)


def _ticket_shows(ticket, item, user):
    """(rubric version, order) the ticket shows the item was handed to the user in, or None."""
    try:
        item_id, user_id, order, version_id = signing.loads(ticket, salt=TICKET_SALT)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if (item_id, user_id) != (item.pk, user.pk):
        return None
    version = RubricVersion.objects.filter(pk=version_id).first()
    return (version, order) if version else None


def skip(study, user, item):
    """Record that the annotator passed on the item and release their reservation."""
    if study.status != Study.Status.OPEN:
        raise InvalidSubmission("the study is not open")
    with transaction.atomic():
        Skip.objects.get_or_create(item=item, user=user)
        Reservation.objects.filter(item=item, user=user).delete()
        quality.review_gold(study, user, item)


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
