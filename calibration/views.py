import io

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from annotation.access import get_study_for
from annotation.models import StudyMembership
from calibration.report_cache import cached_report, is_large, latest_report
from calibration.tasks import start_building

DOWNLOADS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
}


@login_required
def report(request, slug):
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    versions = list(study.rubric.versions.order_by("number").values_list("number", flat=True))
    version = None
    if "version" in request.GET:
        number = request.GET["version"]
        if not number.isascii() or not number.isdigit() or int(number) not in versions:
            raise Http404("No such rubric version")
        version = study.rubric.versions.get(number=int(number))
    entry, stale = cached_report(study, rubric_version=version), False
    if entry is None and is_large(study):
        # Labels changed (or it was never built): the worker builds it, and meanwhile the
        # page shows the last one built, if any, with its age.
        start_building(study, version)
        entry, stale = latest_report(study, rubric_version=version), True
        if entry is None:
            return render(request, "calibration/building.html", {"study": study}, status=202)
    elif entry is None:
        from calibration.reports import build_report  # pandas and all: only to build one

        entry = build_report(study, rubric_version=version)
    fmt = request.GET.get("format", "html")
    if fmt == "json":
        return JsonResponse(entry["report"], json_dumps_params={"ensure_ascii": False})
    if fmt in DOWNLOADS:
        return _download(entry["report"], slug, fmt)
    return render(
        request,
        "calibration/report.html",
        {
            "study": study,
            "versions": versions,
            "version": version,
            "stale": stale,
            "age_seconds": _age(entry),
            **entry,
        },
    )


def _age(entry):
    """Seconds since the report was built (None for one cached before reports knew)."""
    built_at = entry.get("built_at")
    return int((timezone.now() - built_at).total_seconds()) if built_at else None


def _download(report, slug, fmt):
    from calibration.reports import report_csv, report_table

    content_type, extension = DOWNLOADS[fmt]
    if fmt == "csv":
        body = report_csv(report)
    else:
        buffer = io.BytesIO()
        report_table(report).to_parquet(buffer, index=False)
        body = buffer.getvalue()
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{slug}-report.{extension}"'
    return response
