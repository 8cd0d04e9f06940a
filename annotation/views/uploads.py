"""Uploading items and labels in the browser: the form, then each upload's own page (its
preview until confirmed, then its progress, errors and summary)."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from annotation import uploads
from annotation.access import get_study_for
from annotation.forms import UploadForm
from annotation.models import StudyMembership, Upload


@login_required
@require_http_methods(["GET", "POST"])
def upload(request, slug):
    """The form and the study's recent uploads; a file sent to it is stored and the
    researcher taken to its preview, to import it from there."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if form.is_bound and form.is_valid():
        try:
            stored = uploads.receive(
                study,
                request.user,
                form.cleaned_data["kind"],
                form.cleaned_data["file"],
                update=form.cleaned_data["update"],
            )
        except uploads.Unreadable as e:
            form.add_error("file", str(e))
        else:
            return redirect("annotation:upload-status", slug=slug, pk=stored.pk)
    return render(
        request,
        "annotation/upload.html",
        {"study": study, "form": form, "uploads": uploads.recent(study)},
        status=400 if form.is_bound else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def upload_status(request, slug, pk):
    """One upload: its preview while it awaits confirmation (a POST imports it), then its
    state; as JSON for the page's poller, which asks with `Accept: application/json`."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    upload = get_object_or_404(study.uploads.select_related("created_by"), pk=pk)
    if request.method == "POST":
        uploads.confirm(upload)
        return redirect("annotation:upload-status", slug=slug, pk=pk)
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        response = JsonResponse(uploads.as_json(upload))
    else:
        response = render(
            request,
            "annotation/upload_status.html",
            {"study": study, "upload": upload} | _preview_of(upload),
        )
    patch_vary_headers(response, ["Accept"])
    return response


def _preview_of(upload):
    if upload.state != Upload.State.AWAITING:
        return {}
    try:
        return {"preview": uploads.preview(upload)}
    except uploads.Unreadable as e:
        return {"preview_error": str(e)}
