"""The studies home and a study's dashboard."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from annotation import adjudication, quality
from annotation.access import get_study_for, has_role
from annotation.models import Study, StudyMembership


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
