import re
import uuid

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_http_methods

from annotation import adjudication, quality
from annotation.access import get_study_for, has_role
from annotation.adjudication import InvalidDecision
from annotation.assignment import (
    InvalidSubmission,
    has_work,
    next_item,
    skip,
    submit,
    ticket_for,
)
from annotation.expert_page import ExpertPage
from annotation.final_labels import NotAdjudicated, csv_lines, is_adjudicated, promote_to_gold
from annotation.labelling import LabellingPage
from annotation.models import QueueReservation, Study, StudyMembership
from annotation.rubrics import render_value


@login_required
def studies(request):
    """The user's studies, each linked to the dashboard for its researchers and admins, and
    to the labelling page for its annotators and experts; experts and researchers also get
    the expert queue."""
    visible = Study.objects.visible_to(request.user).select_related("rubric").order_by("name")
    rows = [
        (
            s,
            has_role(s, request.user, StudyMembership.Role.RESEARCHER),
            has_role(s, request.user, StudyMembership.Role.EXPERT),
        )
        for s in visible
    ]
    return render(request, "annotation/studies.html", {"studies": rows})


@login_required
def study(request, slug):
    study = get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)
    queue = adjudication.queue_summary(study)
    return render(
        request,
        "annotation/study.html",
        {
            "study": study,
            "rubric": study.rubric_version.parsed,
            "rubric_version": study.rubric_version,
            "progress": study.progress(),
            "annotators": quality.annotator_summaries(study),
            "per_day": study.labels_per_day(),
            "queue": queue,
            "queue_states": [
                (s, name, queue["states"][s]) for s, name in adjudication.QUEUE_STATES.items()
            ],
            "join_url": f"{request.scheme}://{request.get_host()}{study.join_path()}",
        },
    )


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
