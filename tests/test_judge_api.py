"""The judging API: judges for those allowed to configure them, a study's runs and prompt
templates for its researchers."""

import json
from decimal import Decimal

import pytest
from conftest import PAIRWISE_RUBRIC, make_study, make_user
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from judge_stub import JudgeStub, StubConfig, running_stub
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Item, Rater, StudyMembership
from judging import prompts
from judging.models import NAME_CLASH, Judge, JudgeRun, PromptTemplate, Verdict
from judging.work import execute, plan_run

pytestmark = pytest.mark.django_db
SECRET = "sk-api-test-5f3a9c0e7d21"
JUDGE_FIELDS = {
    "name": "gpt-judge",
    "base_url": "https://api.example.com/v1",
    "model": "gpt-x",
    "max_tokens": 300,
    "price_per_1k_input": "0.5",
    "price_per_1k_output": "1.5",
    "family": "gpt",
}
RUBRIC = {
    "name": "Pairwise and a rating",
    "questions": [
        *PAIRWISE_RUBRIC["questions"],
        {"key": "fluency", "type": "likert", "scale": 5, "prompt": "How fluent is it?"},
    ],
}


def api_for(user):
    client = APIClient()
    if user is not None:
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}"
        )
    return client


def add_items(study, n=3):
    for i in range(n):
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt=f"Question {i}: what is {i} + {i}?",
            responses=[
                {"key": "A", "text": f"It is {2 * i}.", "model": "m1"},
                {"key": "B", "text": f"I think it might be {2 * i + 1}, or so.", "model": "m2"},
            ],
        )


@pytest.fixture
def study(db):
    study = make_study(slug="s1", rubric=RUBRIC)
    add_items(study)
    return study


@pytest.fixture
def dan(study):
    return make_user("dan", StudyMembership.Role.RESEARCHER, study)


@pytest.fixture
def staff(db):
    """Sam configures judges: staff with the `judging.change_judge` permission."""
    sam = User.objects.create_user("sam", password="pw-for-tests-only", is_staff=True)
    sam.user_permissions.add(Permission.objects.get(codename="change_judge"))
    return sam


@pytest.fixture
def judge(db):
    return Judge.objects.create(
        name="stub",
        base_url="http://127.0.0.1:9/v1",
        model="stub-judge",
        api_key=SECRET,
        max_tokens=200,
        price_per_1k_input=Decimal("0.25"),
        price_per_1k_output=Decimal("2"),
    )


# Judges


def test_only_holders_of_change_judge_manage_judges(study, alice, staff):
    assert api_for(None).get("/api/judges/").status_code == 401
    assert api_for(alice).get("/api/judges/").status_code == 403  # a study admin, not staff
    assert api_for(alice).post("/api/judges/", JUDGE_FIELDS, format="json").status_code == 403
    plain_staff = User.objects.create_user("pat", is_staff=True)
    assert api_for(plain_staff).get("/api/judges/").status_code == 403
    assert api_for(plain_staff).post("/api/judges/", JUDGE_FIELDS, format="json").status_code == 403

    client = api_for(staff)
    created = client.post("/api/judges/", JUDGE_FIELDS, format="json")
    assert created.status_code == 201, created.json()
    url = f"/api/judges/{created.json()['id']}/"
    assert [j["name"] for j in client.get("/api/judges/").json()["results"]] == ["gpt-judge"]
    assert client.patch(url, {"max_concurrency": 2}, format="json").json()["max_concurrency"] == 2
    judge = Judge.objects.get(name="gpt-judge")
    assert (judge.max_concurrency, judge.rater.family) == (2, "gpt")
    assert api_for(alice).delete(url).status_code == 403
    assert client.delete(url).status_code == 204
    assert not Judge.objects.exists()


def test_the_api_key_is_written_never_read(study, alice, staff):
    StudyMembership.objects.create(study=study, user=staff, role=StudyMembership.Role.RESEARCHER)
    client = api_for(staff)
    bodies = []

    def call(method, url, data=None):
        response = getattr(client, method)(url, data, format="json")
        bodies.append(response.content.decode())
        return response

    created = call("post", "/api/judges/", {**JUDGE_FIELDS, "api_key": SECRET}).json()
    url = f"/api/judges/{created['id']}/"
    assert created["has_api_key"] is True and "api_key" not in created
    assert call("get", url).json()["has_api_key"] is True
    call("get", "/api/judges/")
    call("patch", url, {"model": "gpt-y"})  # the key left out: it stays
    assert Judge.objects.get().api_key == SECRET
    call("put", url, {**JUDGE_FIELDS, "model": "gpt-z"})
    assert Judge.objects.get().api_key == SECRET
    run_request = {"judge": "gpt-judge", "questions": ["pref"]}
    call("post", "/api/studies/s1/judge-runs/estimate/", run_request)
    run = call("post", "/api/studies/s1/judge-runs/", run_request).json()
    call("get", f"/api/studies/s1/judge-runs/{run['id']}/")
    call("get", "/api/studies/s1/judge-runs/")
    call("post", f"/api/studies/s1/judge-runs/{run['id']}/cancel/")
    call("get", "/api/schema/")
    assert len(bodies) == 11 and all(SECRET not in body for body in bodies)

    page = APIClient()
    page.force_login(alice)
    assert "gpt-judge" in (html := page.get("/studies/s1/").content.decode())
    assert SECRET not in html

    assert call("patch", url, {"api_key": ""}).json()["has_api_key"] is False
    assert Judge.objects.get().api_key == ""


@pytest.mark.parametrize("base_url", ["ftp://example.com/v1", "file:///etc/passwd", "example"])
def test_a_judge_needs_an_http_or_https_base_url(staff, base_url):
    client = api_for(staff)
    response = client.post("/api/judges/", {**JUDGE_FIELDS, "base_url": base_url}, format="json")
    assert response.status_code == 400
    assert "base_url" in response.json()
    assert not Judge.objects.exists()


def test_a_judge_with_runs_is_not_deleted(study, judge, staff):
    plan_run(study, judge, ["pref"])
    response = api_for(staff).delete(f"/api/judges/{judge.pk}/")
    assert response.status_code == 409
    assert "has runs" in response.json()["detail"]
    assert Judge.objects.filter(pk=judge.pk).exists()


def test_a_renamed_judge_labels_under_its_new_name(judge, staff):
    Rater.objects.create(kind=Rater.Kind.LLM, name="imported-llm")  # labels of a label file
    client = api_for(staff)
    url = f"/api/judges/{judge.pk}/"

    renamed = client.patch(url, {"name": "stub-v2"}, format="json")
    clash = client.patch(url, {"name": "imported-llm"}, format="json")

    assert renamed.status_code == 200
    assert Rater.objects.get(pk=judge.rater_id).name == "stub-v2"
    assert (clash.status_code, clash.json()) == (400, {"name": [NAME_CLASH]})
    judge.refresh_from_db()
    assert judge.name == "stub-v2"
    judge.name = "imported-llm"
    with pytest.raises(ValidationError, match="another LLM rater"):
        judge.full_clean()  # what the admin's form runs


# Who may see and start runs


def run_endpoints(run):
    body = {"judge": "stub", "questions": ["pref"]}
    return [
        ("get", "/api/studies/s1/judge-runs/", None),
        ("post", "/api/studies/s1/judge-runs/", body),
        ("post", "/api/studies/s1/judge-runs/estimate/", body),
        ("get", f"/api/studies/s1/judge-runs/{run.pk}/", None),
        ("post", f"/api/studies/s1/judge-runs/{run.pk}/cancel/", None),
        ("get", "/api/studies/s1/judge-templates/", None),
        ("get", "/api/studies/s1/judge-templates/pairwise/", None),
        ("put", "/api/studies/s1/judge-templates/pairwise/", {"system": ""}),
        ("delete", "/api/studies/s1/judge-templates/pairwise/", None),
    ]


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("annotator", 404),
        ("expert", 404),
        ("outsider", 404),
        ("staff", 404),
        ("anonymous", 401),
    ],
)
def test_runs_and_templates_are_for_researchers_only(study, judge, persona, expected):
    users = {
        "annotator": lambda: make_user("bob", StudyMembership.Role.ANNOTATOR, study),
        "expert": lambda: make_user("carol", StudyMembership.Role.EXPERT, study),
        "outsider": lambda: make_user("erin", StudyMembership.Role.ADMIN, make_study(slug="other")),
        "staff": lambda: User.objects.create_user("sam", is_staff=True),  # no membership
        "anonymous": lambda: None,
    }
    client = api_for(users[persona]())
    run = plan_run(study, judge, ["pref"])
    for method, url, body in run_endpoints(run):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == expected, (method, url)
    assert JudgeRun.objects.count() == 1
    assert JudgeRun.objects.get().status == JudgeRun.Status.QUEUED
    assert not PromptTemplate.objects.exists()


@pytest.mark.parametrize("persona", ["researcher", "admin", "superuser"])
def test_researchers_admins_and_superusers_see_and_start_runs(study, judge, persona):
    users = {
        "researcher": lambda: make_user("dan", StudyMembership.Role.RESEARCHER, study),
        "admin": lambda: make_user("alice", StudyMembership.Role.ADMIN, study),
        "superuser": lambda: User.objects.create_superuser("root"),  # no membership
    }
    client = api_for(users[persona]())
    run = plan_run(study, judge, ["pref"])
    expected = [200, 201, 200, 200, 200, 200, 200, 200, 204]
    for (method, url, body), status in zip(run_endpoints(run), expected, strict=True):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == status, (method, url, response.content)
    assert JudgeRun.objects.count() == 2
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.CANCELLED


def test_a_study_that_does_not_exist_is_a_404(dan):
    assert api_for(dan).get("/api/studies/nope/judge-runs/").status_code == 404


# Starting, watching and cancelling runs


@pytest.mark.django_db(transaction=True)
def test_a_run_started_through_the_api_completes_against_the_stub(eager_tasks):
    study = make_study(slug="s1", rubric=RUBRIC)
    add_items(study)
    client = api_for(make_user("dan", StudyMembership.Role.RESEARCHER, study))
    stub = JudgeStub(StubConfig(api_key=SECRET, bias="first"))
    with running_stub(stub) as base_url:
        judge = Judge.objects.create(
            name="stub",
            base_url=base_url,
            model="stub-judge",
            api_key=SECRET,
            price_per_1k_input=Decimal("0.25"),
            price_per_1k_output=Decimal("2"),
        )
        body = {"judge": "stub", "questions": ["pref", "fluency"], "both_orders": True}
        started = client.post("/api/studies/s1/judge-runs/", body, format="json")
        assert started.status_code == 201, started.json()
        run = client.get(f"/api/studies/s1/judge-runs/{started.json()['id']}/").json()
    assert stub.requests == 9  # 3 items: pref in AB and BA, fluency once
    progress = run["progress"]
    assert (run["status"], run["judge"], run["questions"]) == ("done", "stub", ["pref", "fluency"])
    assert progress["planned"] == progress["done"] == 9
    assert (progress["failed"], progress["remaining"]) == (0, 0)
    verdicts = Verdict.objects.filter(run_id=run["id"])
    prompt = sum(v.prompt_tokens for v in verdicts)
    completion = sum(v.completion_tokens for v in verdicts)
    assert (progress["prompt_tokens"], progress["completion_tokens"]) == (prompt, completion)
    assert prompt > 0 and completion > 0
    assert progress["cost"] == pytest.approx((prompt * 0.25 + completion * 2) / 1000)
    assert set(verdicts.filter(question="pref").values_list("order", "value")) == {
        ("AB", "A"),
        ("BA", "B"),
    }
    listed = client.get("/api/studies/s1/judge-runs/").json()["results"]
    assert [(r["id"], r["progress"]["done"]) for r in listed] == [(run["id"], 9)]
    assert Verdict.objects.filter(run__judge=judge).count() == 9


def test_a_run_the_rubric_cannot_answer_is_refused_with_the_reason(study, judge, dan):
    client = api_for(dan)
    free_text = client.post(
        "/api/studies/s1/judge-runs/", {"judge": "stub", "questions": ["why"]}, format="json"
    )
    assert free_text.status_code == 400
    assert "question 'why' is free text" in free_text.json()["questions"][0]
    unknown = client.post(
        "/api/studies/s1/judge-runs/estimate/", {"judge": "stub", "questions": ["nope"]}
    )
    assert unknown.status_code == 400
    assert "no question 'nope' (pref, why, fluency)" in unknown.json()["questions"][0]
    no_judge = client.post("/api/studies/s1/judge-runs/", {"judge": "ghost"}, format="json")
    assert no_judge.status_code == 400 and "judge" in no_judge.json()
    assert not JudgeRun.objects.exists()


def test_cancelling_a_queued_run_stops_it_before_any_request(study, judge, dan):
    run = plan_run(study, judge, ["pref"])
    client = api_for(dan)
    cancelled = client.post(f"/api/studies/s1/judge-runs/{run.pk}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/studies/s1/judge-runs/{run.pk}/cancel/")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
    execute(run.pk)  # a worker that picks the task up later finds nothing to do
    assert not Verdict.objects.filter(run=run).exists()
    other = make_study(slug="other")
    assert client.post(f"/api/studies/other/judge-runs/{run.pk}/cancel/").status_code == 404
    assert other.judge_runs.count() == 0


def test_the_plan_counts_each_items_checklist_and_responses(judge):
    study = make_study(
        slug="mixed",
        rubric={
            "name": "Pairwise, per-item checklist, rating",
            "questions": [
                *PAIRWISE_RUBRIC["questions"],
                {"key": "tick", "type": "checklist", "items": "per_item"},
                {"key": "fluency", "type": "likert", "scale": 5},
            ],
        },
    )
    two = [{"key": "A", "text": "a"}, {"key": "B", "text": "b"}]
    three = [*two, {"key": "C", "text": "c"}]
    shapes = [(two, ["x", "y"]), (two, ["x"]), (three, ["x", "y"]), (two, ["x", "y"])]
    for i, (responses, checklist) in enumerate(shapes):
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt="p",
            responses=responses,
            checklist=checklist,
        )

    run = plan_run(study, judge, None, both_orders=True)

    # A pair: its pairwise question in both orders; three responses: asked once, no order;
    # then a request per checklist row and one for the rating.
    assert run.planned_requests() == (2 + 2 + 1) + (2 + 1 + 1) + (1 + 2 + 1) + (2 + 2 + 1)
    assert run.progress()["remaining"] == 18


# Estimates


def rendered_chars(question_type, fields, templates=None):
    return sum(len(m["content"]) for m in prompts.messages_for(question_type, fields, templates))


def test_the_estimate_counts_requests_tokens_and_cost_before_a_run(study, judge, dan):
    client = api_for(dan)
    body = {"judge": "stub", "questions": ["pref"], "both_orders": True}
    estimate = client.post("/api/studies/s1/judge-runs/estimate/", body, format="json").json()
    assert estimate["planned"] == 6  # 3 items, both orders
    # The prompts as the judge gets them, rendered here from the items and the default template.
    chars = 0
    for item in study.items.all():
        a, b = (r["text"] for r in item.responses)
        for first, second in [(a, b), (b, a)]:
            fields = {
                "prompt": item.prompt,
                "question": "Which is better?",
                "response_a": first,
                "response_b": second,
            }
            chars += rendered_chars("pairwise", fields)
    assert estimate["prompt_chars"] == chars
    assert estimate["prompt_tokens"] == round(chars / 4) > 0
    assert estimate["tokens_per_char_measured_on"] == 0
    assert estimate["completion_tokens_max"] == 6 * 200
    assert estimate["completion_tokens_expected"] is None
    assert estimate["cost_max"] == pytest.approx((round(chars / 4) * 0.25 + 1200 * 2) / 1000)
    assert estimate["cost_expected"] is None
    one_order = client.post(
        "/api/studies/s1/judge-runs/estimate/", {**body, "both_orders": False}, format="json"
    ).json()
    assert one_order["planned"] == 3
    assert not JudgeRun.objects.exists()  # an estimate plans nothing


@pytest.mark.django_db(transaction=True)
def test_after_a_run_the_estimate_uses_what_the_judge_reported():
    study = make_study(slug="s1", rubric=RUBRIC)
    add_items(study)
    client = api_for(make_user("dan", StudyMembership.Role.RESEARCHER, study))
    with running_stub(StubConfig()) as base_url:
        judge = Judge.objects.create(
            name="stub", base_url=base_url, model="stub-judge", price_per_1k_output=Decimal("3")
        )
        run = plan_run(study, judge, ["pref", "fluency"])
        execute(run.pk)
    verdicts = Verdict.objects.filter(run=run, error="")
    assert verdicts.count() == 6
    prompt = sum(v.prompt_tokens for v in verdicts)
    completion = sum(v.completion_tokens for v in verdicts)
    body = {"judge": "stub", "questions": ["pref", "fluency"]}
    estimate = client.post("/api/studies/s1/judge-runs/estimate/", body, format="json").json()
    # The same requests again: the judge's own token counts predict them.
    assert estimate["tokens_per_char_measured_on"] == 6
    assert estimate["tokens_per_char"] == pytest.approx(prompt / estimate["prompt_chars"])
    assert estimate["prompt_tokens"] == prompt
    assert estimate["completion_tokens_expected"] == completion
    assert estimate["cost_expected"] == pytest.approx(completion * 3 / 1000)


# Prompt templates


def test_a_study_template_is_checked_stored_and_used(study, dan):
    client = api_for(dan)
    url = "/api/studies/s1/judge-templates/pairwise/"
    default = client.get(url).json()
    assert default["is_default"] is True
    assert default["system"] == prompts.DEFAULT_TEMPLATES["pairwise"]["system"]
    assert "response_a" in default["template_fields"]

    bad = client.put(url, {"user": "{response_a} vs {response_b}: {colour}?"}, format="json")
    assert bad.status_code == 400
    assert "unknown field {colour}" in bad.json()["non_field_errors"][0]
    blind = client.put(url, {"user": "Which is better, A or B?"}, format="json")
    assert blind.status_code == 400
    assert "must show the judge {response_a}" in blind.json()["non_field_errors"][0]
    assert not PromptTemplate.objects.exists()

    user = "Q: {prompt}\n[A] {response_a}\n[B] {response_b}\nAnswer [[A]], [[B]] or [[C]]."
    saved = client.put(url, {"system": "", "user": user}, format="json")
    assert saved.status_code == 200, saved.json()
    assert client.get(url).json() | {"template_fields": None} == {
        "question_type": "pairwise",
        "system": "",
        "user": user,
        "is_default": False,
        "template_fields": None,
    }
    templates = PromptTemplate.study_templates(study)
    assert templates == {"pairwise": {"system": "", "user": user}}
    fields = {"prompt": "2+2?", "response_a": "4", "response_b": "5"}
    assert prompts.messages_for("pairwise", fields, templates) == [
        {"role": "user", "content": "Q: 2+2?\n[A] 4\n[B] 5\nAnswer [[A]], [[B]] or [[C]]."}
    ]
    listed = client.get("/api/studies/s1/judge-templates/").json()
    assert [(t["question_type"], t["is_default"]) for t in listed] == [
        ("pairwise", False),
        ("likert", True),
        ("checklist", True),
        ("binary", True),
        ("categorical", True),
    ]

    assert client.delete(url).status_code == 204
    assert client.get(url).json()["is_default"] is True
    assert client.get("/api/studies/s1/judge-templates/text/").status_code == 404


def test_a_part_left_out_keeps_the_default(study, dan):
    url = "/api/studies/s1/judge-templates/likert/"
    user = "Rate {response} from 1 to {scale}:\n{anchors}"
    assert api_for(dan).put(url, {"user": user}, format="json").status_code == 200
    template = PromptTemplate.objects.get(study=study, question_type="likert")
    assert (template.system, template.user) == (prompts.DEFAULT_TEMPLATES["likert"]["system"], user)


def test_the_estimate_renders_the_studys_own_templates(study, judge, dan):
    client = api_for(dan)
    body = {"judge": "stub", "questions": ["fluency"]}
    before = client.post("/api/studies/s1/judge-runs/estimate/", body, format="json").json()
    default = prompts.DEFAULT_TEMPLATES["likert"]
    longer = {"user": default["user"] + "\nThink step by step."}
    client.put("/api/studies/s1/judge-templates/likert/", longer, format="json")
    after = client.post("/api/studies/s1/judge-runs/estimate/", body, format="json").json()
    assert after["planned"] == before["planned"] == 3
    assert after["prompt_chars"] - before["prompt_chars"] == 3 * len("\nThink step by step.")


def test_the_schema_documents_the_judging_endpoints(staff):
    response = api_for(staff).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = json.loads(response.content)
    assert "/api/studies/{slug}/judge-runs/estimate/" in schema["paths"]
    assert "/api/studies/{slug}/judge-templates/{question_type}/" in schema["paths"]
    assert schema["components"]["schemas"]["Judge"]["properties"]["api_key"]["writeOnly"]
