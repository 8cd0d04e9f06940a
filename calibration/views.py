import io

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render

from annotation.access import get_study_for
from annotation.models import StudyMembership
from calibration.reports import build_report, cached_report, is_large, report_csv, report_table
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
    entry = cached_report(study, rubric_version=version)
    if entry is None:
        if is_large(study):
            start_building(study, version)
            return render(request, "calibration/building.html", {"study": study}, status=202)
        entry = build_report(study, rubric_version=version)
    fmt = request.GET.get("format", "html")
    if fmt == "json":
        return JsonResponse(entry["report"], json_dumps_params={"ensure_ascii": False})
    if fmt in DOWNLOADS:
        return _download(entry["report"], slug, fmt)
    return render(
        request,
        "calibration/report.html",
        {"study": study, "versions": versions, "version": version, **entry},
    )


def _download(report, slug, fmt):
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
