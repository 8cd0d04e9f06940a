"""Quality control of annotators: gold accuracy, qualification, speeders, straight-liners.

A paused annotator is handed no more items; their labels stay, flagged on the dashboard,
for the researcher to keep or drop.
"""

import statistics
from collections import Counter
from dataclasses import dataclass

from django.utils import timezone

from annotation.models import Annotation, Skip, StudyMembership

MIN_GOLD_FOR_PAUSE = 5  # gold answers seen before an accuracy threshold can pause anyone
MIN_LABELS_FOR_FLAGS = 10  # the speeder and straight-lining thresholds are the study's


def gold_correct(annotation, gold_answers):
    """True when the label gives every gold answer of its item (None: not a gold item)."""
    if not gold_answers:
        return None
    return all(annotation.answers.get(cell) == value for cell, value in gold_answers.items())


def gold_record(study, user):
    """(gold items answered, answered right) by the user in the study. A gold item skipped
    counts as answered wrong: skipping is no way around qualification or the gold checks."""
    rows = (
        Annotation.objects.of_study(study)
        .current()
        .filter(rater__user=user, item__is_gold=True)
        .select_related("item")
    )
    results = [gold_correct(a, a.item.gold_answers) for a in rows]
    results = [r for r in results if r is not None]  # a gold item without answers: unscored
    skipped = (
        Skip.objects.filter(user=user, item__study=study, item__is_gold=True)
        .exclude(item__gold_answers={})
        .count()
    )
    return len(results) + skipped, sum(results)


def is_qualifying(study, user):
    """True while the user has qualification gold items still to answer."""
    if not study.qualification_gold_items:
        return False
    answered, _ = gold_record(study, user)
    return answered < study.qualification_gold_items


def review_gold(study, user, item):
    """After the user labelled or skipped the item: pause them if it is a gold item and their
    gold record now shows they failed qualification or fell below the study's threshold."""
    if not item.is_gold:
        return
    answered, right = gold_record(study, user)
    reason = ""
    qualified_now = study.qualification_gold_items and answered == study.qualification_gold_items
    if qualified_now and right / answered < study.qualification_accuracy:
        reason = f"failed qualification ({right} of {answered} gold items right)"
    elif (
        study.gold_pause_below
        and answered >= MIN_GOLD_FOR_PAUSE
        and right / answered < study.gold_pause_below
    ):
        reason = f"gold accuracy {right / answered:.0%} below {study.gold_pause_below:.0%}"
    if not reason:
        return
    membership = study.membership_of(user)
    if membership and membership.paused_at is None:
        membership.paused_at, membership.paused_reason = timezone.now(), reason
        StudyMembership.objects.filter(pk=membership.pk, paused_at=None).update(
            paused_at=membership.paused_at, paused_reason=reason
        )


def is_paused(study, user):
    membership = study.membership_of(user)
    return bool(membership and membership.paused_at)


@dataclass
class AnnotatorSummary:
    name: str
    labels: int
    gold_answered: int
    gold_right: int
    median_seconds: float | None
    speeder: bool
    straight_liner: bool
    paused_reason: str

    @property
    def gold_accuracy(self):
        return self.gold_right / self.gold_answered if self.gold_answered else None


def annotator_summaries(study):
    """One summary per annotator who labelled in the study, for the dashboard."""
    labels = (
        Annotation.objects.of_study(study)
        .current()
        .filter(rater__user__isnull=False, source=Annotation.Source.UI)
        .select_related("rater", "item")
        .order_by("submitted_at")
    )
    by_user, seconds_all = {}, []
    for a in labels:
        entry = by_user.setdefault(a.rater.user_id, {"name": a.rater.name, "labels": []})
        entry["labels"].append(a)
        if (s := _seconds(a)) is not None:
            seconds_all.append(s)
    study_median = statistics.median(seconds_all) if seconds_all else None
    paused = dict(
        study.memberships.filter(paused_at__isnull=False).values_list("user_id", "paused_reason")
    )
    first_question = study.rubric_version.parsed.questions[0]
    first_cell = first_question.key
    if first_question.type == "checklist":
        first_cell += "[0]"  # its first row; a per-item checklist has at least one
    summaries = []
    for user_id, entry in by_user.items():
        mine = entry["labels"]
        gold = [gold_correct(a, a.item.gold_answers) for a in mine if a.item.is_gold]
        gold = [g for g in gold if g is not None]
        times = [s for a in mine if (s := _seconds(a)) is not None]
        median = statistics.median(times) if times else None
        answers = [
            _as_shown(a, first_cell, first_question) for a in mine if first_cell in a.answers
        ]
        top = Counter(answers).most_common(1)
        summaries.append(
            AnnotatorSummary(
                name=entry["name"],
                labels=len(mine),
                gold_answered=len(gold),
                gold_right=sum(gold),
                median_seconds=median,
                speeder=bool(
                    median is not None
                    and study_median
                    and len(times) >= MIN_LABELS_FOR_FLAGS
                    and median < study.speeder_share * study_median
                ),
                straight_liner=bool(
                    len(answers) >= MIN_LABELS_FOR_FLAGS
                    and top[0][1] / len(answers) >= study.straight_line_share
                ),
                paused_reason=paused.get(user_id, ""),
            )
        )
    return sorted(summaries, key=lambda s: s.name)


def _as_shown(annotation, cell, question):
    """The answer as the annotator gave it on the page. A pairwise answer names the response
    chosen, but the annotator saw the responses in their own random order: one who always
    picks the first shown names A and B evenly, so count the position they picked."""
    answer = annotation.answers[cell]
    if question.type == "pairwise":
        shown = list(annotation.order) or annotation.item.response_keys
        if answer in shown:
            return f"response {shown.index(answer) + 1}"
    return str(answer)


def _seconds(annotation):
    """Time on the item: reservation to submission on the server, which a client cannot
    inflate; the client's active time only where the server has no start (a revised label)."""
    if annotation.started_at and annotation.submitted_at:
        return (annotation.submitted_at - annotation.started_at).total_seconds()
    return annotation.active_seconds
