"""The data browser: a study's items, searched and filtered, and each item's whole record."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from annotation import browsing
from annotation.access import get_study_for
from annotation.models import StudyMembership


@login_required
@require_GET
def items(request, slug):
    """One keyset page of the study's items that pass the filters; bad filters get the form
    back with a message beside each and a 400."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    form = browsing.ItemFilters(request.GET)
    context = {"study": study, "form": form, "excerpt_chars": browsing.EXCERPT_CHARS}
    if not form.is_valid():
        return render(request, "annotation/items.html", context, status=400)
    context["page"] = form.page(form.items(study), "position")
    return render(request, "annotation/items.html", context)


@login_required
@require_GET
def item(request, slug, external_id):
    """Everything about one item: its content, every version of every label, its verdicts."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    item = get_object_or_404(study.items, external_id=external_id)
    return render(
        request,
        "annotation/item.html",
        {
            "study": study,
            "item": item,
            "needed": item.labels_needed(study),
            "metadata": browsing.metadata_rows(item),
            "gold": browsing.gold_rows(item),
            "labels": browsing.item_labels(item),
            "verdicts": browsing.item_verdicts(item),
        },
    )
