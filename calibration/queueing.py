"""Sending a study's items to the expert queue by its routing rules.

The Django side of `calibration.disagreement`: it reads the labels of the items to decide,
applies the study's rules and stores the outcome on the items, where the assignment engine
sees it (a routed item is no longer handed out). Labelling decides an item when its human
labels are complete (as many as the study's overlap; annotation announces it, see
annotation.signals), so that its labelling is not stopped half-way; a label import, the end of
a judge run and the `route` command decide every item of the study.

Routing again is harmless: an item is queued once (its `routed_at` kept), its reasons are
those of its latest labels, and an item the rules routed that no rule routes any more leaves
the queue. Items someone sent to the queue by hand (the admin's action) stay there.
"""

from django.db import transaction
from django.utils import timezone

from annotation.models import Item
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
    ids = dict(decided.values_list("external_id", "pk"))
    found = disagreement.reasons(_labels(study, items), rules, _gold(decided))
    if not dry_run:
        _store(ids, found)
    return {"study": study.slug, "dry_run": dry_run, **disagreement.rule_counts(found)}


def _labels(study, items):
    """The labels of the items (ids, or None: all) on the questions the report analyses."""
    labels = study_labels(study, items)
    cells = [cell for _, cell in analysed_cells(study.rubric_version.parsed, labels["question"])]
    return labels[labels["question"].isin(cells)]


def _gold(items):
    gold = items.filter(is_gold=True).values_list("external_id", "gold_answers")
    return {ext: {cell: render_value(v) for cell, v in answers.items()} for ext, answers in gold}


def _store(ids, found):
    reasons = {}
    for ext, rule, question in found.itertuples(index=False):
        reasons.setdefault(ids[ext], []).append(f"{rule}:{question}")
    calm = [pk for pk in ids.values() if pk not in reasons]
    with transaction.atomic():
        Item.objects.filter(pk__in=list(reasons), routed_at=None).update(
            routed_at=timezone.now(), routed_reason=BY_RULES
        )
        for start in range(0, len(calm), BATCH_SIZE):
            batch = Item.objects.filter(pk__in=calm[start : start + BATCH_SIZE])
            batch.filter(routed_reason=BY_RULES).update(routed_at=None, routed_reason="")
            batch.exclude(routing_reasons=[]).update(routing_reasons=[])
        routed = list(reasons.items())
        for start in range(0, len(routed), BATCH_SIZE):
            batch = routed[start : start + BATCH_SIZE]
            Item.objects.bulk_update(
                [Item(pk=pk, routing_reasons=why) for pk, why in batch], ["routing_reasons"]
            )
