"""The calibration report of a study: command, page, downloads, cache and background build."""

import io
import json
import re
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest
from conftest import DEMO_DIR, REPO, make_study, make_user, subprocess_env
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation.assignment import next_item, submit
from annotation.imports import import_items, import_labels
from annotation.models import Annotation, Rater, StudyMembership
from calibration.agreement import LabelsError
from calibration.report_cache import building_key, cached_report
from calibration.reports import build_report, study_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    study = make_study(slug="demo", rubric=json.loads((DEMO_DIR / "rubric.json").read_text()))
    import_items(study, DEMO_DIR / "items.jsonl")
    import_labels(study, DEMO_DIR / "labels.csv")
    return study


def report_json(slug, *args):
    out = io.StringIO()
    call_command("report", slug, *args, stdout=out)
    return json.loads(out.getvalue())


def agreement_json(*args):
    out = io.StringIO()
    call_command("agreement", str(DEMO_DIR / "labels.csv"), *args, stdout=out)
    return json.loads(out.getvalue())


def test_it_agrees_with_the_agreement_command_on_the_same_labels(demo):
    report = report_json("demo", "--bootstrap", "0")
    from_csv = agreement_json("--bootstrap", "0")
    pref = report["questions"][0]
    assert report["study"] == "demo"
    assert [q["question"] for q in report["questions"]] == ["pref"]  # "why" is free text
    for key in (
        "n_items",
        "n_raters",
        "n_labels",
        "percent_agreement",
        "fleiss_kappa",
        "krippendorff_alpha",
        "gwet_ac1",
        "pairwise",
    ):
        assert pref["humans"][key] == from_csv["humans"][key]
    judge, csv_judge = pref["judges"][0], from_csv["judges"][0]
    for key in (
        "rater",
        "n_items",
        "accuracy_vs_majority",
        "cohen_kappa_vs_majority",
        "accuracy_vs_majority_without_ties",
        "accuracy_vs_humans",
    ):
        assert judge[key] == csv_judge[key]


def test_it_adds_biases_breakdowns_and_rankings(demo):
    report = report_json("demo", "--bootstrap", "50")
    pref = report["questions"][0]
    assert set(pref["humans"]["verbosity"]) == {
        "n",
        "longer_win_rate",
        "lc_win_rate",
        "length_coef",
    }
    judge = pref["judges"][0]
    assert 0 <= judge["verbosity"]["longer_win_rate"] <= 1
    assert judge["self_preference"] is None  # the judge's model family is not known
    assert judge["confidence"] is None  # the PandaLM verdicts carry no confidence
    apps = {g["value"]: g for g in pref["breakdown"]["motivation_app"]}
    assert apps["Wikipedia"]["n_items"] == 20
    rankings = report["rankings"]
    models = {"llama-7b", "bloom-7b", "pythia-6.9b", "opt-7b", "cerebras-gpt-6.7B"}
    assert {r["model"] for r in rankings["humans"]} == models
    assert {r["model"] for r in rankings["judges"]["gpt-3.5-turbo"]} == models
    assert [r["rank"] for r in rankings["humans"]] == [1, 2, 3, 4, 5]
    for r in rankings["humans"]:
        assert r["ci_low"] <= r["score"] <= r["ci_high"]
    assert -1 <= rankings["correlation"]["gpt-3.5-turbo"]["spearman"] <= 1


def test_it_analyses_checklists_per_question_and_likert_as_ordinal(write):
    rubric = {
        "name": "r",
        "questions": [
            {"key": "quality", "type": "likert", "scale": 5},
            {"key": "check", "type": "checklist", "items": ["polite?", "correct?"]},
        ],
    }
    study = make_study(slug="rich", rubric=rubric)
    items = "".join(
        json.dumps(
            {"external_id": f"i{n}", "prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
        )
        + "\n"
        for n in range(4)
    )
    import_items(study, write("items.jsonl", items))
    rows = ["item,rater,kind,question,value"]
    for n in range(4):
        for rater, kind in (("h1", "human"), ("h2", "human"), ("j", "llm")):
            rows += [
                f"i{n},{rater},{kind},quality,{(n % 5) + 1}",
                f"i{n},{rater},{kind},check[0],yes",
                f"i{n},{rater},{kind},check[1],{'yes' if kind == 'llm' else 'no'}",
            ]
    import_labels(study, write("labels.csv", "\n".join(rows) + "\n"))
    report = report_json("rich", "--bootstrap", "0")
    by_question = {q["question"]: q for q in report["questions"]}
    assert list(by_question) == ["quality", "check[0]", "check[1]"]
    assert by_question["quality"]["level"] == "ordinal"
    assert by_question["quality"]["humans"]["krippendorff_alpha"] == 1.0
    # the judge says yes where both humans say no: leniency 1 - 0
    assert by_question["check[1]"]["judges"][0]["leniency"]["leniency"] == 1.0
    assert by_question["check[0]"]["judges"][0]["leniency"]["leniency"] == 0.0
    assert report["rankings"] is None


def test_it_measures_responses_a_and_b_in_characters_by_key(write):
    study = make_study(
        slug="lengths",
        rubric={"name": "r", "questions": [{"key": "q", "type": "likert", "scale": 5}]},
    )
    records = [
        {
            "external_id": "swapped",
            "prompt": "p",
            "responses": [
                {"key": "B", "text": "été ☃𝄞", "model": "m2"},
                {"key": "C", "text": "ignored"},
                {"key": "A", "text": 'ab"\\\n', "model": "m1"},
            ],
            "metadata": {"topic": "x", "n": 3, "score": 0.5, "tags": ["t"]},
        },
        {
            "external_id": "other keys",
            "prompt": "p",
            "responses": [{"key": "X", "text": "x"}, {"key": "Y", "text": "y"}],
        },
    ]
    import_items(study, write("items.jsonl", "".join(json.dumps(r) + "\n" for r in records)))
    items = study_items(study)
    assert items.loc["swapped", ["len_a", "len_b", "model_a", "model_b"]].tolist() == [
        len('ab"\\\n'),
        len("été ☃𝄞"),
        "m1",
        "m2",
    ]
    assert items.loc["other keys", ["len_a", "len_b", "model_a", "model_b"]].tolist() == [
        0,
        0,
        "",
        "",
    ]
    # text and integer metadata are categories; PostgreSQL's jsonb has its own key order
    assert {c for c in items.columns if c.startswith("metadata.")} == {
        "metadata.topic",
        "metadata.n",
    }


def test_it_names_the_item_a_human_labelled_twice(write):
    study = make_study(slug="twice")
    item = {"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}
    items = "".join(json.dumps({"external_id": ext, **item}) + "\n" for ext in ("i1", "i2"))
    import_items(study, write("items.jsonl", items))
    labels = "item,rater,kind,question,value,order\n" + "".join(
        f"{ext},h1,human,pref,A,{order}\n"
        for ext, order in (("i1", "AB"), ("i2", "AB"), ("i2", "BA"))
    )
    import_labels(study, write("labels.csv", labels))
    with pytest.raises(LabelsError, match="a human rater labelled item 'i2' more than once"):
        build_report(study, bootstrap=0)


def test_it_writes_html_csv_and_parquet(demo, tmp_path):
    call_command(
        "report", "demo", "--bootstrap", "20", "--format", "html", "--out", str(tmp_path / "r.html")
    )
    html = (tmp_path / "r.html").read_text()
    assert "<svg" in html and "gpt-3.5-turbo" in html
    call_command(
        "report", "demo", "--bootstrap", "20", "--format", "csv", "--out", str(tmp_path / "r.csv")
    )
    call_command(
        "report",
        "demo",
        "--bootstrap",
        "20",
        "--format",
        "parquet",
        "--out",
        str(tmp_path / "r.parquet"),
    )
    csv = pd.read_csv(tmp_path / "r.csv")
    parquet = pd.read_parquet(tmp_path / "r.parquet")
    assert list(csv.columns) == [
        "question",
        "group",
        "rater",
        "metric",
        "value",
        "ci_low",
        "ci_high",
    ]
    assert len(csv) == len(parquet) > 50
    alpha = csv[(csv.group == "humans") & (csv.metric == "krippendorff_alpha")].iloc[0]
    assert alpha.ci_low < alpha.value < alpha.ci_high


def test_it_names_an_unknown_study_with_exit_code_2(db):
    with pytest.raises(CommandError, match="no study with slug 'nope'") as error:
        report_json("nope")
    assert error.value.returncode == 2


def test_it_shows_researchers_the_report_page_with_plots(client, demo):
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    page = client.get("/studies/demo/report/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<svg") >= 4  # calibration, bias, confusion, rankings
    assert "Krippendorff" in html and "Model rankings" in html


def test_it_hides_the_report_from_annotators(client, demo):
    client.force_login(make_user("bob", StudyMembership.Role.ANNOTATOR, demo))
    assert client.get("/studies/demo/report/").status_code == 404
    assert client.get("/studies/demo/report/?format=json").status_code == 404


def test_it_offers_downloads(client, demo):
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    as_json = client.get("/studies/demo/report/?format=json")
    assert as_json.json()["study"] == "demo"
    as_csv = client.get("/studies/demo/report/?format=csv")
    assert as_csv["Content-Disposition"] == 'attachment; filename="demo-report.csv"'
    parquet = client.get("/studies/demo/report/?format=parquet")
    table = pd.read_parquet(io.BytesIO(parquet.content))
    assert len(table) == len(pd.read_csv(io.StringIO(as_csv.content.decode())))


def test_it_caches_the_report_until_labels_change(client, demo, write):
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    assert cached_report(demo) is None
    client.get("/studies/demo/report/")
    assert cached_report(demo) is not None
    import_labels(
        demo, write("more.csv", "item,rater,kind,question,value\npandalm-0,judge2,llm,pref,A\n")
    )
    assert cached_report(demo) is None
    assert "judge2" in client.get("/studies/demo/report/").content.decode()


def test_it_reports_a_label_submitted_on_the_labelling_page_at_once(client, demo):
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    before = client.get("/studies/demo/report/?format=json").json()["questions"][0]
    annotator = make_user("newcomer", StudyMembership.Role.ANNOTATOR, demo)
    demo.status, demo.overlap = "open", 10  # the demo's items have their labels already
    demo.save()
    reservation = next_item(demo, annotator)
    submit(demo, annotator, reservation.item, {"pref": "A"}, submission_id=uuid.uuid4())
    after = client.get("/studies/demo/report/?format=json").json()["questions"][0]
    assert after["humans"]["n_labels"] == before["humans"]["n_labels"] + 1


def test_it_reports_a_label_deleted_in_the_admin_at_once(client, demo):
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    before = client.get("/studies/demo/report/?format=json").json()["questions"][0]
    label = Annotation.objects.of_study(demo).current().filter(rater__kind="human").first()
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="pw-for-tests-only"))
    reply = admin.post(f"/admin/annotation/annotation/{label.pk}/delete/", {"post": "yes"})
    assert reply.status_code == 302
    after = client.get("/studies/demo/report/?format=json").json()["questions"][0]
    assert after["humans"]["n_labels"] == before["humans"]["n_labels"] - 1


def test_a_cached_report_is_served_without_counting_the_labels(client, demo):
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    client.get("/studies/demo/report/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/studies/demo/report/").status_code == 200
    counted = [
        q["sql"] for q in queries if "COUNT(" in q["sql"] and "annotation_annotation" in q["sql"]
    ]
    assert counted == []


def test_it_escapes_names_from_imported_data(client, write):
    study = make_study(slug="x")
    evil = "<script>alert(1)</script>"
    items = "".join(
        json.dumps(
            {
                "external_id": f"i{n}",
                "prompt": "p",
                "responses": [{"text": "a", "model": evil}, {"text": "bb", "model": "m2"}],
                "metadata": {"cat": "<img src=x onerror=alert(2)>" if n % 2 else "plain"},
            }
        )
        + "\n"
        for n in range(6)
    )
    import_items(study, write("items.jsonl", items))
    labels = "item,rater,kind,question,value\n" + "".join(
        f"i{n},h{r},human,pref,{'A' if n % 3 else 'B'}\ni{n},<b>judge</b>,llm,pref,A\n"
        for n in range(6)
        for r in range(2)
    ).replace("i0,<b>judge</b>,llm,pref,A\ni0,h1", "i0,h1", 1)
    import_labels(study, write("labels.csv", _dedupe(labels)))
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, study))
    html = client.get("/studies/x/report/").content.decode()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "<b>judge</b>" not in html
    assert "&lt;b&gt;judge&lt;/b&gt;" in html


def _dedupe(csv_text):
    lines, seen = [], set()
    for line in csv_text.splitlines():
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.django_db(transaction=True)
def test_it_builds_a_large_studys_report_in_a_worker(client, settings):
    settings.REPORT_IN_BACKGROUND_ABOVE = 0
    study = make_study(slug="big", rubric=json.loads((DEMO_DIR / "rubric.json").read_text()))
    import_items(study, DEMO_DIR / "items.jsonl")
    import_labels(study, DEMO_DIR / "labels.csv")
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, study))
    first = client.get("/studies/big/report/")
    assert first.status_code == 202
    assert "<progress" in first.content.decode()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "quorum",
            "worker",
            "--pool=solo",
            "--loglevel=info",
        ],
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while cached_report(study) is None and time.monotonic() < deadline:
            assert worker.poll() is None, worker.communicate()[0]
            time.sleep(0.5)
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0]
    assert cached_report(study) is not None, log
    page = client.get("/studies/big/report/")
    assert page.status_code == 200
    assert "Model rankings" in page.content.decode()


def test_it_measures_self_preference_for_a_family_given(demo):
    report = report_json("demo", "--bootstrap", "0", "--family", "gpt-3.5-turbo=llama")
    preference = report["questions"][0]["judges"][0]["self_preference"]
    items = [json.loads(line) for line in (DEMO_DIR / "items.jsonl").open()]
    with_llama = [i for i in items if any(r["model"] == "llama-7b" for r in i["responses"])]
    assert preference["family"] == "llama"
    assert preference["n_items"] == len(with_llama)
    assert 0 <= preference["judge_win_rate"] <= 1
    assert preference["difference"] == pytest.approx(
        preference["judge_win_rate"] - preference["human_win_rate"]
    )


def test_it_takes_a_judges_family_from_its_rater(demo):
    Rater.objects.filter(name="gpt-3.5-turbo").update(family="llama")
    stated = report_json("demo", "--bootstrap", "0", "--family", "gpt-3.5-turbo=llama")
    known = build_report(demo, bootstrap=0)["report"]
    assert (
        known["questions"][0]["judges"][0]["self_preference"]
        == (stated["questions"][0]["judges"][0]["self_preference"])
    )
    assert known["questions"][0]["judges"][0]["self_preference"]["family"] == "llama"


def test_it_reports_again_when_a_judges_family_changes(demo):
    before = build_report(demo, bootstrap=0)["report"]
    assert before["questions"][0]["judges"][0]["self_preference"] is None
    Rater.objects.filter(name="gpt-3.5-turbo").update(family="llama")
    assert cached_report(demo, bootstrap=0) is None
    after = build_report(demo, bootstrap=0)["report"]
    assert after["questions"][0]["judges"][0]["self_preference"]["family"] == "llama"


def test_it_refuses_a_family_without_a_judge(demo):
    with pytest.raises(CommandError, match="JUDGE=FAMILY") as error:
        report_json("demo", "--family", "llama")
    assert error.value.returncode == 2


def test_it_reports_agreement_by_confidence_and_elo(demo, write):
    rows = ["item,rater,kind,question,value,confidence"]
    rows += [f"pandalm-{n},judge2,llm,pref,A,{n / 300}" for n in range(300)]
    import_labels(demo, write("conf.csv", "\n".join(rows) + "\n"))
    report = report_json("demo", "--bootstrap", "0")
    judges = {j["rater"]: j for j in report["questions"][0]["judges"]}
    confidence = judges["judge2"]["confidence"]
    assert sum(b["n"] for b in confidence["bins"]) == confidence["n"] == 300
    assert len(confidence["bins"]) == 10
    assert judges["gpt-3.5-turbo"]["confidence"] is None
    humans = report["rankings"]["humans"]
    assert all(900 < r["elo"] < 1100 for r in humans)


def test_a_large_studys_page_shows_the_last_report_while_the_next_one_builds(
    client, demo, write, settings
):
    settings.REPORT_IN_BACKGROUND_ABOVE = 0  # every study is built by the worker
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, demo))
    build_report(demo)
    fresh = client.get("/studies/demo/report/")
    assert fresh.status_code == 200 and fresh.context["stale"] is False
    assert re.search(r"Updated \d+ s ago</p>", fresh.content.decode())
    import_labels(
        demo, write("more.csv", "item,rater,kind,question,value\npandalm-0,judge2,llm,pref,A\n")
    )
    cache.add(building_key(demo), True)  # a worker builds it already: nothing more is queued
    stale = client.get("/studies/demo/report/")
    assert stale.status_code == 200 and stale.context["stale"] is True
    body = stale.content.decode()
    assert "a worker is building the new report" in body and "judge2" not in body
