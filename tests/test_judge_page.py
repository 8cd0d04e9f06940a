"""The Judges section of the study page: runs with live progress, estimate, start, cancel."""

import re
from decimal import Decimal

import pytest
from conftest import SCREENSHOTS, make_study, make_user
from django.contrib.auth.models import User
from django.template import Context, Template
from playwright.sync_api import expect

from annotation.models import Item, StudyMembership
from judging import prompts
from judging.models import Judge, JudgeRun, PromptTemplate, Verdict
from judging.work import plan_run

pytestmark = pytest.mark.django_db
SECRET = "sk-page-test-9b1e44d0"
RUBRIC = {
    "name": "Pairwise",
    "questions": [
        {"key": "pref", "type": "pairwise", "prompt": "Which is better?"},
        {"key": "why", "type": "text", "required": False},
    ],
}


def add_items(study, n=2):
    for i in range(n):
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt=f"Question {i}",
            responses=[{"key": "A", "text": f"A{i}"}, {"key": "B", "text": f"B{i}"}],
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
def judge(db):
    return Judge.objects.create(
        name="stub",
        base_url="http://127.0.0.1:9/v1",
        model="stub-judge",
        api_key=SECRET,
        price_per_1k_input=Decimal("1"),
        price_per_1k_output=Decimal("2"),
    )


def add_verdict(run, item, order, **fields):
    return Verdict.objects.create(run=run, item=item, question="pref", order=order, **fields)


def test_researchers_see_the_runs_with_their_progress(client, study, judge, dan):
    finished = plan_run(study, judge, ["pref"], both_orders=True)
    first = study.items.order_by("position").first()
    add_verdict(finished, first, "AB", value="A", prompt_tokens=1000, completion_tokens=500)
    add_verdict(finished, first, "BA", error="HTTP 500 after 3 attempts")
    JudgeRun.objects.filter(pk=finished.pk).update(status=JudgeRun.Status.FAILED)
    running = plan_run(study, judge, ["pref"])
    client.force_login(dan)
    page = client.get("/studies/s1/").content.decode()
    panel = page[page.index('id="judges"') :]
    rows = re.findall(r"<tr data-run-url=.*?</tr>", panel, re.DOTALL)
    assert [re.search(r"<td>(\d+)</td>", row)[1] for row in rows] == [
        str(running.pk),
        str(finished.pk),
    ]
    assert f'data-run-url="/api/studies/s1/judge-runs/{running.pk}/"' in rows[0]
    assert 'data-status="queued"' in rows[0] and 'data-status="failed"' in rows[1]
    assert '<td data-field="done">1 / 4</td>' in rows[1]  # 2 items in both orders
    assert '<td data-field="failed">1</td>' in rows[1]
    assert '<td data-field="remaining">2</td>' in rows[1]
    assert '<td data-field="tokens">1000 + 500</td>' in rows[1]
    assert (
        '<td data-field="cost">$2.0000</td>' in rows[1]
    )  # 1k prompt tokens at $1, 0.5k completion at $2
    # Only the live run can be cancelled, by a POST that carries the CSRF token.
    assert f'action="/studies/s1/judge-runs/{running.pk}/cancel/"' in rows[0]
    assert "csrfmiddlewaretoken" in rows[0]
    assert "cancel" not in rows[1]
    # The start form: judges, the questions a judge answers, both orders.
    form = panel[panel.index('action="/studies/s1/judge-runs/estimate/"') :]
    assert '<option value="stub"' in form
    assert 'value="pref"' in form and 'value="why"' not in form
    assert 'name="both_orders"' in form
    assert "js/judge-runs.js" in panel
    assert SECRET not in page


def test_the_panel_is_not_rendered_below_researcher(study, judge):
    plan_run(study, judge, ["pref"])
    panel = Template("{% load judging %}{% judge_panel study user %}")
    for role in (StudyMembership.Role.ANNOTATOR, StudyMembership.Role.EXPERT):
        user = make_user(f"user-{role}", role, study)
        assert panel.render(Context({"study": study, "user": user})).strip() == ""
    outsider = make_user("erin", StudyMembership.Role.ADMIN, make_study(slug="other"))
    assert panel.render(Context({"study": study, "user": outsider})).strip() == ""
    dan = make_user("dan", StudyMembership.Role.RESEARCHER, study)
    assert '<h2 id="judges-h">Judges</h2>' in panel.render(Context({"study": study, "user": dan}))


def test_an_annotator_sees_neither_the_dashboard_nor_the_judge_steps(client, study, judge):
    run = plan_run(study, judge, ["pref"])
    client.force_login(make_user("bob", StudyMembership.Role.ANNOTATOR, study))
    assert client.get("/studies/s1/").status_code == 404
    estimate = "/studies/s1/judge-runs/estimate/?judge=stub&questions=pref"
    assert client.get(estimate).status_code == 404
    body = {"judge": "stub", "questions": "pref"}
    assert client.post("/studies/s1/judge-runs/start/", body).status_code == 404
    assert client.post(f"/studies/s1/judge-runs/{run.pk}/cancel/").status_code == 404
    assert JudgeRun.objects.get().status == JudgeRun.Status.QUEUED
    assert JudgeRun.objects.count() == 1


def test_names_and_errors_are_shown_as_text(client, study, dan):
    judge = Judge.objects.create(
        name="<script>alert(1)</script>", base_url="http://127.0.0.1:9/v1", model="m"
    )
    run = plan_run(study, judge, ["pref"])
    JudgeRun.objects.filter(pk=run.pk).update(
        status=JudgeRun.Status.FAILED, error='<img src=x onerror="alert(2)">'
    )
    client.force_login(dan)
    page = client.get("/studies/s1/").content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


def test_the_estimate_step_comes_before_the_start(client, study, judge, dan):
    client.force_login(dan)
    page = client.get(
        "/studies/s1/judge-runs/estimate/",
        {"judge": "stub", "questions": "pref", "both_orders": "on"},
    )
    assert page.status_code == 200
    estimate = page.context["estimate"]
    assert estimate["planned"] == 4
    html = page.content.decode()
    assert "<dt>Requests</dt><dd>4</dd>" in html
    assert f"<dt>Prompt tokens</dt><dd>{estimate['prompt_tokens']}</dd>" in html
    cost = (estimate["prompt_tokens"] * 1 + 4 * judge.max_tokens * 2) / 1000
    assert f"<dt>Cost, at most</dt><dd>${cost:.4f}</dd>" in html
    assert SECRET not in html
    assert not JudgeRun.objects.exists()
    start = html[html.index('action="/studies/s1/judge-runs/start/"') :]
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', start))
    assert fields.pop("csrfmiddlewaretoken")
    assert fields == {"judge": "stub", "questions": "pref", "both_orders": "on"}

    started = client.post("/studies/s1/judge-runs/start/", fields)
    assert started.status_code == 302
    assert started["Location"] == "/studies/s1/#judges"
    run = JudgeRun.objects.get()
    assert (run.judge, run.questions, run.both_orders, run.status) == (
        judge,
        ["pref"],
        True,
        "queued",
    )


def test_a_request_the_rubric_cannot_answer_is_shown_again_with_the_reason(
    client, study, judge, dan
):
    client.force_login(dan)
    page = client.get("/studies/s1/judge-runs/estimate/", {"judge": "stub", "questions": "why"})
    assert page.status_code == 400
    assert (
        "Select a valid choice. why is not one of the available choices." in page.content.decode()
    )
    started = client.post("/studies/s1/judge-runs/start/", {"judge": "ghost", "questions": "pref"})
    assert started.status_code == 400
    assert not JudgeRun.objects.exists()


def test_cancel_stops_a_run_and_returns_to_the_panel(client, study, judge, dan):
    run = plan_run(study, judge, ["pref"])
    client.force_login(dan)
    response = client.post(f"/studies/s1/judge-runs/{run.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == "/studies/s1/#judges"
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.CANCELLED and run.finished_at is not None
    assert client.get(f"/studies/s1/judge-runs/{run.pk}/cancel/").status_code == 405


def test_the_admin_starts_a_template_from_the_default_and_checks_it(client, study):
    client.force_login(User.objects.create_superuser("root", password="pw-for-tests-only"))
    add = client.get("/admin/judging/prompttemplate/add/?question_type=likert").content.decode()
    assert "[Rating Scale]" in add  # the default likert user text, to edit
    form = {"study": study.pk, "question_type": "likert", "system": "", "user": "{response} {x}"}
    rejected = client.post("/admin/judging/prompttemplate/add/", form)
    assert rejected.status_code == 200
    assert "unknown field {x} in the user template" in rejected.content.decode()
    assert not PromptTemplate.objects.exists()
    form["user"] = "Rate {response} from 1 to {scale}."
    assert client.post("/admin/judging/prompttemplate/add/", form).status_code == 302
    assert PromptTemplate.study_templates(study) == {"likert": {"system": "", "user": form["user"]}}
    assert prompts.messages_for(
        "likert", {"response": "r", "scale": 5}, PromptTemplate.study_templates(study)
    ) == [{"role": "user", "content": "Rate r from 1 to 5."}]


@pytest.mark.django_db(transaction=True)
def test_the_panel_follows_a_running_run_without_a_reload(asgi_server, page):
    study = make_study(slug="live", rubric=RUBRIC)
    add_items(study)
    make_user("dan", StudyMembership.Role.RESEARCHER, study)
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    run = plan_run(study, judge, ["pref"])
    page.goto(f"{asgi_server}/login/?next=/studies/live/")
    page.fill("#id_username", "dan")
    page.fill("#id_password", "pw-for-tests-only")
    page.press("#id_password", "Enter")
    page.wait_for_url(f"{asgi_server}/studies/live/")
    row = page.locator(f'tr[data-run-url$="/judge-runs/{run.pk}/"]')
    assert row.locator('[data-field="done"]').inner_text() == "0 / 2"

    # What a worker does, seen by the page only through its polling.
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.RUNNING)
    add_verdict(run, study.items.get(position=0), "AB", value="A", prompt_tokens=10)
    # A locator's wait, not wait_for_function: the page's CSP forbids evaluating strings.
    expect(row.locator('[data-field="done"]')).to_have_text("1 / 2", timeout=10_000)
    assert row.locator('[data-field="status"]').inner_text() == "running"
    assert row.locator("form[data-cancel]").count() == 1
    add_verdict(run, study.items.get(position=1), "AB", value="B", prompt_tokens=10)
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.DONE)
    expect(row.locator('[data-field="status"]')).to_have_text("done", timeout=10_000)
    assert row.locator('[data-field="remaining"]').inner_text() == "0"
    assert row.locator("form[data-cancel]").count() == 0  # nothing left to cancel
    page.screenshot(path=SCREENSHOTS / "judge-panel.png", full_page=True)
