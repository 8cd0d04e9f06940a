"""The annotators' pages: the crowd join link, the next item, revising one, the end page."""

import re
import uuid
from urllib.parse import urlsplit

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_http_methods

from annotation import quality
from annotation.access import get_study_for
from annotation.assignment import (
    InvalidSubmission,
    has_work,
    next_item,
    skip,
    submit,
    ticket_for,
)
from annotation.labelling import LabellingPage
from annotation.models import Study, StudyMembership

WORKER_ID_RE = re.compile(r"^[\w.@+-]{1,100}$")


@require_http_methods(["GET", "POST"])
def join(request, slug):
    """A crowd worker's way in: the study's secret token and their id, no password.

    Someone signed in with an account of their own (staff trying the link, say) is asked
    first: joining ends that session, and a GET must not do that behind their back.
    """
    study = get_object_or_404(Study, slug=slug)
    if not constant_time_compare(request.GET.get("token", ""), study.join_token):
        raise Http404("No such study")
    worker_id = request.GET.get(study.worker_id_param, "")
    if not WORKER_ID_RE.match(worker_id):
        return render(
            request,
            "annotation/join_error.html",
            {"study": study, "param": study.worker_id_param},
            status=400,
        )
    if request.method == "GET" and _has_own_login(request.user):
        return render(request, "annotation/join_confirm.html", {"study": study})
    login(request, study.participant(worker_id), backend="quorum.auth.UsernameOrEmailBackend")
    return redirect("annotation:label", slug=slug)


def _has_own_login(user):
    """Signed in as more than a crowd participant (who has no password and no staff rights)."""
    return user.is_authenticated and (
        user.is_staff or user.is_superuser or user.has_usable_password()
    )


@login_required
def label(request, slug):
    """The next item to label (GET), or an answer or a skip for the one shown (POST)."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ANNOTATOR)
    if request.method == "POST":
        return _answer(request, study)
    reservation = next_item(study, request.user)
    if reservation is None:
        return redirect("annotation:done", slug=slug)
    page = LabellingPage(
        study,
        request.user,
        reservation.item,
        reservation.order,
        reservation.rubric_version,
        ticket=ticket_for(reservation),
    )
    return render(request, "annotation/label.html", page.context())


@login_required
def revise(request, slug, external_id):
    """One of the annotator's own earlier items, with their answers, to change them."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ANNOTATOR)
    item = get_object_or_404(study.items, external_id=external_id)
    previous = get_object_or_404(item.annotations.current(), rater__user=request.user)
    if request.method == "POST":
        return _answer(request, study)
    return _revision_page(request, study, previous)


def _revision_page(request, study, previous, *, answers=None, error="", status=200):
    """An earlier label's item with its answers, as asked then (rubric version and order);
    read-only once the study no longer takes answers."""
    page = LabellingPage(
        study,
        request.user,
        previous.item,
        previous.order,
        previous.rubric_version,
        answers=previous.answers if answers is None else answers,
        revising=True,
        error=error,
    )
    return render(request, "annotation/label.html", page.context(), status=status)


@login_required
def done(request, slug):
    """The end of the annotator's work, with the completion code once it is earned: at least
    one label, not paused, qualified, and nothing left for them (or the study closed)."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ANNOTATOR)
    user = request.user
    labelled = study.labels_by(user)
    last = labelled.order_by("-submitted_at").values_list("item__external_id", flat=True).first()
    paused = quality.is_paused(study, user)
    more = has_work(study, user)
    finished = (
        last is not None
        and not paused
        and not more
        and not quality.is_qualifying(study, user)
        and study.status in (Study.Status.OPEN, Study.Status.CLOSED)
    )
    context = {
        "study": study,
        "labelled": labelled.count(),
        "previous": last,
        "paused": paused,
        "more": more,
        "finished": finished,
        "return_host": urlsplit(study.return_url).hostname or "",
    }
    return render(request, "annotation/done.html", context)


def _answer(request, study):
    item = get_object_or_404(study.items, external_id=request.POST.get("item", ""))
    answers = LabellingPage.answers_from(request.POST)
    try:
        if request.POST.get("action") == "skip":
            skip(study, request.user, item)
            return redirect("annotation:label", slug=study.slug)
        submit(
            study,
            request.user,
            item,
            answers,
            submission_id=_uuid(request.POST.get("submission_id")),
            active_seconds=_seconds(request.POST.get("active_seconds")),
            ticket=request.POST.get("ticket", ""),
        )
    except InvalidSubmission as e:
        reservation = item.reservations.filter(user=request.user).first()
        previous = item.annotations.current().filter(rater__user=request.user).first()
        if previous and not reservation:
            return _revision_page(
                request, study, previous, answers=answers, error=str(e), status=400
            )
        version = reservation.rubric_version if reservation else study.rubric_version
        order = reservation.order if reservation else request.POST.get("order", "")
        page = LabellingPage(
            study,
            request.user,
            item,
            order,
            version,
            answers=answers,
            error=str(e),
            ticket=ticket_for(reservation) if reservation else request.POST.get("ticket", ""),
        )
        return render(request, "annotation/label.html", page.context(), status=400)
    return redirect("annotation:label", slug=study.slug)


def _uuid(text):
    try:
        return uuid.UUID(text)
    except (TypeError, ValueError):
        return uuid.uuid4()  # a client without the field gets no retry protection


def _seconds(text):
    try:
        seconds = float(text)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds < 86_400 else None
