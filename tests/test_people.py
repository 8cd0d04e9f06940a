"""A study's people page, for its admins: invitations, roles, removal, the join link; the
invitation link itself; and why an annotator would be handed nothing."""

import uuid
from datetime import timedelta

import pytest
from conftest import make_study, make_user
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from annotation import people
from annotation.assignment import next_item, submit
from annotation.models import (
    Annotation,
    Invitation,
    Item,
    Rater,
    Study,
    StudyChange,
    StudyMembership,
)

pytestmark = pytest.mark.django_db
Role = StudyMembership.Role
PASSWORD = "a-long-passphrase-7261"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_client(client, alice):
    client.force_login(alice)
    return client


def add_items(study, n, *, gold=False):
    start = study.items.count()
    return [
        Item.objects.create(
            study=study,
            external_id=f"{'g' if gold else 'q'}{start + i}",
            position=start + i,
            prompt=f"Question {start + i}",
            responses=[{"key": k, "text": f"Answer {k}", "model": f"m-{k}"} for k in "AB"],
            is_gold=gold,
            gold_answers={"pref": "A"} if gold else {},
        )
        for i in range(n)
    ]


def answer_next(study, user):
    reservation = next_item(study, user)
    assert reservation is not None
    return submit(study, user, reservation.item, {"pref": "A"}, submission_id=uuid.uuid4())


def post(client, study, **data):
    return client.post(f"/studies/{study.slug}/people/", data)


def changes(study):
    return list(study.changes.order_by("at", "pk").values_list("what", "before", "after"))


def invitation(study, name="dana", role=Role.ANNOTATOR, **fields):
    fields.setdefault("expires_at", timezone.now() + timedelta(days=7))
    return Invitation.objects.create(study=study, name=name, role=role, **fields)


# The people page


def test_it_lists_the_members_with_their_role_labels_and_state(admin_client, study, alice, bob):
    study.status = Study.Status.OPEN
    study.save()
    add_items(study, 2)
    answer_next(study, bob)
    StudyMembership.objects.filter(user=bob).update(paused_at=timezone.now(), paused_reason="slow")

    page = admin_client.get(f"/studies/{study.slug}/people/")

    assert page.status_code == 200
    rows = {m.name: m for m in page.context["members"]}
    assert [m.name for m in page.context["members"]] == ["alice", "bob"]  # admins first
    assert rows["bob"].labels == 1 and rows["alice"].labels == 0
    assert "<strong>paused</strong>: slow" in page.text


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.EXPERT, Role.ANNOTATOR])
def test_it_hides_the_people_page_from_everyone_below_admin(client, study, alice, role):
    client.force_login(make_user("dave", role, study))
    assert client.get(f"/studies/{study.slug}/people/").status_code == 404
    assert post(client, study, action="invite", names="x", role="admin", days=7).status_code == 404
    assert not Invitation.objects.exists()


def test_it_opens_the_people_page_to_site_superusers(client, study, alice):
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests-only"))
    assert client.get(f"/studies/{study.slug}/people/").status_code == 200


# Inviting


def test_it_makes_one_invitation_per_name_of_a_paste(admin_client, study):
    reply = post(
        admin_client,
        study,
        action="invite",
        names="dana\nerin@example.org, frank\n\n  dana  \n",
        role="expert",
        days="3",
    )

    assert reply.status_code == 302 and reply.url == f"/studies/{study.slug}/people/"
    made = Invitation.objects.filter(study=study).order_by("name")
    assert [(i.name, i.role) for i in made] == [
        ("dana", "expert"),
        ("erin@example.org", "expert"),
        ("frank", "expert"),
    ]
    for i in made:
        assert timedelta(days=3) - (i.expires_at - i.created_at) < timedelta(seconds=5)
    assert len({i.token for i in made}) == 3
    assert [c[0] for c in changes(study)] == ["people"] * 3
    assert "invited erin@example.org as expert" in changes(study)[1][2]
    page = admin_client.get(reply.url).text
    for i in made:
        assert f'value="http://testserver/invite/{i.token}/"' in page


@pytest.mark.parametrize(
    "names, message",
    [
        ("dana\nerin\nnot a name\nfrank", "line 3: &#x27;not a name&#x27; is not a user name"),
        ("dana, <b>x</b>", "line 1: &#x27;&lt;b&gt;x&lt;/b&gt;&#x27; is not a user name"),
        ("dana\nerin@nowhere", "line 2: &#x27;erin@nowhere&#x27; is not an e-mail address"),
        ("", "Paste at least one user name or e-mail address."),
        (" , \n ,", "paste at least one user name or e-mail address"),
        ("x" * 151, "line 1: &#x27;" + "x" * 151 + "&#x27; is longer than 150 characters"),
    ],
)
def test_a_paste_with_a_bad_line_invites_no_one_and_names_the_line(
    admin_client, study, names, message
):
    reply = post(admin_client, study, action="invite", names=names, role="annotator", days=7)

    assert reply.status_code == 400
    assert f'data-field-error="names">{message}' in reply.text
    assert not Invitation.objects.exists()
    assert not StudyChange.objects.exists()


@pytest.mark.parametrize(
    "field, value", [("role", "owner"), ("role", ""), ("days", "0"), ("days", "x"), ("days", "")]
)
def test_an_unknown_role_or_a_bad_expiry_is_refused_beside_its_field(
    admin_client, study, field, value
):
    data = {"action": "invite", "names": "dana", "role": "annotator", "days": "7", field: value}
    reply = post(admin_client, study, **data)

    assert reply.status_code == 400
    assert f'data-field-error="{field}"' in reply.text
    assert not Invitation.objects.exists()


def test_a_pending_invitation_can_be_revoked_and_its_link_then_fails(admin_client, client, study):
    sent = invitation(study)
    reply = post(admin_client, study, action="revoke", invitation=sent.token)
    assert reply.status_code == 302
    assert changes(study) == [("people", "invitation of dana as annotator", "revoked")]
    assert f"/invite/{sent.token}/" not in admin_client.get(reply.url).text

    again = post(admin_client, study, action="revoke", invitation=sent.token)
    assert again.status_code == 400 and "used or revoked already" in again.text

    admin_client.logout()
    visit = admin_client.get(f"/invite/{sent.token}/")
    assert visit.status_code == 410 and "withdrawn" in visit.text


def test_it_shows_why_an_invited_annotator_would_get_nothing(admin_client, study):
    invitation(study, "dana", Role.ANNOTATOR)
    invitation(study, "erin", Role.EXPERT)

    page = admin_client.get(f"/studies/{study.slug}/people/")

    reasons = {i.name: reason for i, _, reason in page.context["invitations"]}
    assert reasons == {"dana": "the study is a draft: open it to hand out items", "erin": None}
    assert "Would get no items: the study is a draft" in page.text


# Accepting an invitation


def test_it_makes_the_invited_account_and_membership_and_signs_them_in(client, study):
    study.status = Study.Status.OPEN
    study.save()
    sent = invitation(study, "erin@example.org", Role.ANNOTATOR)

    shown = client.get(f"/invite/{sent.token}/")
    assert shown.status_code == 200
    assert study.name in shown.text and "annotator" in shown.text

    reply = client.post(
        f"/invite/{sent.token}/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )

    assert reply.status_code == 302 and reply.url == f"/s/{study.slug}/label/"
    user = User.objects.get(username="erin@example.org")
    assert user.email == "erin@example.org" and user.check_password(PASSWORD)
    assert StudyMembership.objects.get(study=study, user=user).role == Role.ANNOTATOR
    assert int(client.session["_auth_user_id"]) == user.pk
    sent.refresh_from_db()
    assert sent.state == "used" and sent.used_by == user
    assert changes(study)[-1] == ("people", "", "erin@example.org: annotator (by invitation)")


def test_an_invited_researcher_is_sent_to_the_studies(client, study):
    sent = invitation(study, "dana", Role.RESEARCHER)
    reply = client.post(
        f"/invite/{sent.token}/", {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert reply.status_code == 302 and reply.url == "/"
    assert User.objects.get(username="dana").email == ""


@pytest.mark.parametrize("password, again", [("dana", "dana"), ("123", "123"), (PASSWORD, "x")])
def test_a_password_the_validators_refuse_makes_no_account(client, study, password, again):
    sent = invitation(study, "dana")
    reply = client.post(
        f"/invite/{sent.token}/", {"new_password1": password, "new_password2": again}
    )

    assert reply.status_code == 400
    assert 'data-field-error="new_password2"' in reply.text
    assert not User.objects.filter(username="dana").exists()
    sent.refresh_from_db()
    assert sent.state == "pending"


def test_an_invitation_works_once(client, study):
    sent = invitation(study, "dana")
    passwords = {"new_password1": PASSWORD, "new_password2": PASSWORD}
    assert client.post(f"/invite/{sent.token}/", passwords).status_code == 302
    client.logout()

    assert client.get(f"/invite/{sent.token}/").status_code == 410
    again = client.post(f"/invite/{sent.token}/", passwords)
    assert again.status_code == 410 and "has been used" in again.text
    assert User.objects.filter(username="dana").count() == 1


def test_two_acceptances_at_once_use_the_invitation_once(study):
    """Both requests read the invitation pending; the conditional update lets one through."""
    sent = invitation(study)
    first, second = Invitation.objects.get(pk=sent.pk), Invitation.objects.get(pk=sent.pk)
    dana, erin = make_user("dana"), make_user("erin")

    assert people.accept(first, dana).role == Role.ANNOTATOR
    with pytest.raises(people.InvitationClosed):
        people.accept(second, erin)
    assert not StudyMembership.objects.filter(user=erin).exists()
    assert second.revoke() is False


@pytest.mark.parametrize(
    "state, fields, words",
    [
        ("expired", {"expires_at": timezone.now() - timedelta(minutes=1)}, "has expired"),
        ("revoked", {"used_at": timezone.now()}, "withdrawn"),
        ("used", {"used_at": timezone.now(), "used_by": "frank"}, "has been used"),
    ],
)
def test_a_closed_invitation_answers_410_and_makes_no_one_a_member(
    client, study, state, fields, words
):
    if "used_by" in fields:
        fields["used_by"] = make_user(fields["used_by"])
    study.name = "Private study qz7x"  # long: never part of a random token on the page
    study.save()
    sent = invitation(study, "dana", **fields)
    dana = make_user("dana")
    client.force_login(dana)

    for reply in (client.get(f"/invite/{sent.token}/"), client.post(f"/invite/{sent.token}/")):
        assert reply.status_code == 410
        assert words in reply.text
        assert study.name not in reply.text  # a dead link shows nothing of the study
    assert not StudyMembership.objects.filter(user=dana).exists()
    sent.refresh_from_db()
    assert sent.state == state


def test_an_unknown_invitation_is_not_found(client, study):
    assert client.get("/invite/no-such-token/").status_code == 404


def test_an_existing_account_must_be_signed_in_to_accept(client, study):
    dana = make_user("dana")
    sent = invitation(study, "dana", Role.EXPERT)

    reply = client.get(f"/invite/{sent.token}/")
    assert reply.status_code == 302
    assert reply.url == f"/login/?next=/invite/{sent.token}/"
    assert client.post(f"/invite/{sent.token}/").status_code == 302
    assert not User.objects.get(pk=dana.pk).memberships.exists()

    client.force_login(make_user("erin"))
    other = client.post(f"/invite/{sent.token}/")
    assert other.status_code == 403 and "for the account <strong>dana</strong>" in other.text
    assert not StudyMembership.objects.filter(study=study).exists()

    client.force_login(dana)
    shown = client.get(f"/invite/{sent.token}/")
    assert shown.status_code == 200 and "Accepting makes you an expert" in shown.text
    accepted = client.post(f"/invite/{sent.token}/")
    assert accepted.status_code == 302 and accepted.url == "/"
    assert StudyMembership.objects.get(study=study, user=dana).role == Role.EXPERT


def test_an_invited_email_finds_the_account_with_that_address(client, study):
    dana = make_user("dana")
    dana.email = "dana@example.org"
    dana.save()
    sent = invitation(study, "Dana@Example.org", Role.ANNOTATOR)
    client.force_login(dana)

    assert client.post(f"/invite/{sent.token}/").status_code == 302
    assert StudyMembership.objects.get(study=study, user=dana).role == Role.ANNOTATOR
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "had, invited, has, says",
    [
        (Role.RESEARCHER, Role.ANNOTATOR, Role.RESEARCHER, "accepting keeps your role"),
        (Role.ANNOTATOR, Role.RESEARCHER, Role.RESEARCHER, "accepting makes you a researcher"),
        (Role.EXPERT, Role.EXPERT, Role.EXPERT, "accepting changes nothing"),
    ],
)
def test_an_invitation_never_lowers_a_members_role(client, study, had, invited, has, says):
    dana = make_user("dana", had, study)
    sent = invitation(study, "dana", invited)
    client.force_login(dana)

    assert says in client.get(f"/invite/{sent.token}/").text
    client.post(f"/invite/{sent.token}/")

    assert StudyMembership.objects.get(study=study, user=dana).role == has
    assert changes(study)[-1] == ("people", f"dana: {had}", f"dana: {has} (by invitation)")


# Roles and removal


def test_an_admin_changes_a_members_role(admin_client, study, bob):
    reply = post(admin_client, study, action="role", member="bob", role="expert")

    assert reply.status_code == 302
    assert StudyMembership.objects.get(user=bob).role == Role.EXPERT
    assert changes(study) == [("people", "bob: annotator", "bob: expert")]


@pytest.mark.parametrize("member, role", [("bob", "owner"), ("bob", ""), ("nobody", "expert")])
def test_a_bad_role_change_is_refused(admin_client, study, bob, member, role):
    reply = post(admin_client, study, action="role", member=member, role=role)

    assert reply.status_code == 400
    assert StudyMembership.objects.get(user=bob).role == Role.ANNOTATOR
    assert not StudyChange.objects.exists()


def test_a_crowd_participant_stays_an_annotator(admin_client, study):
    study.participant("w1")
    reply = post(admin_client, study, action="role", member="w1@s1", role="expert")
    assert reply.status_code == 400 and "stays an annotator" in reply.text


def test_removing_a_member_keeps_their_labels(admin_client, study, bob):
    study.status = Study.Status.OPEN
    study.save()
    add_items(study, 3)
    label = answer_next(study, bob)
    held = next_item(study, bob)  # an item bob holds: let go at once

    reply = post(admin_client, study, action="remove", member="bob")

    assert reply.status_code == 302
    assert not StudyMembership.objects.filter(user=bob).exists()
    assert Annotation.objects.get(pk=label.pk).rater == Rater.objects.get(user=bob)
    assert User.objects.filter(pk=bob.pk).exists()
    assert not held.item.reservations.exists()
    assert changes(study)[-1] == ("people", "bob: annotator", "removed (their labels stay)")
    client = Client()
    client.force_login(bob)
    assert client.get(f"/s/{study.slug}/label/").status_code == 404


def test_the_last_admin_can_be_neither_removed_nor_demoted(admin_client, study, alice):
    for data in ({"action": "remove"}, {"action": "role", "role": "researcher"}):
        reply = post(admin_client, study, member="alice", **data)
        assert reply.status_code == 400
        assert "alice is the study&#x27;s last admin" in reply.text
    assert StudyMembership.objects.get(user=alice).role == Role.ADMIN
    assert not StudyChange.objects.exists()

    make_user("erin", Role.ADMIN, study)
    reply = post(admin_client, study, action="role", member="alice", role="researcher")
    assert reply.status_code == 302 and reply.url == "/"  # no longer hers to manage
    assert StudyMembership.objects.get(user=alice).role == Role.RESEARCHER


def test_an_admin_may_remove_another_admin_but_not_the_last(admin_client, study, alice):
    erin = make_user("erin", Role.ADMIN, study)
    assert post(admin_client, study, action="remove", member="erin").status_code == 302
    assert not StudyMembership.objects.filter(user=erin).exists()
    assert post(admin_client, study, action="remove", member="alice").status_code == 400


# The crowd join link


def test_a_new_join_token_closes_the_old_link_and_opens_the_new(admin_client, study):
    study.status = Study.Status.OPEN
    study.save()
    old = study.join_token

    unconfirmed = post(admin_client, study, action="rotate")
    assert unconfirmed.status_code == 400 and 'data-field-error="confirm"' in unconfirmed.text
    assert Study.objects.get(pk=study.pk).join_token == old

    assert post(admin_client, study, action="rotate", confirm="yes").status_code == 302
    new = Study.objects.get(pk=study.pk).join_token
    assert new != old
    assert changes(study) == [("join token", f"…{old[-4:]}", f"…{new[-4:]}")]
    assert new in admin_client.get(f"/studies/{study.slug}/people/").text

    join, client = f"/s/{study.slug}/join", Client()  # a crowd worker, not signed in
    assert client.get(join, {"token": old, "worker_id": "w9"}).status_code == 404
    assert client.get(join, {"token": new, "worker_id": "w9"}).status_code == 302


def test_an_unknown_action_is_refused(admin_client, study):
    assert post(admin_client, study, action="explode").status_code == 400


# Why an annotator gets nothing


@pytest.fixture
def open_study(db):
    study = make_study("open", status=Study.Status.OPEN, overlap=1)
    add_items(study, 2)
    return study


def annotator(name, study):
    return make_user(name, Role.ANNOTATOR, study, password=None)


@pytest.mark.parametrize(
    "status, reason",
    [
        (Study.Status.DRAFT, "the study is a draft: open it to hand out items"),
        (Study.Status.PAUSED, "the study is paused: open it again to hand out items"),
        (Study.Status.CLOSED, "the study is closed: it hands out no more items"),
    ],
)
def test_it_says_a_study_not_open_hands_out_nothing(open_study, status, reason):
    dana = annotator("dana", open_study)
    assert people.why_idle(open_study, dana) is None
    open_study.status = status
    assert people.why_idle(open_study, dana) == reason
    assert people.study_idle_reason(open_study) == reason


def test_it_says_a_study_without_items_hands_out_nothing(db):
    study = make_study("empty", status=Study.Status.OPEN)
    reason = "the study has no items: upload them to hand them out"
    assert people.why_idle(study, annotator("dana", study)) == reason
    assert people.study_idle_reason(study) == reason


def test_it_says_an_annotator_is_paused(open_study):
    dana = annotator("dana", open_study)
    StudyMembership.objects.filter(user=dana).update(
        paused_at=timezone.now(), paused_reason="gold accuracy 40% below 70%"
    )
    reason = people.why_idle(open_study, dana)
    assert reason == "paused by quality control: gold accuracy 40% below 70%"
    assert people.study_idle_reason(open_study) is None


def test_it_says_an_annotator_reached_the_items_per_annotator(open_study):
    open_study.items_per_annotator = 1
    open_study.save()
    dana = annotator("dana", open_study)
    answer_next(open_study, dana)
    assert (
        people.why_idle(open_study, dana) == "they have labelled the study's 1 items per annotator"
    )
    assert people.why_idle(open_study, annotator("erin", open_study)) is None


def test_it_says_every_item_has_its_labels(open_study):
    dana, erin = annotator("dana", open_study), annotator("erin", open_study)
    answer_next(open_study, dana)
    assert people.why_idle(open_study, erin) is None
    answer_next(open_study, dana)

    reason = "every item has its 1 labels: no items left to hand out"
    assert people.why_idle(open_study, erin) == reason
    assert people.study_idle_reason(open_study) == reason


def test_it_says_every_item_left_is_held_by_others(open_study):
    dana, erin, frank = (annotator(n, open_study) for n in ("dana", "erin", "frank"))
    next_item(open_study, dana)
    next_item(open_study, erin)

    assert people.why_idle(open_study, frank).startswith("every item still needing labels is held")
    assert people.study_idle_reason(open_study).startswith("every item still needing labels")
    assert people.why_idle(open_study, dana) is None  # she holds one


def test_it_says_what_is_left_is_labelled_by_them_already(open_study):
    open_study.overlap = 2
    open_study.save()
    dana = annotator("dana", open_study)
    answer_next(open_study, dana)
    answer_next(open_study, dana)

    assert people.why_idle(open_study, dana).startswith("no items left for them")
    assert people.study_idle_reason(open_study) is None


def test_it_says_a_qualifying_annotator_has_no_gold_item_left(open_study):
    open_study.qualification_gold_items = 2
    open_study.save()
    dana = annotator("dana", open_study)
    assert people.why_idle(open_study, dana).startswith("they must first answer 2 qualification")
    add_items(open_study, 1, gold=True)
    assert people.why_idle(open_study, dana) is None


def test_it_says_the_items_left_wait_in_the_expert_queue(open_study):
    open_study.items.update(routed_at=timezone.now())
    reason = "the items still needing labels are all in the expert queue"
    assert people.study_idle_reason(open_study) == reason


def test_the_people_page_shows_each_annotators_reason(client, open_study):
    alice = make_user("alice", Role.ADMIN, open_study)
    annotator("dana", open_study)
    erin = annotator("erin", open_study)
    StudyMembership.objects.filter(user=erin).update(paused_at=timezone.now())
    client.force_login(alice)

    rows = {m.name: m for m in client.get("/studies/open/people/").context["members"]}

    assert rows["dana"].idle is None
    assert rows["erin"].idle == "paused by quality control: no reason given"
    assert rows["alice"].idle is None  # admins are not asked
