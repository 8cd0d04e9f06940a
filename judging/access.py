"""Who may run judges on a study: its researchers and admins, and site staff."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from annotation.access import get_study_for, has_role
from annotation.models import Study, StudyMembership


def may_judge(study, user):
    return user.is_staff or has_role(study, user, StudyMembership.Role.RESEARCHER)


def get_study_for_judges(request, slug):
    """The study, if the user may see and start its judge runs and prompt templates.

    Outsiders get a 404, as on every study page; members below researcher know the study
    exists and get a 403. Annotators never see what a judge said.
    """
    if request.user.is_staff:
        return get_object_or_404(Study.objects.select_related("rubric"), slug=slug)
    study = get_study_for(request, slug, role=StudyMembership.Role.ANNOTATOR)
    if not may_judge(study, request.user):
        raise PermissionDenied("Judge runs are for the study's researchers and admins.")
    return study
