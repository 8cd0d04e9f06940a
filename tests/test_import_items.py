"""`import_items`: items from JSONL (or CSV) all land in the study, or none do and it says why."""

import io
import json
import subprocess
import sys

import pytest
from conftest import REPO, make_study, subprocess_env
from django.core.management import CommandError, call_command
from django.db import connection

from annotation.imports import BATCH_SIZE, MAX_ERRORS, ImportFailed, import_items
from annotation.models import Item

pytestmark = pytest.mark.django_db

RESPONSES_EXPECTED = '"responses" must be a list of 2+ objects with "text"'


def item(n, **fields):
    record = {
        "external_id": f"q{n}",
        "prompt": f"Prompt {n}",
        "responses": [
            {"key": "A", "text": f"Answer A{n}", "model": "gpt-x"},
            {"key": "B", "text": f"Answer B{n}", "model": "llama-y"},
        ],
    }
    record.update(fields)
    return record


def jsonl(*records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def run_import(slug, path, *args):
    out = io.StringIO()
    call_command("import_items", slug, str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def import_errors(study, path, **options):
    with pytest.raises(ImportFailed) as excinfo:
        import_items(study, path, **options)
    return excinfo.value.errors


def snapshot(study):
    return list(
        Item.objects.filter(study=study)
        .order_by("position")
        .values_list(
            "external_id",
            "position",
            "prompt",
            "responses",
            "reference",
            "checklist",
            "metadata",
            "is_gold",
            "gold_answers",
        )
    )


@pytest.fixture
def seeded(study, write):
    """The study with two items already in it, so 'unchanged' means more than 'empty'."""
    import_items(study, write("seed.jsonl", jsonl(item(1), item(2))))
    return study


def assert_refused(study, path, message, **options):
    """The import fails with `message` as one of its errors and the study is as it was."""
    before = snapshot(study)
    errors = import_errors(study, path, **options)

    assert message in errors
    assert snapshot(study) == before
    return errors


# What an import writes --------------------------------------------------------------------


def test_it_imports_every_field_of_a_jsonl_item(study, write):
    record = item(
        1,
        reference="The reference answer",
        checklist=["Is it polite?", "Is it short?"],
        metadata={"category": "math", "lang": "en", "nested": {"level": [1, 2]}},
    )
    path = write("items.jsonl", jsonl(record, item(2)))

    output = run_import("s1", path)

    assert output.strip() == "Imported 2 new and 0 updated items into 's1'."
    first = study.items.get(external_id="q1")
    assert first.position == 1
    assert first.prompt == "Prompt 1"
    assert first.responses == record["responses"]
    assert first.reference == "The reference answer"
    assert first.checklist == ["Is it polite?", "Is it short?"]
    assert first.metadata == {"category": "math", "lang": "en", "nested": {"level": [1, 2]}}
    assert first.is_gold is False
    assert first.gold_answers == {}
    assert study.items.get(external_id="q2").position == 2


def test_it_fills_in_response_keys_and_models_the_file_leaves_out(write):
    study = make_study(
        "multi", rubric={"name": "R", "questions": [{"key": "ok", "type": "binary"}]}
    )
    record = {
        "external_id": 7,
        "prompt": "p",
        "responses": [{"text": "x"}, {"text": "y"}, {"text": "z"}],
    }

    import_items(study, write("items.jsonl", jsonl(record)))

    stored = study.items.get()
    assert stored.external_id == "7"
    assert stored.responses == [
        {"key": "A", "text": "x", "model": ""},
        {"key": "B", "text": "y", "model": ""},
        {"key": "C", "text": "z", "model": ""},
    ]


def test_it_places_new_items_after_the_ones_already_in_the_study(seeded, write):
    import_items(seeded, write("more.jsonl", jsonl(item(3), item(4))))

    assert [ext for ext, position, *_ in snapshot(seeded)] == ["q1", "q2", "q3", "q4"]
    assert [position for _, position, *_ in snapshot(seeded)] == [1, 2, 3, 4]


def test_it_keeps_the_items_of_other_studies_apart(seeded, write):
    other = make_study("other")

    import_items(other, write("items.jsonl", jsonl(item(1))))

    assert other.items.get().position == 1
    assert seeded.items.count() == 2


def test_it_imports_gold_answers_in_the_rubric_stored_form(write):
    rubric = {
        "name": "Gold",
        "questions": [
            {"key": "pref", "type": "pairwise"},
            {"key": "quality", "type": "likert", "scale": 5},
            {"key": "codes", "type": "categorical", "choices": ["x", "y", "z"], "multiple": True},
        ],
    }
    study = make_study("gold", rubric=rubric)
    gold = {"pref": "B", "quality": 4, "codes": "z;x"}

    import_items(study, write("items.jsonl", jsonl(item(1, gold=gold), item(2))))

    gold_item = study.items.get(external_id="q1")
    assert gold_item.is_gold is True
    assert gold_item.gold_answers == {"pref": "B", "quality": 4, "codes": ["x", "z"]}
    assert study.items.get(external_id="q2").is_gold is False


def test_it_imports_items_from_csv_with_extra_columns_as_metadata(study, write):
    path = write(
        "items.csv",
        "external_id,prompt,response_a,response_b,model_a,model_b,reference,category,lang\r\n"
        'q1,"Add 2, 2","It is 4","It is ""five""",gpt-x,llama-y,4,math,\r\n'
        'q2,"Line one\nline two",a,b,,,,chat,fr\r\n',
    )

    run_import("s1", path)

    q1, q2 = study.items.order_by("position")
    assert q1.prompt == "Add 2, 2"
    assert q1.responses == [
        {"key": "A", "text": "It is 4", "model": "gpt-x"},
        {"key": "B", "text": 'It is "five"', "model": "llama-y"},
    ]
    assert q1.reference == "4"
    assert q1.metadata == {"category": "math"}
    assert q2.prompt == "Line one\nline two"
    assert q2.metadata == {"category": "chat", "lang": "fr"}


# --update ---------------------------------------------------------------------------------


def test_it_refuses_an_external_id_already_in_the_study(seeded, write):
    path = write("items.jsonl", jsonl(item(3), item(2, prompt="changed")))

    assert_refused(
        seeded,
        path,
        f"{path}:2: \"external_id\" 'q2' is already in study 's1' (use --update to replace it)",
    )


def test_it_replaces_items_with_the_same_external_id_on_update(seeded, write):
    path = write("items.jsonl", jsonl(item(2, prompt="changed", reference="ref"), item(3)))

    output = run_import("s1", path, "--update")

    assert output.strip() == "Imported 1 new and 1 updated items into 's1'."
    assert [(ext, pos, prompt) for ext, pos, prompt, *_ in snapshot(seeded)] == [
        ("q1", 1, "Prompt 1"),
        ("q2", 2, "changed"),
        ("q3", 3, "Prompt 3"),
    ]
    assert seeded.items.get(external_id="q2").reference == "ref"


def test_it_refuses_an_external_id_twice_in_one_file_even_on_update(seeded, write):
    path = write("items.jsonl", jsonl(item(3), item(4), item(3, prompt="again")))

    assert_refused(
        seeded, path, f"{path}:3: \"external_id\" 'q3' is already on line 1", update=True
    )


# Bad input: each error names file, line and field, and the study stays as it was -------


def test_it_names_file_line_and_field_of_a_bad_responses_list(seeded, write):
    bad = item(5, responses=[{"key": "A", "text": "only one"}])
    path = write("items.jsonl", jsonl(item(3), item(4), bad))

    errors = assert_refused(seeded, path, f"{path}:3: {RESPONSES_EXPECTED}")

    assert errors == [f"{path}:3: {RESPONSES_EXPECTED}"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"external_id": None},
            '"external_id" must be a non-empty string of at most 255 characters',
        ),
        (
            {"external_id": "  "},
            '"external_id" must be a non-empty string of at most 255 characters',
        ),
        (
            {"external_id": "x" * 256},
            '"external_id" must be a non-empty string of at most 255 characters',
        ),
        (
            {"external_id": ["q9"]},
            '"external_id" must be a non-empty string of at most 255 characters',
        ),
        (
            {"external_id": True},
            '"external_id" must be a non-empty string of at most 255 characters',
        ),
        ({"prompt": None}, '"prompt" must be a string'),
        ({"prompt": 12}, '"prompt" must be a string'),
        ({"responses": None}, RESPONSES_EXPECTED),
        ({"responses": "A vs B"}, RESPONSES_EXPECTED),
        ({"responses": [{"text": "x"}, "y"]}, RESPONSES_EXPECTED),
        ({"responses": [{"text": "x"}, {"key": "B"}]}, RESPONSES_EXPECTED),
        ({"responses": [{"text": "x"}, {"text": 2}]}, RESPONSES_EXPECTED),
        (
            {"responses": [{"text": "x"}, {"text": "y", "score": 3}]},
            "\"responses\" entry 1: 'score' is not a response field (key, text, model)",
        ),
        (
            {"responses": [{"text": "x"}, {"key": "tie", "text": "y"}]},
            '"responses" entry 1: "key" must be a non-empty string other than \'tie\'',
        ),
        (
            {"responses": [{"key": "", "text": "x"}, {"text": "y"}]},
            '"responses" entry 0: "key" must be a non-empty string other than \'tie\'',
        ),
        (
            {"responses": [{"text": "x", "model": 4}, {"text": "y"}]},
            '"responses" entry 0: "model" must be a string',
        ),
        (
            {"responses": [{"key": "A", "text": "x"}, {"key": "A", "text": "y"}]},
            '"responses" keys must be distinct',
        ),
        (
            {"responses": [{"text": "x"}, {"text": "y"}, {"text": "z"}]},
            "\"responses\" must have exactly 2 entries for the pairwise question 'pref'",
        ),
        ({"reference": 42}, '"reference" must be a string'),
        ({"checklist": "Is it polite?"}, '"checklist" must be a list of non-empty strings'),
        ({"checklist": ["ok", ""]}, '"checklist" must be a list of non-empty strings'),
        ({"checklist": ["ok", 3]}, '"checklist" must be a list of non-empty strings'),
        ({"metadata": ["math"]}, '"metadata" must be a JSON object'),
        ({"metadata": "math"}, '"metadata" must be a JSON object'),
        ({"category": "math"}, '"category" is not an item field (put extra data in "metadata")'),
        ({"gold": "A"}, '"gold" must be an object mapping question keys to answers'),
        ({"gold": {"pref": True}}, "\"gold\" 'pref': answers are strings as in the label CSV"),
        ({"gold": {"pref": "C"}}, "\"gold\" 'pref': expected one of 'A', 'B' or 'tie'"),
        (
            {"gold": {"style": "A"}},
            "\"gold\" 'style': unknown question 'style'; the rubric has 'pref' or 'why'",
        ),
    ],
)
def test_it_refuses_a_bad_item_field(seeded, write, fields, message):
    path = write("items.jsonl", jsonl(item(3), item(4, **fields)))

    assert_refused(seeded, path, f"{path}:2: {message}")


def test_it_requires_the_item_checklist_for_a_per_item_checklist(write):
    rubric = {"name": "R", "questions": [{"key": "tick", "type": "checklist", "items": "per_item"}]}
    study = make_study("tick", rubric=rubric)
    path = write("items.jsonl", jsonl(item(1, checklist=["Cites a source?"]), item(2)))

    assert_refused(
        study, path, f"{path}:2: \"checklist\" is needed by the per-item checklist 'tick'"
    )


def test_it_requires_a_reference_for_a_binary_question_that_needs_one(write):
    rubric = {"name": "R", "questions": [{"key": "ok", "type": "binary", "needs_reference": True}]}
    study = make_study("ref", rubric=rubric)
    path = write("items.jsonl", jsonl(item(1, reference="4"), item(2, reference="")))

    assert_refused(study, path, f"{path}:2: \"reference\" is needed by the question 'ok'")


def test_it_checks_gold_checklist_answers_against_the_item_checklist(write):
    rubric = {"name": "R", "questions": [{"key": "tick", "type": "checklist", "items": "per_item"}]}
    study = make_study("tick", rubric=rubric)
    good = item(1, checklist=["One?", "Two?"], gold={"tick[1]": "yes"})
    bad = item(2, checklist=["One?"], gold={"tick[1]": "yes"})
    path = write("items.jsonl", jsonl(good, bad))

    assert_refused(
        study,
        path,
        f"{path}:2: \"gold\" 'tick[1]': checklist answers are written tick[i] with i from 0 to 0",
    )


def test_it_refuses_a_line_that_is_not_json(seeded, write):
    path = write("items.jsonl", jsonl(item(3)) + '{"external_id": "q4", prompt: "p"}\n')

    assert_refused(
        seeded,
        path,
        f"{path}:2: is not valid JSON: Expecting property name enclosed in double quotes "
        "(column 23)",
    )


def test_it_points_at_the_end_of_a_line_cut_short(seeded, write):
    path = write("items.jsonl", jsonl(item(3)) + '{"external_id": "q4",\n' + jsonl(item(5)))

    assert_refused(
        seeded,
        path,
        f"{path}:2: is not valid JSON: Expecting property name enclosed in double quotes "
        "(column 22)",
    )


def test_it_refuses_a_line_that_is_not_an_object(seeded, write):
    path = write("items.jsonl", jsonl(item(3)) + '["q4", "prompt"]\n')

    assert_refused(seeded, path, f"{path}:2: must be a JSON object")


def test_it_refuses_a_line_that_is_not_utf8(seeded, write):
    path = write("items.jsonl", jsonl(item(3)).encode() + b'{"external_id": "q\xff"}\n')

    assert_refused(seeded, path, f"{path}:2: is not valid UTF-8 (byte 19 of the line)")


def test_it_counts_blank_lines_in_line_numbers(seeded, write):
    path = write("items.jsonl", jsonl(item(3)) + "\n   \n" + jsonl(item(4, prompt=None)))

    assert_refused(seeded, path, f'{path}:4: "prompt" must be a string')


def test_it_refuses_a_file_without_items(seeded, write):
    path = write("items.jsonl", "\n\n")

    assert_refused(seeded, path, f"{path}: holds no items")


def test_it_refuses_a_file_that_is_neither_jsonl_nor_csv(seeded, write):
    path = write("items.json", json.dumps([item(3)]))

    assert_refused(seeded, path, f"{path}: expected a .jsonl or .csv file of items")


def test_it_refuses_an_items_csv_without_a_required_column(seeded, write):
    path = write("items.csv", "external_id,prompt,response_a\nq3,p,a\n")

    assert_refused(
        seeded,
        path,
        f'{path}:1: "response_b" is a required column; the header has '
        "external_id, prompt, response_a",
    )


def test_it_refuses_an_items_csv_row_with_the_wrong_number_of_fields(seeded, write):
    path = write("items.csv", "external_id,prompt,response_a,response_b\nq3,p,a,b\nq4,p,a\n")

    assert_refused(seeded, path, f"{path}:3: has 3 fields; the header has 4")


def test_it_reports_every_bad_line_at_once(seeded, write):
    path = write(
        "items.jsonl",
        jsonl(item(3, prompt=None), item(4), item(5, responses=[]), item(6, metadata=["math"])),
    )

    errors = assert_refused(seeded, path, f'{path}:1: "prompt" must be a string')

    assert errors == [
        f'{path}:1: "prompt" must be a string',
        f"{path}:3: {RESPONSES_EXPECTED}",
        f'{path}:4: "metadata" must be a JSON object',
    ]


def test_it_stops_after_max_errors(seeded, write):
    path = write("items.jsonl", jsonl(*(item(n, prompt=None) for n in range(MAX_ERRORS + 10))))

    errors = assert_refused(seeded, path, f'{path}:1: "prompt" must be a string')

    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1] == f"{path}: stopped after {MAX_ERRORS} errors"


def test_it_writes_nothing_when_the_bad_line_follows_more_than_a_batch_of_good_ones(seeded, write):
    good = [item(n) for n in range(3, BATCH_SIZE + 53)]
    path = write("items.jsonl", jsonl(*good, item(9999, responses=[{"text": "alone"}])))

    assert_refused(seeded, path, f"{path}:{BATCH_SIZE + 51}: {RESPONSES_EXPECTED}")

    assert seeded.items.count() == 2


def test_it_undoes_batched_updates_when_a_later_line_is_bad(study, write):
    n = BATCH_SIZE + 10
    import_items(study, write("first.jsonl", jsonl(*(item(i) for i in range(n)))))
    changed = [item(i, prompt="changed") for i in range(n)]
    path = write("second.jsonl", jsonl(*changed, item(n, prompt=None)))

    assert_refused(study, path, f'{path}:{n + 1}: "prompt" must be a string', update=True)

    assert not study.items.filter(prompt="changed").exists()


# Through the command ----------------------------------------------------------------------


def test_the_command_fails_with_the_file_line_message_and_imports_nothing(seeded, write):
    path = write("items.jsonl", jsonl(item(3), item(4), item(5, responses=[{"text": "x"}])))

    with pytest.raises(CommandError) as excinfo:
        run_import("s1", path)

    assert str(excinfo.value) == f"nothing was imported.\n{path}:3: {RESPONSES_EXPECTED}"
    assert seeded.items.count() == 2


def test_the_command_names_a_missing_file(seeded, tmp_path):
    path = tmp_path / "nope.jsonl"

    with pytest.raises(CommandError, match="No such file or directory") as excinfo:
        run_import("s1", path)

    assert str(excinfo.value).startswith(f"{path}: ")


def test_the_command_names_an_unknown_study(db, write):
    path = write("items.jsonl", jsonl(item(1)))

    with pytest.raises(CommandError) as excinfo:
        run_import("nope", path)

    assert str(excinfo.value) == "no study with slug 'nope'"
    assert not Item.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_with_the_message_on_stderr(write):
    study = make_study()
    good = write("good.jsonl", jsonl(item(1), item(2)))
    bad = write("bad.jsonl", jsonl(item(3), item(4), item(5, responses="A vs B")))

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    imported = manage("import_items", "s1", str(good))
    refused = manage("import_items", "s1", str(bad))
    unknown = manage("import_items", "nope", str(good))

    assert imported.returncode == 0, imported.stderr
    assert study.items.count() == 2
    assert refused.returncode != 0
    assert f"{bad}:3: {RESPONSES_EXPECTED}" in refused.stderr.splitlines()
    assert "nothing was imported." in refused.stderr
    assert refused.stdout == ""
    assert study.items.count() == 2
    assert unknown.returncode != 0
    assert "no study with slug 'nope'" in unknown.stderr


# Text survives intact ---------------------------------------------------------------------

AWKWARD_TEXTS = {
    "emoji": "Great answer 👍🏽 — 👩‍👩‍👧‍👦 family, 🇫🇷 flag, ❤️",
    "arabic": "ما هي عاصمة فرنسا؟ الجواب: باريس.",
    "hebrew": "מה בירת צרפת? \u200fפריז\u200f (Paris)",  # noqa: RUF001
    "mixed": "English then עברית then العربية then 中文 then हिन्दी",
    "combining": "e\u0301 vs \u00e9, Å vs A\u030a",
    "separators": "line\u2028separator and\u2029paragraph, tab\tend",
    "escapes": 'quotes " and \\ backslash, {"json": "inside"}',
}


def test_it_keeps_emoji_and_right_to_left_text_intact(study, write):
    records = [
        item(
            n,
            prompt=text,
            responses=[{"key": "A", "text": text[::-1]}, {"key": "B", "text": text + text}],
            reference=text,
            checklist=[text],
            metadata={"note": text, text: "as a key"},
        )
        for n, text in enumerate(AWKWARD_TEXTS.values())
    ]

    import_items(study, write("items.jsonl", jsonl(*records)))

    for n, text in enumerate(AWKWARD_TEXTS.values()):
        stored = study.items.get(external_id=f"q{n}")
        assert stored.prompt == text
        assert [r["text"] for r in stored.responses] == [text[::-1], text + text]
        assert stored.reference == text
        assert stored.checklist == [text]
        assert stored.metadata == {"note": text, text: "as a key"}


def test_it_keeps_ascii_escaped_unicode_intact(study, write):
    text = AWKWARD_TEXTS["emoji"] + AWKWARD_TEXTS["arabic"]
    path = write("items.jsonl", json.dumps(item(1, prompt=text), ensure_ascii=True) + "\n")

    import_items(study, path)

    assert study.items.get().prompt == text


def test_it_reads_utf8_with_a_byte_order_mark_and_crlf_line_endings(study, write):
    text = jsonl(item(1, prompt="שלום 👋"), item(2)).replace("\n", "\r\n")
    path = write("items.jsonl", "\ufeff".encode() + text.encode())

    import_items(study, path)

    assert list(study.items.order_by("position").values_list("external_id", "prompt")) == [
        ("q1", "שלום 👋"),
        ("q2", "Prompt 2"),
    ]


def test_it_reads_an_items_csv_with_a_byte_order_mark_and_crlf(study, write):
    text = 'external_id,prompt,response_a,response_b\r\nq1,"مرحبا\r\n👋",a,b\r\n'
    path = write("items.csv", "\ufeff".encode() + text.encode())

    import_items(study, path)

    stored = study.items.get()
    assert stored.external_id == "q1"
    assert stored.prompt == "مرحبا\r\n👋"


def test_it_keeps_very_long_texts_intact(study, write):
    long_prompt = ("A long prompt with ünïcödé and 🚀. " * 40_000)[:1_000_000]
    long_answer = "x" * 300_000 + "🏁"

    import_items(
        study,
        write(
            "items.jsonl",
            jsonl(item(1, prompt=long_prompt, responses=[{"text": long_answer}, {"text": "B"}])),
        ),
    )

    stored = study.items.get()
    assert len(stored.prompt) == 1_000_000
    assert stored.prompt == long_prompt
    assert stored.responses[0]["text"] == long_answer


def test_it_refuses_a_nul_character_with_a_file_line_error(seeded, write):
    """PostgreSQL text and jsonb cannot hold U+0000, so no backend should take it."""
    path = write("items.jsonl", jsonl(item(3), item(4, prompt="before\u0000after")))

    before = snapshot(seeded)
    errors = import_errors(seeded, path)

    assert errors[0].startswith(f"{path}:2: ")
    assert snapshot(seeded) == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's")
def test_it_tells_the_planner_how_many_items_there_are_now(
    study, write, django_capture_on_commit_callbacks
):
    """Until autovacuum's next round the planner would take the new rows for a handful."""
    with django_capture_on_commit_callbacks(execute=True):
        import_items(study, write("many.jsonl", jsonl(*(item(n) for n in range(1, 501)))))

    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'annotation_item'")
        (rows,) = cursor.fetchone()
    assert rows == 500
