"""Where built reports are kept and when they are stale: their cache keys, from a cheap
fingerprint of the study's labels, items, judges' families and rubric.

Apart from `calibration.reports` so that the web process, which serves cached reports and
asks whether they are fresh, never loads pandas, numpy and matplotlib for that (they are
most of a worker's memory); they load when a report is built.
"""

import hashlib
import json

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max

from annotation.models import Adjudication, Annotation, Rater, RoutingDecision

# Counting a large study's labels takes a third of a second, too long for every view of the
# report page: the count is kept this long, or until a writer of labels says they changed
# (annotation.signals.labels_written). A change no writer announces (an edit in the admin)
# shows within this time.
LABELS_STATE_SECONDS = 60


def rater_families(study):
    """{rater name: model family} of the study's LLM raters that have one: which raters
    labelled the study is known from its labels state, their families are asked each time
    (a family edited shows at once)."""
    judges = Rater.objects.filter(pk__in=_labels_state(study)["judges"]).exclude(family="")
    return dict(judges.values_list("name", "family"))


def fingerprint(study):
    """Changes whenever a label or item of the study is added or replaced, or a judge's
    family."""
    created = study.created_at.timestamp()
    labels = _labels_state(study)["counts"]
    families = hashlib.sha256(repr(sorted(rater_families(study).items())).encode())
    # The questions analysed are the latest version's: an edit in place changes the report.
    version = study.rubric_version
    questions = hashlib.sha256(json.dumps(version.definition, sort_keys=True).encode())
    return (
        f"{study.pk}:{created}:{study.rubric_id}:{labels}"
        f":{families.hexdigest()[:16]}:{version.pk}:{questions.hexdigest()[:16]}"
    )


def _labels_state(study):
    """What the study's labels are now, from the cache (see LABELS_STATE_SECONDS): "counts",
    the count and last id of its labels, current or replaced, and its item count (one of
    them changes with every label added or replaced), and "judges", the LLM raters that
    labelled it (ids)."""

    def asked():
        by_rater = list(
            Annotation.objects.of_study(study)
            .values("rater", "rater__kind")
            .annotate(n=Count("id"), last=Max("id"))
            .order_by()
        )
        n, last = sum(r["n"] for r in by_rater), max((r["last"] for r in by_rater), default=None)
        return {
            "counts": f"{n}:{last}:{study.item_count()}",
            "judges": sorted(r["rater"] for r in by_rater if r["rater__kind"] == Rater.Kind.LLM),
        }

    return cache.get_or_set(_labels_state_key(study), asked, LABELS_STATE_SECONDS)


def forget_labels_state(sender, study, **kwargs):
    """annotation.signals.labels_written: the study's labels state is asked again, now (for
    this transaction) and once it commits (for everyone)."""
    key = _labels_state_key(study)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _labels_state_key(study):
    return f"quorum:labels-state:{study.pk}:{study.created_at.timestamp()}"


def cached_report(study, *, bootstrap=1000, seed=0, rubric_version=None):
    """The report and its plots ({"report", "plots"}) from the cache, or None."""
    return cache.get(_cache_key(study, bootstrap, seed, rubric_version=rubric_version))


def latest_report(study, *, bootstrap=1000, seed=0, rubric_version=None):
    """The last report built of the study, whether or not labels changed since: the page
    shows it, with its age, while a worker builds the next one."""
    return cache.get(_latest_key(study, bootstrap, seed, rubric_version=rubric_version))


def building_key(study, rubric_version=None):
    """Set while a worker builds the study's report, so that it is queued only once."""
    return _cache_key(study, 1000, 0, rubric_version=rubric_version) + ":building"


def is_large(study):
    """Large studies get their report built by a worker while the page shows progress."""
    labels = Annotation.objects.of_study(study).current().count()
    return labels > settings.REPORT_IN_BACKGROUND_ABOVE


def _latest_key(study, bootstrap, seed, reference="majority", rubric_version=None):
    version = rubric_version.number if rubric_version else ""
    created = study.created_at.timestamp()  # not a deleted study's of the same id
    return f"quorum:report-latest:{study.pk}:{created}:{bootstrap}:{seed}:{reference}:{version}"


def _cache_key(study, bootstrap, seed, reference="majority", rubric_version=None):
    key = f"quorum:report:{fingerprint(study)}:{bootstrap}:{seed}"
    if rubric_version is not None:
        key += f":v{rubric_version.number}"
    if reference == "final":  # final labels change with every decision and gold answer too
        decisions = Adjudication.objects.filter(item__study=study).aggregate(n=Max("id"))["n"]
        routing = RoutingDecision.objects.filter(item__study=study).aggregate(n=Max("id"))["n"]
        gold = hashlib.sha256(
            repr(list(study.items.filter(is_gold=True).values_list("pk", "gold_answers"))).encode()
        ).hexdigest()[:16]
        key += f":final:{decisions}:{routing}:{gold}"
    return key


def keys(study, bootstrap, seed, reference="majority", rubric_version=None):
    """The cache keys of a report about to be built: its own, of the labels as they are
    now (asked before they are read, so that labels written meanwhile make it stale), and
    the study's latest report's."""
    return (
        _cache_key(study, bootstrap, seed, reference, rubric_version),
        _latest_key(study, bootstrap, seed, reference, rubric_version),
    )


def store(keys, entry):
    """Keep a built report ({"report", "plots", "built_at"}) under its `keys`."""
    for key in keys:
        cache.set(key, entry, timeout=None)
