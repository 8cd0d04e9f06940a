"""The rubric builder: a study's questions edited in the browser, as JSON (the README format)
with every problem beside its line, a live preview of the labelling page, and the versions."""

import difflib
import json

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from annotation.access import get_study_for
from annotation.exports import item_problems
from annotation.forms import RubricForm
from annotation.labelling import LabellingPage
from annotation.models import Item, RubricVersion, StudyMembership
from annotation.rubrics import parse_rubric, text_problems

SAMPLE_ITEM = {
    "external_id": "preview",
    "prompt": "A sample prompt: the study's first item appears here once it has items.",
    "responses": [
        {"key": "A", "text": "The first sample response.", "model": "model-a"},
        {"key": "B", "text": "The second sample response.", "model": "model-b"},
    ],
    "reference": "A sample reference answer.",
    "checklist": ["A sample checklist row of this item", "Another row"],
}


@login_required
def rubric(request, slug):
    """Show the study's questions for editing (GET); save an edited definition (POST), in
    place or as a new version as `Rubric.edit` decides, unless it strands the items."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ADMIN)
    text = json.dumps(study.rubric.definition, indent=2, ensure_ascii=False)
    form = RubricForm(request.POST or None, initial={"definition": text})
    if request.method == "POST" and not study.read_only and form.is_valid():
        definition = form.cleaned_data["definition"]
        stranded = item_problems(study, parse_rubric(definition))
        if stranded:
            form.add_error(
                "definition", [f"the study's items would not fit: {p}" for p in stranded]
            )
        else:
            _save(study, request.user, definition)
            return redirect("annotation:rubric", slug=slug)
    source = form.data.get("definition", text) if form.is_bound else text
    return render(
        request,
        "annotation/rubric.html",
        {
            "study": study,
            "form": form,
            "lines": _annotated_lines(source, getattr(form, "problems", [])),
            "problems": getattr(form, "problems", []),
            "versions": _versions(study.rubric),
            "preview": _preview(request, study, study.rubric.definition),
        },
        status=400 if form.is_bound else 200,
    )


def _save(study, user, definition):
    """Edit the study's questions and log it, in one transaction."""
    before = study.rubric_version
    with transaction.atomic():
        after = study.rubric.edit(definition)
        if after.pk != before.pk:
            study.record(user, "questions", f"v{before.number}", f"v{after.number}")
        elif after.definition != before.definition:
            study.record(user, "questions", f"v{before.number}", "edited (no labels)")


@login_required
@require_POST
def preview(request, slug):
    """The labelling page for a definition not yet saved, or its problems, for the builder's
    script: {"html": "…"} or {"problems": [{"line", "path", "message"}]}."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ADMIN)
    text = request.POST.get("definition", "")
    problems = text_problems(text)
    if problems:
        return JsonResponse({"problems": problems})
    return JsonResponse({"html": _preview(request, study, json.loads(text))})


def _preview(request, study, definition):
    """The item and questions part of the labelling page, rendered by the templates the
    labelling page uses, for the study's first item (or a sample)."""
    item = study.items.order_by("position").first() or Item(study=study, **SAMPLE_ITEM)
    version = RubricVersion(definition=definition, number=0)
    page = LabellingPage(study, request.user, item, "AB" if study.randomise_order else "", version)
    return render_to_string("annotation/_preview.html", page.item_context(), request=request)


def _annotated_lines(text, problems):
    """The definition's lines, numbered, each with the problems found on it."""
    by_line = {}
    for p in problems:
        by_line.setdefault(p["line"], []).append(p["message"])
    return [(n, line, by_line.get(n, [])) for n, line in enumerate(text.splitlines(), 1)]


def _versions(rubric):
    """Each version, newest first, with its label count and its diff from the one before."""
    out, previous = [], None
    for v in rubric.versions.annotate(labels=Count("annotations")).order_by("number"):
        text = json.dumps(v.definition, indent=2, ensure_ascii=False).splitlines()
        diff = (
            list(
                difflib.unified_diff(
                    previous, text, f"v{v.number - 1}", f"v{v.number}", lineterm="", n=2
                )
            )
            if previous is not None
            else []
        )
        out.append({"version": v, "labels": v.labels, "diff": diff})
        previous = text
    return out[::-1]
