"""Who may see what: every page and endpoint fetches its study through get_study_for."""

from django.http import Http404

from annotation.models import Study, StudyMembership


def has_role(study, user, role):
    """True when the user's role in the study is `role` or one that may do more."""
    actual = study.role_of(user)
    return actual is not None and StudyMembership.RANK[actual] >= StudyMembership.RANK[role]


def get_study_for(request, slug, role):
    """The study, or 404 unless the user holds `role` (or a higher one) in it.

    A 404 rather than a 403, so that a study's existence is not revealed to outsiders.
    """
    try:
        study = Study.objects.get_for(slug, request.user)
    except Study.DoesNotExist:
        raise Http404("No such study") from None
    if not has_role(study, request.user, role):
        raise Http404("No such study")
    return study


def can_create_studies(user):
    """Staff, and researchers of any study, may start studies (and become their admins)."""
    return user.is_staff or Study.objects.where_role(user, StudyMembership.Role.RESEARCHER).exists()
