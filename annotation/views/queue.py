"""The expert queue, an item's history, promotion to gold and the final-label download."""

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotation import adjudication
from annotation.access import get_study_for, has_role
from annotation.adjudication import InvalidDecision
from annotation.expert_page import ExpertPage
from annotation.final_labels import NotAdjudicated, csv_lines, is_adjudicated, promote_to_gold
from annotation.labelling import LabellingPage
from annotation.models import QueueReservation, StudyMembership
from annotation.rubrics import render_value


@login_required
@require_http_methods(["GET", "POST"])
def queue(request, slug):
    """The expert queue: the item the expert holds, or the next one (GET); a decision on the
    item shown (POST), then the next."""
    study = get_study_for(request, slug, role=StudyMembership.Role.EXPERT)
    if request.method == "POST":
        return _adjudicate(request, study)
    held = adjudication.next_for_expert(study, request.user)
    if held is None:
        return render(request, "annotation/queue_empty.html", {"study": study})
    page = ExpertPage(study, request.user, held.item, held)
    return render(request, "annotation/queue.html", page.context())


def _adjudicate(request, study):
    item = get_object_or_404(study.items, external_id=request.POST.get("item", ""))
    action, note = request.POST.get("action"), request.POST.get("note", "")
    answers = LabellingPage.answers_from(request.POST)
    try:
        if action == "decide":
            adjudication.decide(study, request.user, item, answers, note=note)
        elif action == "send_back":
            extra = request.POST.get("extra_labels", "")
            extra = int(extra) if extra.isascii() and extra.isdigit() else None
            adjudication.send_back(study, request.user, item, extra, note=note)
        elif action == "unresolved":
            adjudication.mark_unresolved(study, request.user, item, note=note)
        else:
            raise InvalidDecision("decide, send back or mark as cannot be resolved")
    except InvalidDecision as e:
        held = QueueReservation.objects.filter(item=item, user=request.user).first()
        page = ExpertPage(study, request.user, item, held, answers=answers, note=note, error=str(e))
        return render(request, "annotation/queue.html", page.context(), status=400)
    return redirect("annotation:queue", slug=study.slug)


@login_required
def history(request, slug, external_id):
    """An item's labels, routing decisions and adjudications in time order (unblinded)."""
    study = get_study_for(request, slug, role=StudyMembership.Role.EXPERT)
    item = get_object_or_404(study.items, external_id=external_id)
    return render(
        request,
        "annotation/history.html",
        {
            "study": study,
            "item": item,
            "events": _history(item),
            "can_promote": has_role(study, request.user, StudyMembership.Role.RESEARCHER)
            and is_adjudicated(study, item),
        },
    )


def _history(item):
    """The item's history with each record's answers as the label CSV writes them."""
    return [
        (
            time,
            kind,
            record,
            {c: render_value(v) for c, v in getattr(record, "answers", {}).items()},
        )
        for time, kind, record in adjudication.history(item)
    ]


@login_required
@require_http_methods(["POST"])
def promote(request, slug, external_id):
    """Make an adjudicated item gold: its final labels become its gold answers."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    item = get_object_or_404(study.items, external_id=external_id)
    try:
        promote_to_gold(study, item)
    except NotAdjudicated as e:
        return render(
            request,
            "annotation/history.html",
            {"study": study, "item": item, "events": _history(item), "error": str(e)},
            status=400,
        )
    return redirect("annotation:history", slug=slug, external_id=external_id)


@login_required
def final_labels_csv(request, slug):
    """The final-label CSV, streamed: the same bytes as `export SLUG --format csv --final`."""
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    return StreamingHttpResponse(
        csv_lines(study),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{study.slug}-final-labels.csv"'},
    )
