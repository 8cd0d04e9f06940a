"""Final labels: one value per item and analysed question with its provenance, in the CSV of
`export --final`, the study page's download and the API; promotion to gold; the report
scoring judges against them."""

import csv
import io
import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_study, make_user
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from test_route import labels_file

from annotation import adjudication
from annotation.final_labels import COLUMNS, settle
from annotation.models import Item, StudyMembership
from calibration.agreement import unique_majority

pytestmark = pytest.mark.django_db
EXPERT, RESEARCHER = StudyMembership.Role.EXPERT, StudyMembership.Role.RESEARCHER
RUBRIC = {
    "name": "Pairwise, checks and a note",
    "questions": [
        {
            "key": "pref",
            "type": "pairwise",
            "prompt": "Which is better?",
            "allow_tie": True,
            "allow_unable": True,
        },
        {"key": "check", "type": "checklist", "items": ["Polite?", "Correct?"]},
        {"key": "why", "type": "text", "required": False},
    ],
}


def add_item(study, ext, position, **fields):
    return Item.objects.create(
        study=study,
        external_id=ext,
        position=position,
        prompt=f"Prompt of {ext}",
        responses=[
            {"key": "A", "text": "one", "model": "m-a"},
            {"key": "B", "text": "two", "model": "m-b"},
        ],
        **fields,
    )


def import_labels(study, write, rows):
    call_command("import_labels", study.slug, labels_file(write, rows), stdout=io.StringIO())


def route_by_hand(item, reasons):
    Item.objects.filter(pk=item.pk).update(
        routed_at=timezone.now(), routed_reason="routing rules", routing_reasons=reasons
    )
    item.refresh_from_db()
    return item


def export_final(study):
    """`export SLUG --format csv --final` to stdout, as the command prints it."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "final.csv"
        call_command(
            "export", study.slug, "--format", "csv", "--final", "--out", out, stderr=io.StringIO()
        )
        return out.read_bytes().decode()


@pytest.fixture
def world(write):
    """Items whose labels give each provenance; carol the expert decides two of them."""
    study = make_study(rubric=RUBRIC)
    carol = make_user("carol", EXPERT, study)
    items = {
        ext: add_item(study, ext, n)
        for n, ext in enumerate(["all-a", "two-to-one", "split", "one", "none", "unable"])
    }
    items["gold"] = add_item(study, "gold", 6, is_gold=True, gold_answers={"pref": "B"})
    items["decided"] = add_item(study, "decided", 7)
    items["given-up"] = add_item(study, "given-up", 8)
    items["=HYPERLINK(1)"] = add_item(study, "=HYPERLINK(1)", 9)
    h = "human"
    import_labels(
        study,
        write,
        [
            ("all-a", "h1", h, "pref", "A", "AB"),
            ("all-a", "h2", h, "pref", "A", "BA"),
            ("all-a", "h1", h, "check[0]", "yes", "AB"),
            ("all-a", "h2", h, "check[0]", "no", "BA"),
            ("all-a", "h1", h, "why", "clear", "AB"),
            ("two-to-one", "h1", h, "pref", "A", "AB"),
            ("two-to-one", "h2", h, "pref", "B", "AB"),
            ("two-to-one", "h3", h, "pref", "A", "BA"),
            ("split", "h1", h, "pref", "A", "AB"),
            ("split", "h2", h, "pref", "tie", "AB"),
            ("one", "h1", h, "pref", "B", "AB"),
            ("unable", "h1", h, "pref", "unable", "AB"),
            ("unable", "h2", h, "pref", "B", "AB"),
            ("gold", "h1", h, "pref", "A", "AB"),
            ("gold", "h2", h, "pref", "A", "AB"),
            ("decided", "h1", h, "pref", "A", "AB"),
            ("decided", "h2", h, "pref", "B", "AB"),
            ("decided", "judge-x", "llm", "pref", "B", "AB"),
            ("given-up", "h1", h, "pref", "A", "AB"),
            ("given-up", "h2", h, "pref", "B", "AB"),
            ("=HYPERLINK(1)", "h1", h, "pref", "B", "AB"),
        ],
    )
    decided = route_by_hand(items["decided"], ["no_majority:pref"])
    adjudication.decide(study, carol, decided, {"pref": "B"}, note="B cites its source")
    given_up = route_by_hand(items["given-up"], ["no_majority:pref"])
    adjudication.mark_unresolved(study, carol, given_up, note="both wrong")
    return study, carol, items


def when(study, ext):
    return study.items.get(external_id=ext).adjudications.get().decided_at.isoformat()


def test_each_item_and_question_gets_one_value_with_its_provenance(world):
    study = world[0]
    rows = list(csv.reader(io.StringIO(export_final(study))))

    assert rows[0] == COLUMNS
    decided_at, given_up_at = when(study, "decided"), when(study, "given-up")

    def no_checks(item, value, provenance, n, agreement, routed="", by="", at="", note=""):
        pref = [item, "pref", value, provenance, str(n), agreement, routed, by, at, note]
        return [
            pref,
            *([item, f"check[{i}]", "", "unresolved", "0", "", routed, "", "", ""] for i in (0, 1)),
        ]

    expected = [
        ["all-a", "pref", "A", "unanimous", "2", "1.000000", "", "", "", ""],
        ["all-a", "check[0]", "", "unresolved", "2", "", "", "", "", ""],  # yes and no
        ["all-a", "check[1]", "", "unresolved", "0", "", "", "", "", ""],
        *no_checks("two-to-one", "A", "majority", 3, "0.666667"),
        *no_checks("split", "", "unresolved", 2, ""),
        *no_checks("one", "B", "single", 1, "1.000000"),
        *no_checks("none", "", "unresolved", 0, ""),
        *no_checks("unable", "B", "single", 1, "1.000000"),  # `unable` is no judgement
        *no_checks("gold", "B", "gold", 2, "0.000000"),
        *no_checks(
            "decided",
            "B",
            "adjudicated",
            2,
            "0.500000",
            "no_majority:pref",
            "carol",
            decided_at,
            "B cites its source",
        ),
        *no_checks(
            "given-up",
            "",
            "unresolved",
            2,
            "",
            "no_majority:pref",
            "carol",
            given_up_at,
            "both wrong",
        ),
        *no_checks("'=HYPERLINK(1)", "B", "single", 1, "1.000000"),  # escaped, not a formula
    ]
    assert rows[1:] == expected


def test_an_adjudication_outranks_gold_and_stops_counting_once_the_item_is_routed_again(world):
    study, carol, items = world
    gold = route_by_hand(items["gold"], ["gold_miss:pref"])
    adjudication.decide(study, carol, gold, {"pref": "A"})
    rows = {(r[0], r[1]): r for r in csv.reader(io.StringIO(export_final(study)))}
    assert rows["gold", "pref"][2:4] == ["A", "adjudicated"]

    route_by_hand(gold, ["gold_miss:pref", "judge_conflict:pref"])  # new labels, say
    rows = {(r[0], r[1]): r for r in csv.reader(io.StringIO(export_final(study)))}
    assert rows["gold", "pref"][2:4] == ["B", "gold"]  # waiting for an expert again
    assert rows["gold", "pref"][6:8] == ["gold_miss:pref;judge_conflict:pref", ""]


def test_a_send_back_leaves_the_labels_to_speak(world):
    study, carol, items = world
    item = route_by_hand(items["two-to-one"], ["low_agreement:pref"])
    adjudication.send_back(study, carol, item, 2)
    rows = {(r[0], r[1]): r for r in csv.reader(io.StringIO(export_final(study)))}
    assert rows["two-to-one", "pref"][2:9] == [
        "A",
        "majority",
        "3",
        "0.666667",
        "low_agreement:pref",
        "",
        "",
    ]


def test_the_file_the_download_and_the_api_hold_the_same_rows(world, capsys):
    study = world[0]
    text = export_final(study)
    call_command("export", study.slug, "--format", "csv", "--final")  # to stdout
    assert capsys.readouterr().out == text

    dan = make_user("dan", RESEARCHER, study)
    client = Client()
    client.force_login(dan)
    download = client.get(f"/studies/{study.slug}/final-labels.csv")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="s1-final-labels.csv"'
    assert b"".join(download.streaming_content) == text.encode()

    api = Client(headers={"authorization": f"Token {Token.objects.create(user=dan).key}"})
    url, pages, rows = f"/api/studies/{study.slug}/final-labels/?page_size=3", 0, []
    while url:
        page = api.get(url).json()
        rows += page["results"]
        url, pages = page["next"], pages + 1
    assert pages == 4  # 10 items, 3 a page
    from_csv = list(csv.DictReader(io.StringIO(text)))
    for row in from_csv:
        row["n_labels"] = int(row["n_labels"])
        row["item"] = row["item"].removeprefix("'")
    assert rows == from_csv


def test_only_the_studys_researchers_get_its_final_labels(world):
    study, carol, _ = world
    bob = make_user("bob", StudyMembership.Role.ANNOTATOR, study)
    for user in (bob, carol):
        client = Client()
        client.force_login(user)
        assert client.get(f"/studies/{study.slug}/final-labels.csv").status_code == 404
        assert client.get(f"/api/studies/{study.slug}/final-labels/").status_code == 404
    dan = make_user("dan", RESEARCHER, study)
    client = Client()
    client.force_login(dan)
    for bad in ("0", "-1", "x", ""):
        response = client.get(f"/api/studies/{study.slug}/final-labels/?page_size={bad}")
        assert response.status_code == 400
        assert "page_size" in response.json()
    response = client.get(f"/api/studies/{study.slug}/final-labels/?cursor=nonsense")
    assert response.status_code == 404


def test_final_labels_export_as_csv_only():
    make_study()
    with pytest.raises(CommandError, match="--final exports csv only"):
        call_command("export", "s1", "--format", "jsonl", "--final", stdout=io.StringIO())


def test_an_adjudicated_item_becomes_gold_with_its_final_answers(world):
    study, carol, _ = world
    dan = make_user("dan", RESEARCHER, study)
    client = Client()
    client.force_login(carol)
    assert client.post(f"/s/{study.slug}/items/decided/gold/").status_code == 404  # experts no
    client.force_login(dan)

    refused = client.post(f"/s/{study.slug}/items/two-to-one/gold/")
    assert refused.status_code == 400
    assert "no expert has decided this item" in refused.content.decode()

    assert client.post(f"/s/{study.slug}/items/decided/gold/").status_code == 302
    item = study.items.get(external_id="decided")
    assert (item.is_gold, item.gold_answers) == (True, {"pref": "B"})  # checklist had no value
    # Out of the expert queue, so that annotators are handed it as a check.
    assert item.routed_at is None
    assert item.routing_decisions.get().by == "promoted to gold"
    rows = {(r[0], r[1]): r for r in csv.reader(io.StringIO(export_final(study)))}
    assert rows["decided", "pref"][2:4] == ["B", "adjudicated"]


def test_the_report_scores_judges_against_final_labels_when_asked(world):
    study = world[0]
    # judge-x says B on `decided`: the humans split, the expert decided B.
    by_majority = json.loads(_report(study))
    by_final = json.loads(_report(study, "--reference", "final"))

    assert (by_majority["reference"], by_final["reference"]) == ("majority", "final")
    judge = {r["reference"]: r["questions"][0]["judges"][0] for r in (by_majority, by_final)}
    assert judge["majority"]["n_no_majority"] == 1 and judge["majority"]["n_items"] == 1
    assert judge["final"]["n_no_majority"] == 0
    assert judge["final"]["accuracy_vs_majority"] == 1.0


def _report(study, *args):
    out = io.StringIO()
    call_command("report", study.slug, "--bootstrap", "0", *args, stdout=out)
    return out.getvalue()


@given(st.lists(st.sampled_from(["A", "B", "tie"]), min_size=2, max_size=9))
def test_a_majority_is_agreements_majority(values):
    value, provenance = settle(values)
    majority = unique_majority(pd.Series(values))
    assert value == ("" if majority is None else majority)
    assert provenance == (
        "unresolved" if majority is None else "unanimous" if len(set(values)) == 1 else "majority"
    )


def test_settle_on_no_label_or_one():
    assert settle([]) == ("", "unresolved")
    assert settle(["B"]) == ("B", "single")
