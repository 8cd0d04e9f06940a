"""The crowd join link: a study's secret token and a worker id make or resume a participant."""

import pytest
from conftest import make_study, make_user
from django.core.exceptions import ValidationError
from django.test import Client

from annotation.models import Study, StudyMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd():
    return make_study("crowd", status=Study.Status.OPEN, worker_id_param="PROLIFIC_PID")


def join(client, study, worker_id, token=None):
    token = study.join_token if token is None else token
    return client.get(f"/s/{study.slug}/join", {"token": token, "PROLIFIC_PID": worker_id})


def test_it_makes_a_participant_and_sends_them_to_label(client, crowd):
    reply = join(client, crowd, "5f3a")

    assert reply.status_code == 302 and reply.url == "/s/crowd/label/"
    membership = StudyMembership.objects.get(study=crowd, worker_id="5f3a")
    assert membership.role == StudyMembership.Role.ANNOTATOR
    assert not membership.user.has_usable_password()
    assert int(client.session["_auth_user_id"]) == membership.user.pk


def test_the_same_worker_id_resumes_the_same_participant(client, crowd):
    join(client, crowd, "5f3a")
    client.logout()
    join(client, crowd, "5f3a")

    assert StudyMembership.objects.filter(study=crowd).count() == 1
    membership = StudyMembership.objects.get(study=crowd)
    assert int(client.session["_auth_user_id"]) == membership.user.pk


def test_a_worker_whose_name_is_taken_gets_an_account_of_their_own(client, crowd):
    staff = make_user("5f3a@crowd")  # e.g. left over from an earlier study of that slug

    reply = join(client, crowd, "5f3a")

    assert reply.status_code == 302
    participant = StudyMembership.objects.get(study=crowd, worker_id="5f3a").user
    assert participant != staff and participant.username == "5f3a@crowd~2"
    assert int(client.session["_auth_user_id"]) == participant.pk


@pytest.mark.parametrize(
    "role, staff, password",
    [
        (StudyMembership.Role.ADMIN, False, None),
        (StudyMembership.Role.ANNOTATOR, True, None),
        (StudyMembership.Role.ANNOTATOR, False, "pw-for-tests-only"),
    ],
)
def test_a_worker_id_set_on_an_account_with_a_login_does_not_open_it(
    client, crowd, role, staff, password
):
    member = make_user("dana", role, crowd, password=password)
    member.is_staff = staff
    member.save()
    StudyMembership.objects.filter(user=member).update(worker_id="5f3a")  # as the admin could

    reply = join(client, crowd, "5f3a")

    assert reply.status_code == 403
    assert "_auth_user_id" not in client.session


def test_the_admin_keeps_worker_ids_to_annotators(crowd):
    member = make_user("dana", StudyMembership.Role.RESEARCHER, crowd)
    membership = StudyMembership.objects.get(user=member)
    membership.worker_id = "5f3a"

    with pytest.raises(ValidationError, match="Only annotators"):
        membership.full_clean()


@pytest.mark.parametrize("token", ["", "wrong"])
def test_a_wrong_token_finds_no_study(client, crowd, token):
    assert join(client, crowd, "5f3a", token=token).status_code == 404
    assert not StudyMembership.objects.filter(study=crowd).exists()


@pytest.mark.parametrize("worker_id", ["", "a b", "<script>", "x" * 101])
def test_a_bad_worker_id_is_refused_naming_the_parameter(client, crowd, worker_id):
    reply = join(client, crowd, worker_id)

    assert reply.status_code == 400
    assert "PROLIFIC_PID" in reply.content.decode()
    assert "<script>" not in reply.content.decode()
    assert not StudyMembership.objects.filter(study=crowd).exists()


def test_a_signed_in_account_is_asked_before_it_becomes_a_participant(client, crowd):
    alice = make_user("alice", StudyMembership.Role.ADMIN, crowd)
    alice.is_staff = True
    alice.save()
    client.force_login(alice)

    asked = join(client, crowd, "5f3a")

    assert asked.status_code == 200
    assert "You are signed in as <strong>alice</strong>" in asked.text
    assert int(client.session["_auth_user_id"]) == alice.pk  # the GET changed nothing
    assert not StudyMembership.objects.filter(worker_id="5f3a").exists()
    url = f"/s/crowd/join?token={crowd.join_token}&PROLIFIC_PID=5f3a"
    assert '<form method="post">' in asked.text  # posts back to this very link

    confirmed = client.post(url)
    participant = StudyMembership.objects.get(study=crowd, worker_id="5f3a").user
    assert confirmed.status_code == 302 and confirmed.url == "/s/crowd/label/"
    assert int(client.session["_auth_user_id"]) == participant.pk


def test_the_confirmation_needs_the_csrf_token(crowd):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("dana"))  # an invited annotator with a password
    url = f"/s/crowd/join?token={crowd.join_token}&PROLIFIC_PID=5f3a"
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 403
    assert not StudyMembership.objects.filter(worker_id="5f3a").exists()


def test_a_participant_following_another_link_is_not_asked(client, crowd):
    join(client, crowd, "5f3a")
    other = make_study("second", status=Study.Status.OPEN, worker_id_param="PROLIFIC_PID")
    reply = join(client, other, "5f3a")
    assert reply.status_code == 302 and reply.url == "/s/second/label/"
