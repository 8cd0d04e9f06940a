"""The studies home, a study's dashboard, and setting a study up: new, settings, clone,
archive, lifecycle, and the Markdown preview of its instructions."""

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from annotation import adjudication, quality
from annotation.access import can_create_studies, get_study_for, has_role
from annotation.forms import StudyForm, settings_of
from annotation.models import Rubric, Study, StudyMembership, StudyStatusError
from annotation.people import study_idle_reason
from annotation.rubrics import STARTERS
from annotation.templatetags.markdown import render_uncached
from calibration.report_cache import cached_report

CHANGES_SHOWN = 50
MAX_PREVIEW_CHARS = 100_000


@login_required
def studies(request):
    """The user's studies, each linked to the dashboard for its researchers and admins, and
    to the labelling page for its annotators and experts; experts and researchers also get
    the expert queue. Researchers see each study's progress, agreement and queue."""
    visible = Study.objects.visible_to(request.user).select_related("rubric").order_by("name")
    rows = [_home_row(s, request.user) for s in visible]
    return render(
        request,
        "annotation/studies.html",
        {
            "active": [r for r in rows if not r["study"].archived_at],
            "archived": [r for r in rows if r["study"].archived_at],
            "can_create": can_create_studies(request.user),
        },
    )


def _home_row(study, user):
    row = {
        "study": study,
        "manages": has_role(study, user, StudyMembership.Role.RESEARCHER),
        "adjudicates": has_role(study, user, StudyMembership.Role.EXPERT),
        "administers": has_role(study, user, StudyMembership.Role.ADMIN),
    }
    if row["manages"]:
        row["progress"] = study.progress()
        row["queue_open"] = adjudication.open_queue_size(study)
        row["agreement"] = _agreement_so_far(study)
    return row


def _agreement_so_far(study):
    """The first question's human Krippendorff alpha from the cached report, or None while
    no report is built (the home page never builds one)."""
    entry = cached_report(study)
    questions = entry["report"]["questions"] if entry else []
    return questions[0]["humans"]["krippendorff_alpha"] if questions else None


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
            "administers": has_role(study, request.user, StudyMembership.Role.ADMIN),
            "next_statuses": [s for s in Study.Status if s in Study.NEXT_STATUSES[study.status]],
            "changes": study.changes.select_related("user").order_by("-at")[:CHANGES_SHOWN],
            "idle_reason": study_idle_reason(study),
        },
    )


@login_required
def new_study(request):
    """A new study: its settings and the questions it starts from, then the rubric builder."""
    if not can_create_studies(request.user):
        raise Http404("No such page")
    form = StudyForm(request.POST or None)
    starter = request.POST.get("starter", "pairwise")
    if request.method == "POST" and starter not in STARTERS:
        form.add_error(None, "Choose the questions the study starts from.")
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.instance.rubric = Rubric.objects.create(
                name=STARTERS[starter]["name"], definition=STARTERS[starter]
            )
            new = form.save()
            StudyMembership.objects.create(
                study=new, user=request.user, role=StudyMembership.Role.ADMIN
            )
            new.record(request.user, "created", "", new.slug)
        return redirect("annotation:rubric", slug=new.slug)
    return render(
        request,
        "annotation/study_settings.html",
        {"form": form, "starters": STARTERS, "starter": starter},
        status=400 if request.method == "POST" else 200,
    )


@login_required
def study_settings(request, slug):
    """Edit a study's settings; each change goes to the audit log. A closed study's settings
    are shown, not edited."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ADMIN)
    before = settings_of(study)
    data = request.POST if request.method == "POST" and not study.read_only else None
    form = StudyForm(data, instance=study)
    if data is not None and form.is_valid():
        with transaction.atomic():
            # Only the settings: a status, join token or archive changed meanwhile stays.
            form.instance.save(update_fields=[*Study.SETTINGS])
            for name, old, new in form.changes(before):
                study.record(request.user, name, old, new)
        return redirect("annotation:study", slug=slug)
    return render(
        request,
        "annotation/study_settings.html",
        {"form": form, "study": study},
        status=400 if data is not None else 200,
    )


@login_required
@require_POST
def clone(request, slug):
    study = get_study_for(request, slug, role=StudyMembership.Role.ADMIN)
    copy = study.clone(request.user)
    return redirect("annotation:settings", slug=copy.slug)


@login_required
@require_POST
def archive(request, slug):
    """Archive a study (listed apart on the home page), or bring it back."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ADMIN)
    archived = request.POST.get("archived") != "no"
    if archived != bool(study.archived_at):
        study.archived_at = timezone.now() if archived else None
        study.save(update_fields=["archived_at"])
        study.record(request.user, "archived", not archived, archived)
    return redirect("annotation:studies")


@login_required
@require_POST
def change_status(request, slug):
    """Open, pause or close the study. Closing makes it read-only for good, so it is asked
    for twice: the second time with `confirm`."""
    study = get_study_for(request, slug, role=StudyMembership.Role.ADMIN)
    status = request.POST.get("status", "")
    if status == Study.Status.CLOSED and request.POST.get("confirm") != "yes":
        return render(request, "annotation/close_confirm.html", {"study": study})
    try:
        study.change_status(status, request.user)
    except StudyStatusError as e:
        return render(
            request, "annotation/status_error.html", {"study": study, "error": e}, status=400
        )
    return redirect("annotation:study", slug=slug)


@login_required
@require_POST
def markdown_preview(request):
    """Instructions as annotators will see them: the same Markdown rendering and sanitising,
    for those who set studies up; not cached, since it is one person's draft."""
    if not can_create_studies(request.user):
        raise Http404("No such page")
    text = request.POST.get("text", "")
    if len(text) > MAX_PREVIEW_CHARS:
        return HttpResponse(
            f"Too long to preview (over {MAX_PREVIEW_CHARS:,} characters).", status=400
        )
    return HttpResponse(render_uncached(text))
