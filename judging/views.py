"""The study page's judge steps without JavaScript: estimate, start, cancel."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.access import get_study_for
from annotation.models import StudyMembership
from judging import planning, work
from judging.forms import RunForm


@login_required
@require_GET
def estimate(request, slug):
    """What the run asked for would cost, with the button that starts it."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    form = RunForm(study, request.GET)
    context = {"study": study, "form": form}
    if form.is_valid():
        try:
            context["estimate"] = planning.estimate(study, **form.run_request())
        except work.RunError as e:
            form.add_error("questions", str(e))
    status = 200 if "estimate" in context else 400
    return render(request, "judging/estimate.html", context, status=status)


@login_required
@require_POST
def start(request, slug):
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    form = RunForm(study, request.POST)
    if form.is_valid():
        try:
            planning.start(study, **form.run_request())
            return redirect(_panel(study))
        except work.RunError as e:
            form.add_error("questions", str(e))
    return render(request, "judging/estimate.html", {"study": study, "form": form}, status=400)


@login_required
@require_POST
def cancel(request, slug, pk):
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    work.cancel(get_object_or_404(study.judge_runs, pk=pk))
    return redirect(_panel(study))


def _panel(study):
    return reverse("annotation:study", args=[study.slug]) + "#judges"
