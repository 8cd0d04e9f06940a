"""Who may configure judges: superusers and holders of the `judging.change_judge` permission.

A judge's base URL receives its API key and every prompt of the runs it does, so pointing one
somewhere is a right of its own, not something being staff gives. Running judges on a study is
the study's business: its researchers and admins (see get_study_for).
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

CONFIGURE = "judging.change_judge"


def may_configure_judges(user):
    return user.is_active and user.has_perm(CONFIGURE)


class JudgePermission(BasePermission):
    """Reading judges needs `view_judge` (or the right to change them); every write needs
    `change_judge`, adding and deleting included."""

    def has_permission(self, request, view):
        user = request.user
        if request.method in SAFE_METHODS and user.has_perm("judging.view_judge"):
            return True
        return may_configure_judges(user)
