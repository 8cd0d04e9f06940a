"""A study's people: inviting them, their roles, removing them, the crowd join token, and why
an annotator would be handed nothing.

Every change here writes the study's audit log in the same transaction as the change itself,
so the log never shows a change that did not happen, nor misses one that did.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotation import quality
from annotation.assignment import has_work
from annotation.models import (
    Annotation,
    Invitation,
    QueueReservation,
    Reservation,
    Study,
    StudyMembership,
)
from quorum.auth import account_username

Role = StudyMembership.Role
MAX_NAME_LENGTH = Invitation._meta.get_field("name").max_length
DEFAULT_EXPIRY_DAYS = 7

STATUS_REASONS = {
    Study.Status.DRAFT: "the study is a draft: open it to hand out items",
    Study.Status.PAUSED: "the study is paused: open it again to hand out items",
    Study.Status.CLOSED: "the study is closed: it hands out no more items",
}
NO_ITEMS = "the study has no items: upload them to hand them out"


class PeopleError(ValueError):
    """A change to a study's people that is refused; the message says why, for the page."""


class InvitationClosed(Exception):
    """The invitation was used, revoked or expired (perhaps by another request just now)."""


def parse_names(text):
    """The user names and e-mail addresses of a paste, one per line or separated by commas,
    each once, in order. PeopleError naming the first bad line: an invitation goes to no one
    of a paste that has a mistake in it, so that fixing it and pasting again sends each once."""
    names = []
    for number, line in enumerate(text.splitlines(), 1):
        for name in line.split(","):
            name = name.strip()
            if not name:
                continue
            if problem := _name_problem(name):
                raise PeopleError(f"line {number}: {name!r} {problem}")
            if name not in names:
                names.append(name)
    if not names:
        raise PeopleError("paste at least one user name or e-mail address")
    return names


def _name_problem(name):
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    try:
        UnicodeUsernameValidator()(name)
        if "@" in name and account_for(name) is None:
            EmailValidator()(name)  # a new account's e-mail name is its address too
    except ValidationError:
        if "@" in name:
            return "is not an e-mail address"
        return "is not a user name (letters, digits and @ . + - _ only)"
    return None


def invite(study, by, names, role, days=DEFAULT_EXPIRY_DAYS):
    """One single-use invitation per name, expiring after `days`, all or none."""
    if role not in Role.values:
        raise PeopleError(f"{role!r} is not a role")
    expires_at = timezone.now() + timedelta(days=days)
    with transaction.atomic():
        invitations = []
        for name in names:
            invitations.append(
                Invitation.objects.create(
                    study=study, name=name, role=role, created_by=by, expires_at=expires_at
                )
            )
            study.record(
                by, "people", "", f"invited {name} as {role} until {expires_at:%Y-%m-%d %H:%M}"
            )
    return invitations


def pending_invitations(study):
    return study.invitations.filter(used_at=None, expires_at__gt=timezone.now()).order_by(
        "-created_at", "name"
    )


def revoke(study, by, invitation):
    """Withdraw a pending invitation: its link stops working."""
    with transaction.atomic():
        if not invitation.revoke():
            raise PeopleError(f"the invitation of {invitation.name} was used or revoked already")
        study.record(
            by, "people", f"invitation of {invitation.name} as {invitation.role}", "revoked"
        )


def change_role(study, by, membership, role):
    """Give a member another role; the study always keeps an admin."""
    if role not in Role.values:
        raise PeopleError(f"{role!r} is not a role")
    if membership.worker_id and role != Role.ANNOTATOR:
        # participant() refuses a worker id of any other role: the link would stop working.
        raise PeopleError("a crowd participant joins by the study's link and stays an annotator")
    name = membership.user.get_username()
    with transaction.atomic():
        before = _lock_keeping_an_admin(study, membership, role)
        if before == role:
            return
        StudyMembership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
        study.record(by, "people", f"{name}: {before}", f"{name}: {role}")


def remove(study, by, membership):
    """Take a member out of the study. Their account and rater stay, and so do their labels,
    attributed to that rater; the items they were holding are let go at once."""
    user = membership.user
    with transaction.atomic():
        before = _lock_keeping_an_admin(study, membership, None)
        Reservation.objects.filter(item__study=study, user=user).delete()
        QueueReservation.objects.filter(item__study=study, user=user).delete()
        StudyMembership.objects.filter(pk=membership.pk).delete()
        study.record(
            by, "people", f"{user.get_username()}: {before}", "removed (their labels stay)"
        )


def _lock_keeping_an_admin(study, membership, role):
    """The member's role, read under a lock on the study's admins, after checking that the
    change to `role` (None: removal) leaves the study an admin. Locked, so that two admins
    demoting each other at once cannot leave it none. Site superusers do not count: they
    act as every study's admins, but are no one the study chose."""
    admins = list(
        study.memberships.select_for_update().filter(role=Role.ADMIN).values_list("pk", flat=True)
    )
    current = study.memberships.select_for_update().filter(pk=membership.pk).first()
    if current is None:
        raise PeopleError(f"{membership.user.get_username()} is no longer a member")
    if admins == [current.pk] and role != Role.ADMIN:
        raise PeopleError(
            f"{membership.user.get_username()} is the study's last admin: "
            "make someone else an admin first"
        )
    return current.role


def rotate_join_token(study, by):
    """A new secret for the study's crowd link: links with the old one stop working. The log
    keeps the tokens' last characters only, enough to tell the links apart."""
    old, new = study.join_token, Study._meta.get_field("join_token").get_default()
    with transaction.atomic():
        if not Study.objects.filter(pk=study.pk, join_token=old).update(join_token=new):
            raise PeopleError("someone else changed the join link just now; reload the page")
        study.record(by, "join token", f"…{old[-4:]}", f"…{new[-4:]}")
    study.join_token = new


def account_for(name):
    """The account an invited name stands for, or None: the user of that name (in any case,
    so that inviting "Bob" finds bob rather than making a second Bob), or the one user with
    that e-mail address."""
    users = get_user_model()._default_manager
    username = account_username(name)
    if user := users.filter(username=username).first():
        return user
    alike = list(users.filter(username__iexact=username)[:2])
    return alike[0] if len(alike) == 1 else None


def what_accepting_does(invitation, user):
    """A sentence for the accept button: an invitation never lowers a member's role."""
    membership = invitation.study.membership_of(user)
    if membership is None:
        return f"Accepting makes you {_a(invitation.role)} of this study."
    if membership.role == invitation.role:
        return f"You are {_a(membership.role)} of this study already; accepting changes nothing."
    if StudyMembership.RANK[invitation.role] > StudyMembership.RANK[membership.role]:
        return (
            f"You are {_a(membership.role)} of this study; accepting makes you "
            f"{_a(invitation.role)}."
        )
    return (
        f"You are {_a(membership.role)} of this study already, which may do more than "
        f"{_a(invitation.role)}: accepting keeps your role."
    )


def _a(role):
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


def accept(invitation, user):
    """Make the user a member with the invited role, using the invitation up; a member
    already keeps their role unless the invited one may do more. InvitationClosed when the
    invitation was closed first (by another request, even at this instant)."""
    study, name = invitation.study, user.get_username()
    with transaction.atomic():
        if not invitation.use(user):
            raise InvitationClosed(invitation.token)
        membership, created = StudyMembership.objects.get_or_create(
            study=study, user=user, defaults={"role": invitation.role}
        )
        before = "" if created else f"{name}: {membership.role}"
        rank = StudyMembership.RANK
        if not created and rank[invitation.role] > rank[membership.role]:
            StudyMembership.objects.filter(pk=membership.pk).update(role=invitation.role)
            membership.role = invitation.role
        study.record(user, "people", before, f"{name}: {membership.role} (by invitation)")
    return membership


def accept_as_new_account(invitation, password):
    """The membership of the account the invitation names, made with the password chosen
    (checked by the caller against the password validators). The user name is the
    invited name; an e-mail name is the account's address too, so it can log in with it.
    InvitationClosed when the invitation, or the name, was taken first."""
    name = invitation.name
    user = get_user_model()(username=name, email=name if "@" in name else "")
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            return accept(invitation, user)
    except IntegrityError:
        raise InvitationClosed(invitation.token) from None  # the name became an account


@dataclass
class Member:
    """A row of the people page."""

    membership: StudyMembership
    labels: int
    idle: str | None  # why an annotator would be handed nothing (why_idle)
    error: str = ""

    @property
    def name(self):
        return self.membership.user.get_username()


def members(study):
    """Everyone in the study, admins first, with their labels and, for annotators, why they
    would get nothing. The study not open, or without items, stands for every annotator (and
    saves asking the assignment engine once per annotator); a full study does not, since one
    holding a reservation still has an item."""
    memberships = study.memberships.select_related("user")
    labels = dict(
        Annotation.objects.of_study(study)
        .current()
        .filter(rater__user__isnull=False)
        .values("rater__user")
        .annotate(n=Count("pk"))
        .values_list("rater__user", "n")
    )
    common = STATUS_REASONS.get(study.status) or (None if study.items.exists() else NO_ITEMS)
    rows = []
    for membership in memberships:
        idle = None
        if membership.role == Role.ANNOTATOR:
            # Study.membership_of's cache: the engine's pause check reads no row again.
            study.__dict__.setdefault("_memberships", {})[membership.user_id] = membership
            idle = common or why_idle(study, membership.user)
        rows.append(Member(membership, labels.get(membership.user_id, 0), idle))
    rank = StudyMembership.RANK
    return sorted(rows, key=lambda r: (-rank[r.membership.role], r.name.lower()))


def why_idle(study, user):
    """Why the annotator would be handed no item now, as a sentence; None when they would get
    one. The assignment engine answers first (has_work), so this never contradicts what the
    annotator meets; then the first obstacle is named, in the order the engine meets them."""
    if has_work(study, user):
        return None
    if study.status != Study.Status.OPEN:
        return STATUS_REASONS[study.status]
    membership = study.membership_of(user)
    if membership and membership.paused_at:
        return f"paused by quality control: {membership.paused_reason or 'no reason given'}"
    target = study.items_per_annotator
    if target and study.labels_by(user).count() >= target:
        return f"they have labelled the study's {target} items per annotator"
    if reason := _items_reason(study):
        return reason
    if quality.is_qualifying(study, user):
        return (
            f"they must first answer {study.qualification_gold_items} qualification gold "
            "items, and no gold item is left for them"
        )
    return (
        "no items left for them: those still needing labels they labelled or skipped "
        "already, or others are holding"
    )


def study_idle_reason(study):
    """Why no annotator at all would be handed an item now (the study not open, no items,
    every item full), as a sentence for the study page; None when one could be."""
    return STATUS_REASONS.get(study.status) or _items_reason(study)


def _items_reason(study):
    """Why the study's items offer no place to anyone, or None. A gold item is a place for
    every annotator who has not seen it; a regular one while its labels and live reservations
    are fewer than it needs (as the engine counts them: expired ones are let go when met)."""
    if not study.items.exists():
        return NO_ITEMS
    handed_out = study.items.filter(routed_at=None)
    if handed_out.filter(is_gold=True).exists():
        return None
    needed = study.overlap + F("extra_labels")
    wanting = study.items.filter(is_gold=False, human_labels__lt=needed)
    if not wanting.filter(routed_at=None).exists():
        if wanting.exists():
            return "the items still needing labels are all in the expert queue"
        return f"every item has its {study.overlap} labels: no items left to hand out"
    live = Count("reservations", filter=Q(reservations__expires_at__gt=timezone.now()))
    free = wanting.filter(routed_at=None).alias(taken=F("human_labels") + live)
    if not free.filter(taken__lt=needed).exists():
        return (
            "every item still needing labels is held by an annotator now; places come back "
            "as their reservations expire"
        )
    return None
