"""A study's people page, for its admins, and the invitation link, for the people invited."""

from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from annotation import people
from annotation.access import get_study_for, has_role
from annotation.forms import InviteForm
from annotation.models import Invitation, Study, StudyMembership
from annotation.people import InvitationClosed, PeopleError

Role = StudyMembership.Role


@login_required
@require_http_methods(["GET", "POST"])
def people_page(request, slug):
    """Who is in the study (GET); an invitation, a change of role, a removal or a new join
    link (POST, by its `action`), then the page again."""
    study = get_study_for(request, slug, role=Role.ADMIN)
    if request.method == "GET":
        return _page(request, study)
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        return _page(request, study, error="Choose one of the page's buttons.", status=400)
    return action(request, study)


def _invite(request, study):
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _page(request, study, invite_form=form, status=400)
    data = form.cleaned_data
    people.invite(study, request.user, data["names"], data["role"], days=data["days"])
    return redirect("annotation:people", slug=study.slug)


def _revoke(request, study):
    invitation = study.invitations.filter(token=request.POST.get("invitation", "")).first()
    if invitation is None:
        return _page(request, study, error="There is no such invitation.", status=400)
    try:
        people.revoke(study, request.user, invitation)
    except PeopleError as e:
        return _page(request, study, error=str(e), status=400)
    return redirect("annotation:people", slug=study.slug)


def _change_role(request, study):
    return _change_member(
        request,
        study,
        lambda m: people.change_role(study, request.user, m, request.POST.get("role", "")),
    )


def _remove(request, study):
    return _change_member(request, study, lambda m: people.remove(study, request.user, m))


def _change_member(request, study, change):
    name = request.POST.get("member", "")
    membership = study.memberships.select_related("user").filter(user__username=name).first()
    if membership is None:
        return _page(request, study, error=f"{name!r} is not a member.", status=400)
    try:
        change(membership)
    except PeopleError as e:
        return _page(request, study, member_errors={name: str(e)}, status=400)
    if not has_role(Study.objects.get(pk=study.pk), request.user, Role.ADMIN):
        return redirect("annotation:studies")  # they changed their own role: not theirs now
    return redirect("annotation:people", slug=study.slug)


def _rotate(request, study):
    if request.POST.get("confirm") != "yes":
        return _page(
            request,
            study,
            token_error="Tick the box to confirm: links with the old token stop working.",
            status=400,
        )
    try:
        people.rotate_join_token(study, request.user)
    except PeopleError as e:
        return _page(request, study, token_error=str(e), status=400)
    return redirect("annotation:people", slug=study.slug)


ACTIONS = {
    "invite": _invite,
    "revoke": _revoke,
    "role": _change_role,
    "remove": _remove,
    "rotate": _rotate,
}


def _page(
    request, study, *, invite_form=None, member_errors=None, token_error="", error="", status=200
):
    rows = people.members(study)
    for row in rows:
        row.error = (member_errors or {}).get(row.name, "")
    study_reason = people.study_idle_reason(study)
    invitations = [
        (
            invitation,
            request.build_absolute_uri(invitation.path()),
            study_reason if invitation.role == Role.ANNOTATOR else None,
        )
        for invitation in people.pending_invitations(study)
    ]
    return render(
        request,
        "annotation/people.html",
        {
            "study": study,
            "members": rows,
            "roles": Role.choices,
            "invitations": invitations,
            "invite_form": invite_form or InviteForm(),
            "join_url": request.build_absolute_uri(study.join_path()),
            "token_error": token_error,
            "error": error,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def invitation(request, token):
    """An invitation's link, open to anyone who holds it: a new account for a name that has
    none yet, or, signed in as the account named, one click to accept."""
    invitation = get_object_or_404(Invitation.objects.select_related("study"), token=token)
    if invitation.state != "pending":
        return _closed(request, invitation)
    account = people.account_for(invitation.name)
    if account is None:
        return _new_account(request, invitation)
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.user != account:
        return render(
            request,
            "annotation/invitation.html",
            {"invitation": invitation, "account": account, "mode": "other"},
            status=403,
        )
    if request.method == "POST":
        try:
            membership = people.accept(invitation, request.user)
        except InvitationClosed:
            return _closed(request, invitation)
        return _onward(membership)
    outcome = people.what_accepting_does(invitation, request.user)
    return render(
        request,
        "annotation/invitation.html",
        {"invitation": invitation, "mode": "accept", "outcome": outcome},
    )


def _new_account(request, invitation):
    """The password form for the invited name; its account is made when it validates."""
    name = invitation.name
    user = get_user_model()(username=name, email=name if "@" in name else "")
    form = SetPasswordForm(user, request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            password = form.cleaned_data["new_password1"]
            membership = people.accept_as_new_account(invitation, password)
        except InvitationClosed:
            # Used by someone else first, or the name became an account: the link says which.
            return redirect("annotation:invitation", token=invitation.token)
        login(request, membership.user, backend="quorum.auth.UsernameOrEmailBackend")
        return _onward(membership)
    return render(
        request,
        "annotation/invitation.html",
        {"invitation": invitation, "mode": "new", "form": form},
        status=400 if form.is_bound else 200,
    )


def _closed(request, invitation):
    """A used, revoked or expired invitation: a dead link shows not even the study's name."""
    invitation.refresh_from_db(fields=["used_at", "used_by"])
    return render(
        request, "annotation/invitation_closed.html", {"invitation": invitation}, status=410
    )


def _onward(membership):
    if membership.role == Role.ANNOTATOR:
        return redirect("annotation:label", slug=membership.study.slug)
    return redirect("annotation:studies")
