"""The study page's judge steps without JavaScript: estimate, start, cancel; and a run's own
page, its verdicts and what failed."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.access import get_study_for
from annotation.browsing import PageForm
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


FAILURE_REASONS_SHOWN = 10
# What a verdict row does not show of its item: of the item, its external id is what is read.
ITEM_TEXT = [f"item__{name}" for name in ("prompt", "responses", "reference", "metadata")]


class VerdictPage(PageForm):
    """A page of a run's verdicts (keyset on their id), all of them or the failed only."""

    failed = forms.ChoiceField(
        label="Show", required=False, choices=[("", "all verdicts"), ("yes", "failed only")]
    )


@login_required
@require_GET
def judge_run(request, slug, pk):
    """A run's status, judge, questions and counts, the most common reasons its requests
    failed, and a page of its verdicts."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    run = get_object_or_404(study.judge_runs.select_related("judge"), pk=pk)
    form = VerdictPage(request.GET)
    failures = run.verdicts.exclude(error="")
    context = {
        "study": study,
        "run": run,
        "progress": run.progress(),
        "form": form,
        "reasons": failures.values("error")
        .annotate(n=Count("pk"))
        .order_by("-n", "error")[:FAILURE_REASONS_SHOWN],
    }
    if not form.is_valid():
        return render(request, "judging/run.html", context, status=400)
    verdicts = failures if form.cleaned_data["failed"] else run.verdicts.all()
    context["page"] = form.page(verdicts.select_related("item").defer(*ITEM_TEXT), "pk")
    return render(request, "judging/run.html", context)


def _panel(study):
    return reverse("annotation:study", args=[study.slug]) + "#judges"
