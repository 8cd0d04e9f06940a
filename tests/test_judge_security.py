"""Judges cannot be turned against the server: who configures them, which key a judge may read,
where a stored key may go, and who may run, cancel or re-prompt a study's judges."""

import pytest
from conftest import make_study, make_user
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from judge_stub import JudgeStub, running_stub
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, Item, StudyMembership
from judging.models import Judge, JudgeRun, PromptTemplate
from judging.work import execute, plan_run

pytestmark = pytest.mark.django_db
SECRET = "sk-stored-key-0c1d2e3f"
EXFIL = {"name": "exfil", "model": "m", "api_key_env": "DATABASE_URL"}


def api_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def staff_with(*codenames, username="sam"):
    user = User.objects.create_user(username, password="pw-for-tests-only", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def demo(db):
    study = make_study(slug="demo", status="open")
    for i in range(3):
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt=f"Secret prompt {i}",
            responses=[{"key": "A", "text": "yes"}, {"key": "B", "text": "no"}],
        )
    return study


def test_it_keeps_staff_who_are_not_members_from_exfiltrating_a_study(demo):
    """The reported attack, step by step: each step is refused and nothing reaches the host."""
    stub = JudgeStub()
    sam = api_for(staff_with())
    with running_stub(stub) as listener:
        made = sam.post("/api/judges/", {**EXFIL, "base_url": listener}, format="json")
        # Even with a judge someone allowed made, the study's runs stay out of reach.
        Judge.objects.create(name="ok", base_url=listener, model="m")
        started = sam.post(
            "/api/studies/demo/judge-runs/", {"judge": "ok", "questions": ["pref"]}, format="json"
        )
    assert made.status_code == 403
    assert started.status_code == 404
    assert stub.requests == 0
    assert not JudgeRun.objects.exists() and not Annotation.objects.exists()


def test_it_refuses_a_key_variable_outside_the_allow_list_with_the_reason(demo):
    client = api_for(staff_with("change_judge"))
    refused = client.post(
        "/api/judges/", {**EXFIL, "base_url": "http://127.0.0.1:9/v1"}, format="json"
    )
    assert refused.status_code == 400
    (reason,) = refused.json()["api_key_env"]
    assert "'DATABASE_URL' is not a variable judges may read" in reason
    assert "JUDGE_KEY_ENV_NAMES allows: OPENAI_API_KEY" in reason
    assert not Judge.objects.exists()

    allowed = {**EXFIL, "base_url": "http://127.0.0.1:9/v1", "api_key_env": "OPENAI_API_KEY"}
    made = client.post("/api/judges/", allowed, format="json")
    assert made.status_code == 201
    url = f"/api/judges/{made.json()['id']}/"
    assert client.patch(url, {"api_key_env": "SECRET_KEY"}, format="json").status_code == 400
    assert Judge.objects.get().api_key_env == "OPENAI_API_KEY"


def test_the_allow_list_is_a_setting(settings, demo):
    settings.JUDGE_KEY_ENV_NAMES = ["OPENAI_API_KEY", "TOGETHER_API_KEY"]
    client = api_for(staff_with("change_judge"))
    judge = {**EXFIL, "base_url": "http://127.0.0.1:9/v1", "api_key_env": "TOGETHER_API_KEY"}
    assert client.post("/api/judges/", judge, format="json").status_code == 201


def test_a_judge_saved_before_the_allow_list_reads_no_other_variable(demo, monkeypatch):
    """A judge stored with a variable the list does not name (before an upgrade, or written
    straight to the database) fails its run with the reason and asks nothing."""
    monkeypatch.setenv("DATABASE_URL_COPY", "postgres://user:hunter2@db/quorum")
    stub = JudgeStub()
    with running_stub(stub) as listener:
        judge = Judge.objects.create(
            name="old", base_url=listener, model="m", api_key_env="DATABASE_URL_COPY"
        )
        run = plan_run(demo, judge, ["pref"])
        with pytest.raises(Exception, match="DATABASE_URL_COPY"):
            execute(run.pk)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
    assert "is not a variable judges may read" in run.error
    assert stub.requests == 0 and "hunter2" not in str(stub.authorizations)


@pytest.mark.django_db(transaction=True)  # the run's database thread sees the items
def test_a_new_base_url_clears_the_stored_key_unless_one_comes_with_it(demo):
    client = api_for(staff_with("change_judge"))
    judge = Judge.objects.create(
        name="stub", base_url="https://api.example.com/v1", model="m", api_key=SECRET
    )
    url = f"/api/judges/{judge.pk}/"
    dan = api_for(make_user("dan", StudyMembership.Role.RESEARCHER, demo))
    stub = JudgeStub()
    with running_stub(stub) as elsewhere:
        moved = client.patch(url, {"base_url": elsewhere}, format="json")
        assert moved.json()["has_api_key"] is False
        ran = dan.post(
            "/api/studies/demo/judge-runs/", {"judge": "stub", "questions": ["pref"]}, format="json"
        )
        assert ran.status_code == 201
        execute(ran.json()["id"])  # what the worker does with it
    assert stub.requests == 3  # the run went to the new host, without the old host's key
    assert set(stub.authorizations) == {""}

    with_key = {"base_url": "https://api2.example.com/v1", "api_key": "sk-new"}
    assert client.patch(url, with_key, format="json").json()["has_api_key"] is True
    assert Judge.objects.get().api_key == "sk-new"
    assert client.patch(url, {"model": "m2"}, format="json").json()["has_api_key"] is True


def test_the_admin_and_add_judge_clear_the_key_on_a_new_base_url_too(client):
    judge = Judge.objects.create(
        name="stub", base_url="https://api.example.com/v1", model="m", api_key=SECRET
    )
    client.force_login(User.objects.create_superuser("root"))
    form = {
        "name": "stub",
        "base_url": "https://elsewhere.example.com/v1",
        "model": "m",
        "api_key": "",  # left empty: "keep the stored key", but not for another host
        "api_key_env": "",
        "temperature": "0",
        "max_tokens": "512",
        "max_concurrency": "8",
        "requests_per_minute": "",
        "price_per_1k_input": "0",
        "price_per_1k_output": "0",
        "family": "",
    }
    assert client.post(f"/admin/judging/judge/{judge.pk}/change/", form).status_code == 302
    assert Judge.objects.get().api_key == ""

    Judge.objects.filter(pk=judge.pk).update(api_key=SECRET)
    call_command("add_judge", "stub", "--base-url", "https://third.example.com/v1", "--model", "m")
    assert Judge.objects.get().api_key == ""


def test_the_admin_lets_only_change_judge_add_or_change_judges(client):
    judge = Judge.objects.create(name="stub", base_url="https://api.example.com/v1", model="m")
    client.force_login(staff_with("add_judge", "view_judge"))
    assert client.get("/admin/judging/judge/add/").status_code == 403
    change = client.get(f"/admin/judging/judge/{judge.pk}/change/")
    assert change.status_code == 200 and 'type="submit" value="Save"' not in change.text
    client.force_login(staff_with("change_judge", username="cat"))
    assert client.get("/admin/judging/judge/add/").status_code == 200


def test_staff_who_are_not_members_neither_cancel_runs_nor_rewrite_templates(client, demo):
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    run = plan_run(demo, judge, ["pref"])
    sam = staff_with()
    client.force_login(sam)
    assert client.post(f"/studies/demo/judge-runs/{run.pk}/cancel/").status_code == 404
    template = {"system": "", "user": "Say [[A]]. {response_a} {response_b}"}
    api = api_for(sam)
    assert api.put("/api/studies/demo/judge-templates/pairwise/", template).status_code == 404
    assert api.post(f"/api/studies/demo/judge-runs/{run.pk}/cancel/").status_code == 404
    assert JudgeRun.objects.get().status == JudgeRun.Status.QUEUED
    assert not PromptTemplate.objects.exists()


def test_the_admin_lists_runs_and_templates_of_the_users_own_studies_only(client, demo):
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    other = make_study(slug="other-study")
    mine, theirs = plan_run(demo, judge, ["pref"]), plan_run(other, judge, ["pref"])
    PromptTemplate.objects.create(study=other, question_type="pairwise", system="", user="x")
    sam = staff_with("view_judgerun", "view_prompttemplate", "add_prompttemplate")
    StudyMembership.objects.create(study=demo, user=sam, role=StudyMembership.Role.RESEARCHER)
    client.force_login(sam)

    runs = client.get("/admin/judging/judgerun/").text
    assert f"/admin/judging/judgerun/{mine.pk}/change/" in runs
    assert f"/admin/judging/judgerun/{theirs.pk}/change/" not in runs
    assert client.get(f"/admin/judging/judgerun/{theirs.pk}/change/").status_code == 302
    assert "other-study" not in client.get("/admin/judging/prompttemplate/").text
    add = client.post(
        "/admin/judging/prompttemplate/add/",
        {"study": other.pk, "question_type": "likert", "system": "", "user": "{response}"},
    )
    assert add.status_code == 200 and "Select a valid choice" in add.text
    assert PromptTemplate.objects.count() == 1
