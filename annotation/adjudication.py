"""The expert queue: routed items, handed to one expert at a time, and the experts' decisions.

Items get here by the study's routing rules (calibration.queueing) or by hand (the admin).
The queue holds a study's routed items that no expert has decided since they were routed,
most reasons first, then lowest agreement, then import order. Handing one out works as the
annotators' assignment does: the item's row is locked in the statement that picks it (`FOR
UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers) and one QueueReservation per
item (a unique row) holds it for one expert until it expires; an expired one is let go by
whoever meets it.

A decision is its own record (Adjudication); no label is changed. An expert decides the
item's routed questions (every analysed question of an item sent by hand), sends it back for
more human labels (the item leaves the queue and is handed out again until it has them; once
it has, the rules decide it again), or marks it as one that cannot be resolved.
"""

import statistics
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from annotation.models import Adjudication, Item, QueueReservation, RoutingDecision
from annotation.rubrics import STRENGTH_SUFFIX, UNABLE

MAX_EXTRA_LABELS = 20  # the most labels one send-back may ask for
# Each try sees the reservations committed before it, so a try is lost only to an expert who
# got an item meanwhile; the bound guards against a livelock, not against the usual case.
MAX_TRIES = 50
SENT_BACK = "sent back"  # the routing decision's `by` when an expert sent the item back


class InvalidDecision(ValueError):
    """A decision the item cannot take now; the message says why."""


def waiting(study):
    """The study's routed items no expert has decided since they were routed, queue order
    (reserved ones included)."""
    decided = Adjudication.objects.filter(
        item=OuterRef("pk"), decided_at__gte=OuterRef("routed_at")
    )
    return (
        study.items.exclude(routed_at=None)
        .exclude(Exists(decided))
        .order_by("-reason_count", F("routing_agreement").asc(nulls_first=True), "position")
    )


def next_for_expert(study, user):
    """The expert's live reservation in the study's queue, or a new one; None when the queue
    has nothing left that others do not hold."""
    now = timezone.now()
    mine = QueueReservation.objects.filter(item__study=study, user=user).select_related("item")
    for held in mine:
        if held.expires_at > now and _is_waiting(held.item):
            return held
        held.delete()
    skip_locked = connection.features.has_select_for_update_skip_locked
    for _ in range(MAX_TRIES):
        with transaction.atomic():
            free = waiting(study).exclude(
                Exists(QueueReservation.objects.filter(item=OuterRef("pk"), expires_at__gt=now))
            )
            item = free.select_for_update(skip_locked=skip_locked, of=("self",)).first()
            if item is None:
                return None
            QueueReservation.objects.filter(item=item, expires_at__lte=now).delete()
            try:
                with transaction.atomic():
                    return QueueReservation.objects.create(
                        item=item,
                        user=user,
                        expires_at=now + timedelta(minutes=study.reservation_minutes),
                    )
            except IntegrityError:
                # Another expert's reservation committed after this statement's snapshot
                # (PostgreSQL, READ COMMITTED): theirs stands; try the next item.
                continue
    return None


def _is_waiting(item):
    item.refresh_from_db(fields=["routed_at"])
    if item.routed_at is None:
        return False
    return not item.adjudications.filter(decided_at__gte=item.routed_at).exists()


def decision_cells(rubric, item):
    """The label cells the expert decides: the questions the item was routed for, in rubric
    order (each checklist row its own), or every analysed question of an item sent by hand."""
    return cells_for(rubric, item.checklist, item.routing_reasons)


def cells_for(rubric, checklist, reasons):
    """The analysed cells named by routing reasons (`rule:question`), or all of them when
    none is (an item sent by hand)."""
    analysed = rubric.analysed_cells(checklist)
    routed = {reason.split(":", 1)[1] for reason in reasons if ":" in reason}
    return [cell for cell in analysed if cell in routed] or analysed


def decide(study, user, item, answers, *, note=""):
    """Record the expert's final answers to the item's decision cells (label CSV values)."""
    rubric = study.rubric_version.parsed
    cells = decision_cells(rubric, item)
    cleaned = {}
    for cell in cells:
        value = answers.get(cell, "")
        if value in ("", None):
            raise InvalidDecision(f"{cell}: a final answer is required")
        if value == UNABLE:
            raise InvalidDecision(f"{cell}: mark the item as one that cannot be resolved instead")
        try:
            _, cleaned[cell] = rubric.clean(
                cell, value, item_checklist=item.checklist, response_keys=item.response_keys
            )
        except ValueError as e:
            raise InvalidDecision(f"{cell}: {e}") from None
    extra = sorted(set(answers) - set(cells) - {c for c in answers if c.endswith(STRENGTH_SUFFIX)})
    if extra:
        raise InvalidDecision(f"{extra[0]}: not a question this item is decided on")
    return _record(
        study, user, item, Adjudication.Outcome.DECIDED, answers=cleaned, note=note, cells=cells
    )


def send_back(study, user, item, extra_labels, *, note=""):
    """Ask for `extra_labels` more human labels: the item returns to the annotators."""
    if not isinstance(extra_labels, int) or not 1 <= extra_labels <= MAX_EXTRA_LABELS:
        raise InvalidDecision(f"labels to ask for: a whole number from 1 to {MAX_EXTRA_LABELS}")
    return _record(
        study, user, item, Adjudication.Outcome.SENT_BACK, extra_labels=extra_labels, note=note
    )


def mark_unresolved(study, user, item, *, note=""):
    return _record(study, user, item, Adjudication.Outcome.UNRESOLVED, note=note)


def _record(study, user, item, outcome, *, answers=None, extra_labels=0, note="", cells=None):
    """The decision, under the item's lock: only for a waiting item, and not while another
    expert holds it; answers only for the `cells` it is decided on now (routing may have
    changed its reasons since the page was shown). The decider's reservation goes."""
    now = timezone.now()
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item.pk, study=study)
        if not _is_waiting(item):
            raise InvalidDecision("this item is not waiting in the queue any more")
        if cells is not None and cells != decision_cells(study.rubric_version.parsed, item):
            raise InvalidDecision("the item's reasons changed meanwhile: reload it to see them")
        held = QueueReservation.objects.filter(item=item).first()
        if held and held.user_id != user.pk and held.expires_at > now:
            raise InvalidDecision("another expert is deciding this item")
        decision = Adjudication.objects.create(
            item=item,
            expert=user,
            outcome=outcome,
            answers=answers or {},
            note=note.strip(),
            extra_labels=extra_labels,
            reasons=item.routing_reasons,
            started_at=held.created_at if held and held.user_id == user.pk else None,
            decided_at=now,
        )
        if held:
            held.delete()
        if outcome == Adjudication.Outcome.SENT_BACK:
            Item.objects.filter(pk=item.pk).update(
                routed_at=None, routed_reason="", extra_labels=F("extra_labels") + extra_labels
            )
            RoutingDecision.objects.create(
                item=item, routed=False, reasons=item.routing_reasons, by=SENT_BACK, created_at=now
            )
        # Imported here: the dashboard's consumer reads queue_summary from this module.
        from annotation.consumers import announce_progress

        transaction.on_commit(lambda: announce_progress(study))
    return decision


def history(item):
    """The item's labels (earlier versions too), routing decisions and adjudications, as
    (time, kind, record) in time order; kind is `label`, `routing` or `adjudication`. A
    send-back and the routing decision it makes share their time: the send-back comes first."""
    events = [
        (a.submitted_at or a.created_at, "label", a)
        for a in item.annotations.select_related("rater").order_by("pk")
    ]
    events += [(r.created_at, "routing", r) for r in item.routing_decisions.order_by("pk")]
    events += [
        (d.decided_at, "adjudication", d)
        for d in item.adjudications.select_related("expert").order_by("pk")
    ]
    rank = {"label": 0, "adjudication": 1, "routing": 2}
    return sorted(events, key=lambda event: (event[0], rank[event[1]]))


# An item's state in the queue, and its name on the study page.
QUEUE_STATES = {
    "waiting": "Waiting",
    "reserved": "Reserved",
    "decided": "Decided",
    "sent_back": "Sent back",
    "unresolved": "Cannot be resolved",
}


def open_queue_size(study):
    """Routed items that no decision has settled since their routing, held by an expert or
    not (queue_summary's waiting and reserved together), in one query: the studies home."""
    settled = Adjudication.objects.filter(
        item=OuterRef("pk"), decided_at__gte=OuterRef("routed_at")
    )
    return study.items.filter(routed_at__isnull=False).exclude(Exists(settled)).count()


def queue_summary(study):
    """The study page's expert queue, as JSON: items by state, by reason and state (a reason
    is `rule:question`, or who sent the item by hand), decisions per day, and per expert the
    items held now, the decisions of each outcome and the median seconds a decision took."""
    now = timezone.now()
    latest, per_day, experts = {}, {}, {}
    decisions = (
        Adjudication.objects.filter(item__study=study)
        .select_related("expert")
        .order_by("decided_at", "pk")
    )
    for d in decisions:
        latest[d.item_id] = d
        day = d.decided_at.date().isoformat()
        per_day[day] = per_day.get(day, 0) + 1
        mine = experts.setdefault(d.expert.get_username(), _expert_row(d.expert.get_username()))
        mine[d.outcome] += 1
        if d.started_at:
            mine["seconds"].append((d.decided_at - d.started_at).total_seconds())
    held = dict(
        QueueReservation.objects.filter(item__study=study, expires_at__gt=now).values_list(
            "item", "user__username"
        )
    )
    for username in held.values():
        experts.setdefault(username, _expert_row(username))["reserved"] += 1
    states = dict.fromkeys(QUEUE_STATES, 0)
    by_reason = {}
    decided = Exists(Adjudication.objects.filter(item=OuterRef("pk")))
    items = study.items.filter(Q(routed_at__isnull=False) | decided)
    for pk, routed_at, routed_reason, reasons in items.values_list(
        "pk", "routed_at", "routed_reason", "routing_reasons"
    ):
        decision = latest.get(pk)
        if routed_at and (decision is None or decision.decided_at < routed_at):
            state = "reserved" if pk in held else "waiting"
        else:
            state, reasons = decision.outcome, decision.reasons or reasons
        states[state] += 1
        for reason in reasons or [routed_reason or "sent by hand"]:
            row = by_reason.setdefault(reason, dict.fromkeys(QUEUE_STATES, 0))
            row[state] += 1
    return {
        "states": states,
        "reasons": [{"reason": r, **counts} for r, counts in sorted(by_reason.items())],
        "decisions_per_day": [{"day": day, "decisions": n} for day, n in sorted(per_day.items())],
        "experts": [
            {
                **{k: v for k, v in row.items() if k != "seconds"},
                "median_seconds": statistics.median(row["seconds"]) if row["seconds"] else None,
            }
            for _, row in sorted(experts.items())
        ],
    }


def _expert_row(name):
    return {
        "name": name,
        "reserved": 0,
        "decided": 0,
        "sent_back": 0,
        "unresolved": 0,
        "seconds": [],
    }
