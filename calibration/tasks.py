"""Background work of calibration, run by `celery worker`.

The web process imports this module to queue the work, so what does the work (pandas and
the rest) is imported when a task runs, not here (see `calibration.report_cache`).
"""

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from annotation.models import Study
from calibration.report_cache import building_key


@shared_task
def build_study_report(study_id, rubric_version=None):
    """Build and cache a study's report (of one rubric version's labels, given its number);
    running it twice only rebuilds the same entry."""
    from calibration.reports import build_report

    study = Study.objects.get(pk=study_id)
    version = study.rubric.versions.get(number=rubric_version) if rubric_version else None
    try:
        build_report(study, rubric_version=version)
    finally:
        cache.delete(building_key(study, version))


def start_building(study, rubric_version=None):
    """Queue one background build of the study's report; True if this call queued it."""
    if not cache.add(building_key(study, rubric_version), True, timeout=15 * 60):
        return False
    build_study_report.delay(study.pk, rubric_version.number if rubric_version else None)
    return True


@shared_task
def route_items(study_id, slug, items=None):
    """Route a study's items (ids, or None: all) by its rules. The slug guards against a
    message that outlived its study and names another study of the same id."""
    from calibration import queueing

    study = Study.objects.filter(pk=study_id, slug=slug).select_related("rubric").first()
    if study is not None:
        queueing.route(study, items=items)


def route_on_commit(sender, study, items, **kwargs):
    """annotation.signals.labels_settled: route those items once their labels are committed."""
    transaction.on_commit(lambda: route_items.delay(study.pk, study.slug, items))
