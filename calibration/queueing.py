"""Sending a study's items to the expert queue by its routing rules.

The Django side of `calibration.disagreement`: it reads the labels of the items to decide,
applies the study's rules and stores the outcome on the items, where the assignment engine
sees it (a routed item is no longer handed out) and the expert queue serves it
(annotation.adjudication). Labelling decides an item when its human labels are complete (as
many as it needs; annotation announces it, see annotation.signals), so that its labelling is
not stopped half-way; a label import, the end of a judge run and the `route` command decide
every item of the study.

Routing again is harmless: an item is queued once (its `routed_at` kept), its reasons are
those of its latest labels, and an item the rules routed that no rule routes any more leaves
the queue. Items someone sent to the queue by hand (the admin's action) stay there. An item an
expert decided is left as it is until its labels change after the decision (then the rules
decide it again, and it is queued anew if one fires); one sent back waits for the labels it
was sent back for. Every change is a RoutingDecision, the item's routing history.
"""

import math

from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone

from annotation.consumers import announce_progress
from annotation.models import Adjudication, Annotation, Item, Rater, RoutingDecision
from annotation.queue_rules import check_rules
from annotation.rubrics import render_value
from calibration import disagreement
from calibration.reports import analysed_cells, study_labels

BY_RULES = "routing rules"  # an item's routed_reason when the rules, not a person, queued it
BATCH_SIZE = 2000


def route(study, *, rules=None, items=None, dry_run=False):
    """Decide the study's items (or those of the `items` ids) by `rules` (default: the
    study's); store the outcome unless `dry_run`. The `route` command's JSON."""
    rules = check_rules(study.routing_rules if rules is None else rules)
    decided = study.items.all() if items is None else study.items.filter(pk__in=items)
    labels = _labels(study, items)
    found = disagreement.reasons(labels, rules, _gold(decided))
    if not dry_run:
        _store(study, decided, found, disagreement.lowest_agreement(labels))
    return {"study": study.slug, "dry_run": dry_run, **disagreement.rule_counts(found)}


def _labels(study, items):
    """The labels of the items (ids, or None: all) on the questions the report analyses."""
    labels = study_labels(study, items)
    cells = [cell for _, cell in analysed_cells(study.rubric_version.parsed, labels["question"])]
    return labels[labels["question"].isin(cells)]


def _gold(items):
    gold = items.filter(is_gold=True).values_list("external_id", "gold_answers")
    return {ext: {cell: render_value(v) for cell, v in answers.items()} for ext, answers in gold}


def _store(study, items, found, agreement):
    reasons = {}
    for ext, rule, question in found.itertuples(index=False):
        reasons.setdefault(ext, []).append(f"{rule}:{question}")
    now = timezone.now()
    held = _held_by_decisions(study, items)
    changed, decisions = [], []
    rows = items.values_list(
        "pk", "external_id", "routed_at", "routed_reason", "routing_reasons", "routing_agreement"
    )
    adjudicated = _adjudicated_since_routing(items)
    read = {}
    for pk, ext, routed_at, routed_reason, old_reasons, old_agreement in rows.iterator():
        if pk in held:
            continue
        read[pk] = (routed_at, routed_reason)
        why = reasons.get(ext, [])
        share = agreement.get(ext)
        share = None if share is None or math.isnan(share) else float(share)
        item = Item(pk=pk, routed_at=routed_at, routed_reason=routed_reason)
        item.routing_reasons, item.reason_count, item.routing_agreement = why, len(why), share
        if why and (routed_at is None or pk in adjudicated):
            item.routed_at, item.routed_reason = now, BY_RULES  # into the queue, anew
        elif not why and routed_at and routed_reason == BY_RULES:
            item.routed_at, item.routed_reason = None, ""  # calm now: back out
        moved = item.routed_at != routed_at
        if moved or why != old_reasons:
            decisions.append(
                RoutingDecision(
                    item_id=pk,
                    routed=item.routed_at is not None,
                    reasons=why,
                    by=BY_RULES,
                    created_at=now,
                )
            )
        if moved or why != old_reasons or share != old_agreement:
            changed.append(item)
    fields = ["routed_at", "routed_reason", "routing_reasons", "reason_count", "routing_agreement"]
    with transaction.atomic():
        # Written only where no expert or admin moved the item since it was read (they hold
        # its row lock to do so); the next routing decides those again.
        moved_meanwhile = set()
        for start in range(0, len(changed), BATCH_SIZE):
            batch = [item.pk for item in changed[start : start + BATCH_SIZE]]
            now_rows = Item.objects.select_for_update().filter(pk__in=batch)
            for pk, routed_at, routed_reason in now_rows.values_list(
                "pk", "routed_at", "routed_reason"
            ):
                if (routed_at, routed_reason) != read[pk]:
                    moved_meanwhile.add(pk)
        changed = [item for item in changed if item.pk not in moved_meanwhile]
        decisions = [d for d in decisions if d.item_id not in moved_meanwhile]
        Item.objects.bulk_update(changed, fields, batch_size=BATCH_SIZE)
        RoutingDecision.objects.bulk_create(decisions, batch_size=BATCH_SIZE)
        if decisions:
            transaction.on_commit(lambda: announce_progress(study))


def _held_by_decisions(study, items):
    """Items that routing leaves alone: decided by an expert (or marked unresolved) with no
    human label since (a judge's verdict does not reopen a decision), and sent back without
    all the labels it asked for yet."""
    latest = dict(
        Adjudication.objects.filter(item__in=items)
        .values("item")
        .annotate(at=Max("decided_at"))
        .values_list("item", "at")
    )
    if not latest:
        return set()
    decided = items.filter(Exists(Adjudication.objects.filter(item=OuterRef("pk"))))
    labelled = dict(
        Annotation.objects.filter(item__in=decided, rater__kind=Rater.Kind.HUMAN)
        .values("item")
        .annotate(at=Max("created_at"))
        .values_list("item", "at")
    )
    held = {pk for pk, at in latest.items() if pk not in labelled or labelled[pk] <= at}
    sent_back = Adjudication.objects.filter(
        item__in=items, outcome=Adjudication.Outcome.SENT_BACK
    ).values_list("item", "decided_at", "item__human_labels", "item__extra_labels")
    short = {
        pk
        for pk, at, labels, extra in sent_back
        if latest[pk] == at and labels < study.overlap + extra
    }
    return held | short


def _adjudicated_since_routing(items):
    """Routed items an expert decided after they were routed: a rule firing again on their
    new labels queues them anew."""
    return set(
        Adjudication.objects.filter(
            item__in=items.exclude(routed_at=None),
            decided_at__gte=F("item__routed_at"),
        ).values_list("item", flat=True)
    )
