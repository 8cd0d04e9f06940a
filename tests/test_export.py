"""`export`: labels as the long CSV, items as JSONL, the exact inverse of the importers."""

import io
import json

import pytest
from conftest import DEMO_DIR, demo_rubric, make_study
from django.core.management import CommandError, call_command

from annotation.imports import import_items, import_labels
from annotation.models import Annotation

pytestmark = pytest.mark.django_db

HEADER = "item,rater,kind,question,value,order,confidence,rationale\r\n"

EVERY_TYPE_RUBRIC = {
    "name": "Every question type",
    "questions": [
        {"key": "pref", "type": "pairwise", "allow_tie": True, "allow_unable": True},
        {"key": "quality", "type": "likert", "scale": 5, "labels": {"1": "bad", "5": "great"}},
        {"key": "check", "type": "checklist", "items": ["Polite?", "Short?"]},
        {"key": "tick", "type": "checklist", "items": "per_item"},
        {"key": "correct", "type": "binary", "needs_reference": True},
        {
            "key": "codes",
            "type": "categorical",
            "choices": ["x", "y", "z"],
            "multiple": True,
            "allow_unable": True,
        },
        {"key": "topic", "type": "categorical", "choices": ["math", "code", "chat"]},
        {"key": "why", "type": "text", "required": False},
    ],
}

EVERY_TYPE_ITEMS = [
    {
        "external_id": "q1",
        "prompt": 'What is 2+2? Answer "briefly", please.\nThanks',
        "responses": [
            {"key": "A", "text": "4", "model": "gpt-x"},
            {"key": "B", "text": "Four, I think 🤔", "model": "llama-y"},
        ],
        "reference": "4",
        "checklist": ["Gives a number?", "Shows working?"],
        "metadata": {"category": "math", "lang": "en", "tags": ["easy", 1, None, True]},
        "gold": {"pref": "A", "quality": "5", "codes": "x;z", "tick[1]": "no"},
    },
    {
        "external_id": "q2",
        "prompt": "ما هي عاصمة فرنسا؟",
        "responses": [{"key": "A", "text": "باريس"}, {"key": "B", "text": "Lyon"}],
        "reference": "باريس",
        "checklist": ["Names a city?"],
    },
    {
        "external_id": "q3",
        "prompt": "Write a haiku",
        "responses": [
            {"key": "A", "text": "line one\nline two\nline three", "model": "gpt-x"},
            {"key": "B", "text": "", "model": "llama-y"},
        ],
        "reference": "any haiku",
        "checklist": ["Three lines?", "Five syllables first?", "Seasonal word?"],
        "metadata": {"lang": "en"},
    },
]

# In the exporter's own order: items in import order, humans before judges, rater name,
# presentation order ("" < AB < BA), then the rubric's question order.
EVERY_TYPE_LABELS = (
    HEADER
    + 'q1,bob,human,pref,A,,0.8,"Short, and ""right"".\nSecond line."\r\n'
    + "q1,bob,human,quality,4,,,\r\n"
    + "q1,bob,human,check[0],yes,,,\r\n"
    + "q1,bob,human,check[1],na,,,\r\n"
    + "q1,bob,human,tick[0],no,,,\r\n"
    + "q1,bob,human,tick[1],yes,,,\r\n"
    + "q1,bob,human,correct,yes,,1.0,\r\n"
    + "q1,bob,human,codes,x;z,,,\r\n"
    + "q1,bob,human,topic,math,,,\r\n"
    + 'q1,bob,human,why,"Commas, ""quotes"", and\nnewlines; all kept",,,\r\n'
    + "q1,dora,human,quality,2,,,\r\n"
    + "q1,dora,human,codes,unable,,,\r\n"
    + "q1,dora,human,pref,tie,BA,,\r\n"
    + "q1,judge,llm,pref,A,AB,0.9,A is right\r\n"
    + 'q1,judge,llm,pref,B,BA,0.55,"B, on reflection"\r\n'
    + "q2,bob,human,pref,unable,,,\r\n"
    + "q2,bob,human,tick[0],yes,,,\r\n"
    + "q2,bob,human,correct,no,,,\r\n"
    + "q2,bob,human,codes,z;y,,,\r\n"
    + "q2,bob,human,why,مرحبا 👋 שלום,,,\r\n"
    + "q2,judge,llm,pref,A,AB,0.123456789,\r\n"
    + "q2,judge,llm,pref,A,BA,0.5,\r\n"
    + "q3,judge,llm,tick[2],na,,,\r\n"
    + "q3,judge,llm,tick[0],yes,,,\r\n"
    + "q3,judge,llm,pref,tie,AB,,\r\n"
)


def jsonl(records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def run_export(slug, fmt, out):
    err = io.StringIO()
    call_command(
        "export", slug, "--format", fmt, "--out", str(out), stdout=io.StringIO(), stderr=err
    )
    return err.getvalue()


def export_bytes(slug, tmp_path, fmt, name):
    path = tmp_path / name
    run_export(slug, fmt, path)
    return path.read_bytes()


@pytest.fixture
def every_type(write):
    study = make_study("every", rubric=EVERY_TYPE_RUBRIC)
    import_items(study, write("items.jsonl", jsonl(EVERY_TYPE_ITEMS)))
    import_labels(study, write("labels.csv", EVERY_TYPE_LABELS))
    return study


# Round trips ------------------------------------------------------------------------------


def test_it_exports_the_demo_data_byte_for_byte_as_published(tmp_path):
    study = make_study("demo", rubric=demo_rubric())
    call_command("import_items", "demo", str(DEMO_DIR / "items.jsonl"), stdout=io.StringIO())
    call_command("import_labels", "demo", str(DEMO_DIR / "labels.csv"), stdout=io.StringIO())

    assert study.items.count() == 300
    assert (
        export_bytes("demo", tmp_path, "jsonl", "items.jsonl")
        == (DEMO_DIR / "items.jsonl").read_bytes()
    )
    assert (
        export_bytes("demo", tmp_path, "csv", "labels.csv")
        == (DEMO_DIR / "labels.csv").read_bytes()
    )


def test_it_gives_the_same_bytes_after_export_import_export(every_type, tmp_path):
    items_1 = export_bytes("every", tmp_path, "jsonl", "items-1.jsonl")
    labels_1 = export_bytes("every", tmp_path, "csv", "labels-1.csv")
    copy = make_study("copy", rubric=EVERY_TYPE_RUBRIC)

    call_command("import_items", "copy", str(tmp_path / "items-1.jsonl"), stdout=io.StringIO())
    call_command("import_labels", "copy", str(tmp_path / "labels-1.csv"), stdout=io.StringIO())

    assert export_bytes("copy", tmp_path, "jsonl", "items-2.jsonl") == items_1
    assert export_bytes("copy", tmp_path, "csv", "labels-2.csv") == labels_1
    assert copy.items.filter(is_gold=True).count() == 1
    assert Annotation.objects.of_study(copy).count() == 10


def test_it_exports_every_item_field_as_imported(every_type, tmp_path):
    exported = export_bytes("every", tmp_path, "jsonl", "items.jsonl").decode("utf-8")

    assert exported.endswith("\n")
    assert [json.loads(line) for line in exported.splitlines()] == EVERY_TYPE_ITEMS
    assert "ما هي عاصمة فرنسا؟" in exported
    assert "🤔" in exported


def test_it_writes_the_label_rows_in_the_documented_order(every_type, tmp_path):
    exported = export_bytes("every", tmp_path, "csv", "labels.csv").decode("utf-8")

    canonical = (
        EVERY_TYPE_LABELS.replace("codes,z;y,", "codes,y;z,")
        .replace("q3,judge,llm,tick[2],na,,,\r\nq3,judge,llm,tick[0],yes,,,\r\n", "")
        .replace(
            "q3,judge,llm,pref,tie,AB,,\r\n",
            "q3,judge,llm,tick[0],yes,,,\r\nq3,judge,llm,tick[2],na,,,\r\n"
            "q3,judge,llm,pref,tie,AB,,\r\n",
        )
    )
    assert exported == canonical


def test_it_leaves_out_empty_optional_item_fields(study, write, tmp_path):
    record = {
        "external_id": "q1",
        "prompt": "p",
        "responses": [{"key": "A", "text": "a", "model": ""}, {"key": "B", "text": "b"}],
        "reference": "",
        "checklist": [],
        "metadata": {},
    }
    import_items(study, write("items.jsonl", jsonl([record])))

    exported = export_bytes("s1", tmp_path, "jsonl", "out.jsonl").decode()

    assert exported == (
        '{"external_id": "q1", "prompt": "p", "responses": [{"key": "A", "text": "a"}, '
        '{"key": "B", "text": "b"}]}\n'
    )


def test_it_exports_only_current_labels(study, write, tmp_path):
    import_items(study, write("items.jsonl", jsonl(EVERY_TYPE_ITEMS[1:2])))
    import_labels(study, write("a.csv", "item,rater,question,value\nq2,bob,pref,A\n"))
    import_labels(study, write("b.csv", "item,rater,question,value\nq2,bob,pref,B\n"), update=True)

    exported = export_bytes("s1", tmp_path, "csv", "labels.csv").decode()

    assert exported == HEADER + "q2,bob,human,pref,B,,,\r\n"


STRENGTH_RUBRIC = {
    "name": "Preference with strength",
    "questions": [
        {"key": "overall", "type": "pairwise", "strength": ["a bit", "clearly", "far"]},
        {"key": "style", "type": "pairwise", "strength": True, "required": False},
        {"key": "quality", "type": "likert", "scale": 5},
    ],
}
STRENGTH_ITEMS = [
    {
        "external_id": "q1",
        "prompt": "Say hi",
        "responses": [{"key": "A", "text": "hi"}, {"key": "B", "text": "hello"}],
        "gold": {"overall": "B", "overall.strength": "2"},
    }
]


def test_it_writes_a_strength_right_after_its_pairwise_answer_and_reads_it_back(write, tmp_path):
    study = make_study("strength", rubric=STRENGTH_RUBRIC)
    import_items(study, write("items.jsonl", jsonl(STRENGTH_ITEMS)))
    import_labels(
        study,
        write(
            "labels.csv",
            HEADER
            + "q1,bob,human,quality,4,,,\r\n"
            + "q1,bob,human,style.strength,1,,,\r\n"
            + "q1,bob,human,overall.strength,3,,,\r\n"
            + "q1,bob,human,style,A,,,\r\n"
            + "q1,bob,human,overall,B,,,\r\n"
            + "q1,dora,human,overall,tie,BA,,\r\n"
            + "q1,eve,human,overall.strength,1,AB,,\r\n"
            + "q1,eve,human,overall,A,AB,,\r\n"
            + "q1,judge,llm,overall,A,AB,0.9,\r\n",
        ),
    )

    labels_1 = export_bytes("strength", tmp_path, "csv", "labels-1.csv")
    items_1 = export_bytes("strength", tmp_path, "jsonl", "items-1.jsonl")

    assert labels_1.decode() == (
        HEADER
        + "q1,bob,human,overall,B,,,\r\n"
        + "q1,bob,human,overall.strength,3,,,\r\n"
        + "q1,bob,human,style,A,,,\r\n"
        + "q1,bob,human,style.strength,1,,,\r\n"
        + "q1,bob,human,quality,4,,,\r\n"
        + "q1,dora,human,overall,tie,BA,,\r\n"
        + "q1,eve,human,overall,A,AB,,\r\n"
        + "q1,eve,human,overall.strength,1,AB,,\r\n"
        + "q1,judge,llm,overall,A,AB,0.9,\r\n"
    )
    assert [json.loads(line) for line in items_1.decode().splitlines()] == STRENGTH_ITEMS

    copy = make_study("copy", rubric=STRENGTH_RUBRIC)
    call_command("import_items", "copy", str(tmp_path / "items-1.jsonl"), stdout=io.StringIO())
    call_command("import_labels", "copy", str(tmp_path / "labels-1.csv"), stdout=io.StringIO())

    assert export_bytes("copy", tmp_path, "csv", "labels-2.csv") == labels_1
    assert export_bytes("copy", tmp_path, "jsonl", "items-2.jsonl") == items_1
    eve = Annotation.objects.of_study(copy).get(rater__name="eve")
    assert eve.answers == {"overall": "A", "overall.strength": 1}
    assert copy.items.get().gold_answers == {"overall": "B", "overall.strength": 2}


def test_it_exports_an_empty_study_as_a_header_and_an_empty_file(study, tmp_path):
    assert export_bytes("s1", tmp_path, "csv", "labels.csv") == HEADER.encode()
    assert export_bytes("s1", tmp_path, "jsonl", "items.jsonl") == b""


# The command ------------------------------------------------------------------------------


def test_it_reports_what_it_wrote(every_type, tmp_path):
    assert run_export("every", "csv", tmp_path / "l.csv").strip() == (
        f"Wrote 25 label rows to {tmp_path / 'l.csv'}."
    )
    assert run_export("every", "jsonl", tmp_path / "i.jsonl").strip() == (
        f"Wrote 3 items to {tmp_path / 'i.jsonl'}."
    )


def test_it_writes_to_standard_output_without_out(every_type, tmp_path, capsys):
    from_file = export_bytes("every", tmp_path, "csv", "labels.csv").decode("utf-8")
    capsys.readouterr()

    call_command("export", "every", "--format", "csv")

    assert capsys.readouterr().out == from_file


def test_it_creates_missing_folders_for_the_output(every_type, tmp_path):
    path = tmp_path / "a" / "b" / "items.jsonl"

    run_export("every", "jsonl", path)

    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_it_replaces_an_existing_output_file(every_type, tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text("old content that is longer than nothing\n" * 1000)

    run_export("every", "jsonl", path)

    assert path.read_bytes() == export_bytes("every", tmp_path, "jsonl", "fresh.jsonl")


def test_it_fails_cleanly_when_the_output_cannot_be_written(every_type, tmp_path):
    target = tmp_path / "out" / "a-folder"
    target.mkdir(parents=True)

    with pytest.raises(CommandError, match="Is a directory") as excinfo:
        run_export("every", "csv", target)

    assert str(excinfo.value).startswith(f"{target}: ")
    assert [p.name for p in target.parent.iterdir()] == ["a-folder"]
    assert list(target.iterdir()) == []


def test_it_names_an_unknown_study(db, tmp_path):
    with pytest.raises(CommandError) as excinfo:
        run_export("nope", "csv", tmp_path / "out.csv")

    assert str(excinfo.value) == "no study with slug 'nope'"
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("args", [["--format", "parquet"], []])
def test_it_requires_a_known_format(study, tmp_path, args):
    with pytest.raises(CommandError, match="--format"):
        call_command("export", "s1", *args, "--out", str(tmp_path / "out"))

    assert not (tmp_path / "out").exists()
