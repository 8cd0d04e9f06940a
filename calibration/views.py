import io

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
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
    entry = cached_report(study)
    if entry is None:
        if is_large(study):
            start_building(study)
            return render(request, "calibration/building.html", {"study": study}, status=202)
        entry = build_report(study)
    fmt = request.GET.get("format", "html")
    if fmt == "json":
        return JsonResponse(entry["report"], json_dumps_params={"ensure_ascii": False})
    if fmt in DOWNLOADS:
        return _download(entry["report"], slug, fmt)
    return render(request, "calibration/report.html", {"study": study, **entry})


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
