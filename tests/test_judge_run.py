"""Judge runs against a local OpenAI-compatible server: verdicts, retries, resume, cancel."""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import DEMO_DIR, REPO, make_study, subprocess_env
from django.core.management import CommandError, call_command
from django.db import connection
from judge_stub import JudgeStub, StubConfig, StubServer

from annotation.exports import write_labels_csv
from annotation.imports import import_items
from annotation.models import Annotation
from calibration.agreement import position_bias
from calibration.report_cache import cached_report
from calibration.reports import build_report, study_labels
from judging.models import Judge, JudgeRun, PromptTemplate, Verdict
from judging.prompts import DEFAULT_TEMPLATES
from judging.work import cancel, execute, plan_run

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def study(tmp_path):
    study = make_study(slug="judged", rubric=json.loads((DEMO_DIR / "rubric.json").read_text()))
    lines, seen = [], set()
    for line in (DEMO_DIR / "items.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        content = (item["prompt"], *(r["text"] for r in item["responses"]))
        if content not in seen and len(lines) < 10:  # distinct requests, one per item
            seen.add(content)
            lines.append(line)
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_items(study, path)
    return study


@pytest.fixture
def stub():
    servers = []

    def serve(**config):
        server = StubServer(JudgeStub(StubConfig(**config)))
        server.start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.stop()


def judge_for(server, **fields):
    return Judge.objects.create(
        name=fields.pop("name", "stub"), base_url=server.base_url, model="stub-judge", **fields
    )


def test_it_stores_a_verdict_for_every_item_question_and_order(study, stub):
    server = stub(bias="first")
    run = plan_run(study, judge_for(server), ["pref"], both_orders=True)
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.DONE
    verdicts = Verdict.objects.filter(run=run)
    assert verdicts.count() == run.planned_requests() == 20
    for v in verdicts:
        # a judge that always picks the first slot names A when shown AB and B when shown BA
        assert v.value == v.order[0]
        assert "[[A]]" in v.raw and v.latency > 0 and v.prompt_tokens > 0
        assert v.confidence == pytest.approx(0.9, abs=0.05)
    labels = Annotation.objects.filter(rater__judge=run.judge, is_current=True)
    assert sorted(labels.values_list("order", flat=True)) == ["AB"] * 10 + ["BA"] * 10
    assert run.progress()["remaining"] == 0


def test_a_run_asks_with_the_studys_prompt_template_of_when_it_was_planned(study, stub):
    server = stub()
    pairwise = DEFAULT_TEMPLATES["pairwise"]
    PromptTemplate.objects.create(
        study=study,
        question_type="pairwise",
        system="You are a strict grader of cooking answers.",
        user=pairwise["user"],
    )
    run = plan_run(study, judge_for(server), ["pref"])
    PromptTemplate.objects.filter(study=study).update(system="Changed after planning.")
    execute(run.pk)

    systems = {body["messages"][0]["content"] for body in server.stub.bodies}
    assert systems == {"You are a strict grader of cooking answers."}
    assert Verdict.objects.filter(run=run, error="").count() == 10


def test_the_calibration_report_shows_the_injected_position_bias(study, stub):
    run = plan_run(study, judge_for(stub(bias="first")), ["pref"], both_orders=True)
    execute(run.pk)
    judge_rows = study_labels(study).query("kind == 'llm'")
    bias = position_bias(judge_rows)
    assert bias == {"n_pairs": 10, "consistency": 0.0, "first_slot_rate": 1.0}


def test_the_report_cached_before_a_run_is_rebuilt_with_its_labels(study, stub):
    assert build_report(study, bootstrap=0)["report"]["questions"] == []  # no labels yet
    run = plan_run(study, judge_for(stub()), ["pref"])
    execute(run.pk)
    assert cached_report(study, bootstrap=0) is None
    judges = build_report(study, bootstrap=0)["report"]["questions"][0]["judges"]
    assert [j["rater"] for j in judges] == ["stub"]


def test_a_longer_biased_judge_is_consistent_across_orders(study, stub):
    run = plan_run(study, judge_for(stub(bias="longer")), ["pref"], both_orders=True)
    execute(run.pk)
    bias = position_bias(study_labels(study).query("kind == 'llm'"))
    # the longer response wins in both orders, except where lengths are equal
    assert bias["consistency"] >= 0.9


def test_it_keeps_the_judges_concurrency_and_uses_all_of_it(study, stub):
    server = stub(latency=0.2)
    run = plan_run(study, judge_for(server, max_concurrency=3), ["pref"], both_orders=True)
    execute(run.pk)
    assert Verdict.objects.filter(run=run, error="").count() == 20
    assert server.stub.max_in_flight == 3


def test_it_retries_rate_limits_and_server_errors(study, stub):
    server = stub(script=("rate_limit", "server_error"), retry_after=0.05)
    judge = judge_for(server)
    run = plan_run(study, judge, ["pref"])
    execute(run.pk)
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.DONE
    assert set(Verdict.objects.filter(run=run).values_list("attempts", flat=True)) == {3}
    assert sorted(server.stub.attempts.values()) == [3] * 10


def test_it_records_failures_and_asks_them_again_on_resume(study, stub):
    broken = stub(error_rate=1.0, rate_limit_share=0.0)
    judge = judge_for(broken)
    run = plan_run(study, judge, ["pref"])
    execute(run.pk)  # every request fails after its retries
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
    assert Verdict.objects.filter(run=run).exclude(error="").count() == 10
    assert "HTTP 500" in Verdict.objects.filter(run=run).first().error

    judge.base_url = stub().base_url  # the provider recovers
    judge.save()
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.QUEUED)
    execute(run.pk)
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.DONE
    assert Verdict.objects.filter(run=run, error="").count() == 10
    assert Verdict.objects.filter(run=run).count() == 10


def test_unparseable_replies_are_stored_as_invalid_with_their_text(study, stub):
    run = plan_run(study, judge_for(stub(script=("no_verdict",) * 9)), ["pref"])
    execute(run.pk)
    verdicts = Verdict.objects.filter(run=run)
    assert {v.value for v in verdicts} == {Verdict.INVALID}
    assert all(v.raw for v in verdicts)
    assert not Annotation.objects.filter(rater__judge=run.judge).exists()


def test_a_cancelled_run_stops_asking(study, stub):
    run = plan_run(study, judge_for(stub(latency=0.3), max_concurrency=1), ["pref"])

    def work():
        try:
            execute(run.pk)
        finally:
            connection.close()  # this thread's own connection

    worker = threading.Thread(target=work)
    worker.start()
    deadline = time.monotonic() + 30
    while not Verdict.objects.filter(run=run).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    cancel(run)
    worker.join(timeout=60)
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.CANCELLED
    assert 1 <= Verdict.objects.filter(run=run).count() < 10


def test_it_resumes_after_a_killed_worker_without_duplicates(study, stub):
    server = stub(latency=0.25)
    judge = judge_for(server, max_concurrency=2)
    run = plan_run(study, judge, ["pref"], both_orders=True)
    code = f"import django; django.setup(); from judging.work import execute; execute({run.pk})"
    worker = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), start_new_session=True
    )
    deadline = time.monotonic() + 60
    while Verdict.objects.filter(run=run).count() < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)  # no chance to clean up
    worker.wait()
    before = Verdict.objects.filter(run=run).count()
    assert 4 <= before < 20
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.RUNNING

    execute(run.pk)  # a new worker takes the interrupted run
    verdicts = Verdict.objects.filter(run=run)
    assert verdicts.count() == 20
    assert len(set(verdicts.values_list("item_id", "order"))) == 20
    assert Annotation.objects.filter(rater__judge=judge, is_current=True).count() == 20
    assert JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.DONE


def test_a_resumed_unit_of_several_questions_is_labelled_with_all_its_verdicts(stub, write):
    rubric = {
        "name": "ticks",
        "questions": [
            {"key": "tick", "type": "checklist", "items": ["Polite?", "Short?", "True?"]}
        ],
    }
    study = make_study(slug="ticks", rubric=rubric)
    item = {"external_id": "q1", "prompt": "Say hi", "responses": [{"text": "hi"}, {"text": "yo"}]}
    import_items(study, write("items.jsonl", json.dumps(item) + "\n"))
    server = stub(yes_no_verdict="NO")
    run = plan_run(study, judge_for(server), ["tick"])
    # an earlier execution stored the first row's verdict, then stopped
    first = study.items.get()
    Verdict.objects.create(run=run, item=first, question="tick[0]", value="yes", confidence=0.7)

    execute(run.pk)

    assert server.stub.requests == 2  # only the rows without a verdict
    label = Annotation.objects.get(rater__judge=run.judge, is_current=True)
    assert label.answers == {"tick[0]": "yes", "tick[1]": "no", "tick[2]": "no"}
    assert label.confidences["tick[0]"] == 0.7


def test_the_api_key_is_sent_but_never_shown(study, stub, client, caplog, tmp_path):
    server = stub(api_key=SECRET)
    judge = judge_for(server, api_key=SECRET)
    run = plan_run(study, judge, ["pref"])
    with caplog.at_level(logging.DEBUG):
        execute(run.pk)
    assert Verdict.objects.filter(run=run, error="").count() == 10  # the stub accepted the key
    assert SECRET not in caplog.text
    assert SECRET not in repr(judge) and SECRET not in str(judge)
    out = io.StringIO()
    write_labels_csv(study, out)
    assert SECRET not in out.getvalue()
    admin = make_superuser()
    client.force_login(admin)
    page = client.get(f"/admin/judging/judge/{judge.pk}/change/").content.decode()
    assert "api_key" in page and SECRET not in page
    # a wrong key: the provider's error is kept, without the key we sent
    judge.api_key = "sk-wrong-key-000"
    judge.save()
    second = plan_run(study, judge, ["pref"])
    execute(second.pk)
    error = Verdict.objects.filter(run=second).first().error
    assert error.startswith("HTTP 401") and "sk-wrong-key-000" not in error


def make_superuser():
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", password="pw-for-tests-only")


def test_the_admin_keeps_the_stored_key_when_the_field_is_left_empty(stub, client):
    judge = judge_for(stub(), api_key=SECRET)
    client.force_login(make_superuser())
    url = f"/admin/judging/judge/{judge.pk}/change/"
    form = {
        "name": "stub",
        "base_url": judge.base_url,
        "model": "other-model",
        "api_key": "",
        "api_key_env": "",
        "temperature": "0",
        "max_tokens": "512",
        "max_concurrency": "8",
        "requests_per_minute": "",
        "price_per_1k_input": "0",
        "price_per_1k_output": "0",
        "family": "",
    }
    assert client.post(url, form).status_code == 302
    judge.refresh_from_db()
    assert judge.model == "other-model" and judge.api_key == SECRET


def test_add_judge_validates_the_base_url_and_the_key_variable(settings):
    with pytest.raises(CommandError, match="base_url"):
        call_command("add_judge", "bad", "--base-url", "file:///etc/passwd", "--model", "m")
    with pytest.raises(CommandError, match="'DATABASE_URL' is not a variable judges may read"):
        call_command(
            "add_judge", "bad", "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
            "--api-key-env", "DATABASE_URL",
        )  # fmt: skip
    assert not Judge.objects.exists()
    settings.JUDGE_KEY_ENV_NAMES = ["OPENAI_API_KEY", "MY_KEY"]
    call_command(
        "add_judge",
        "ok",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--api-key-env",
        "MY_KEY",
        "--family",
        "llama",
    )
    judge = Judge.objects.get(name="ok")
    assert (judge.api_key_env, judge.family, judge.rater.kind) == ("MY_KEY", "llama", "llm")
    assert judge.rater.family == "llama"  # where calibration looks for it
    judge.family = "gpt"
    judge.save()
    assert Judge.objects.get(name="ok").rater.family == "gpt"


def test_run_judge_refuses_free_text_and_unknown_questions(study, stub):
    judge_for(stub())
    with pytest.raises(CommandError, match="free text"):
        call_command("run_judge", "judged", "--judge", "stub", "--questions", "why")
    with pytest.raises(CommandError, match="no question 'nope'"):
        call_command("run_judge", "judged", "--judge", "stub", "--questions", "nope")
