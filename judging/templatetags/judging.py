"""The Judges section of the study page, which lives in annotation and cannot import judging."""

from django import template

from annotation.access import has_role
from annotation.models import StudyMembership
from judging.forms import RunForm

register = template.Library()
RUNS_SHOWN = 20


@register.inclusion_tag("judging/_panel.html", takes_context=True)
def judge_panel(context, study, user):
    """The study's latest judge runs with their progress, and the form that starts one.

    Renders nothing for those who may not run judges, whatever page includes it.
    """
    if not has_role(study, user, StudyMembership.Role.RESEARCHER):
        return {"show": False}
    runs = study.judge_runs.select_related("judge", "study__rubric").order_by("-created_at")
    return {
        "show": True,
        "study": study,
        "runs": [(run, run.progress()) for run in runs[:RUNS_SHOWN]],
        "form": RunForm(study),
        "csrf_token": context.get("csrf_token"),
    }
