"""`import_labels`: the long label CSV lands whole (raters made as needed) or not at all."""

import csv
import io
import json

import pytest
from conftest import make_study, make_user
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation import imports
from annotation.exports import write_labels_csv
from annotation.imports import LABEL_COLUMNS, ImportFailed, import_items, import_labels
from annotation.models import Annotation, Rater, StudyMembership

pytestmark = pytest.mark.django_db

LIKERT = {"key": "quality", "type": "likert", "scale": 5}
RUBRIC = {
    "name": "Rich",
    "questions": [
        {"key": "pref", "type": "pairwise", "allow_tie": True},
        LIKERT,
        {"key": "check", "type": "checklist", "items": ["Polite?", "Short?"]},
        {"key": "tick", "type": "checklist", "items": "per_item"},
        {"key": "correct", "type": "binary", "allow_unable": True},
        {"key": "codes", "type": "categorical", "choices": ["x", "y", "z"], "multiple": True},
        {"key": "why", "type": "text", "required": False},
    ],
}
ITEMS = [
    {
        "external_id": "q1",
        "prompt": "Say hi",
        "responses": [{"key": "A", "text": "hi"}, {"key": "B", "text": "hello"}],
        "checklist": ["Greets?", "One word?", "Lowercase?"],
    },
    {
        "external_id": "q2",
        "prompt": "Count to 3",
        "responses": [{"key": "A", "text": "1 2 3"}, {"key": "B", "text": "one two"}],
        "checklist": ["Reaches 3?"],
    },
]


@pytest.fixture
def rich(db, write):
    study = make_study("rich", rubric=RUBRIC)
    import_items(study, write("items.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS)))
    return study


def labels(*rows, header=LABEL_COLUMNS, newline="\n"):
    """A label CSV; each row is a tuple in LABEL_COLUMNS order (trailing columns optional)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow(list(row) + [""] * (len(header) - len(row)))
    return out.getvalue()


def run_import(slug, path, *args):
    out = io.StringIO()
    call_command("import_labels", slug, str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def import_errors(study, path, **options):
    with pytest.raises(ImportFailed) as excinfo:
        import_labels(study, path, **options)
    return excinfo.value.errors


def snapshot(study):
    """Everything an import may write: labels of the study, raters, users, memberships."""
    return (
        sorted(
            Annotation.objects.of_study(study).values_list(
                "id",
                "item__external_id",
                "rater__name",
                "rater__kind",
                "order",
                "answers",
                "confidences",
                "rationales",
                "is_current",
            )
        ),
        sorted(Rater.objects.values_list("kind", "name")),
        sorted(User.objects.values_list("username", flat=True)),
        sorted(study.memberships.values_list("user__username", "role")),
    )


def assert_refused(study, path, message, **options):
    before = snapshot(study)
    errors = import_errors(study, path, **options)

    assert message in errors
    assert snapshot(study) == before
    return errors


def current(study, item, rater, order=""):
    return (
        Annotation.objects.of_study(study)
        .current()
        .get(item__external_id=item, rater__name=rater, order=order)
    )


# What an import writes --------------------------------------------------------------------


def test_it_imports_one_label_per_item_rater_and_order(rich, write):
    path = write(
        "labels.csv",
        labels(
            ("q1", "bob", "human", "pref", "B", "", "0.75", "B says hello"),
            ("q1", "bob", "human", "quality", "4"),
            ("q1", "bob", "human", "check[1]", "na"),
            ("q1", "bob", "human", "tick[2]", "yes"),
            ("q1", "bob", "human", "correct", "unable"),
            ("q1", "bob", "human", "codes", "z;x"),
            ("q1", "bob", "human", "why", 'Friendly, "warm"'),
            ("q1", "gpt-4o", "llm", "pref", "A", "AB", "0.9", "A is shorter"),
            ("q1", "gpt-4o", "llm", "pref", "B", "BA", "0.6"),
            ("q2", "bob", "human", "pref", "tie"),
        ),
    )

    output = run_import("rich", path)

    assert output.strip() == "Imported 4 new and 0 replaced labels into 'rich'."
    bob_q1 = current(rich, "q1", "bob")
    assert bob_q1.answers == {
        "pref": "B",
        "quality": 4,
        "check[1]": "na",
        "tick[2]": "yes",
        "correct": "unable",
        "codes": ["x", "z"],
        "why": 'Friendly, "warm"',
    }
    assert bob_q1.confidences == {"pref": 0.75}
    assert bob_q1.rationales == {"pref": "B says hello"}
    assert bob_q1.source == Annotation.Source.IMPORT
    assert bob_q1.rubric_version == rich.rubric_version
    assert bob_q1.is_current
    assert current(rich, "q1", "gpt-4o", "AB").answers == {"pref": "A"}
    assert current(rich, "q1", "gpt-4o", "AB").rationales == {"pref": "A is shorter"}
    assert current(rich, "q1", "gpt-4o", "BA").answers == {"pref": "B"}
    assert current(rich, "q1", "gpt-4o", "BA").confidences == {"pref": 0.6}
    assert current(rich, "q2", "bob").answers == {"pref": "tie"}


@pytest.fixture
def one_row_batches(monkeypatch):
    """Every row in a batch of its own: what a file far longer than a batch goes through."""
    monkeypatch.setattr(imports, "BATCH_SIZE", 1)


def test_it_gathers_a_labels_rows_from_anywhere_in_the_file(rich, write, one_row_batches):
    path = write(
        "labels.csv",
        labels(
            ("q1", "bob", "human", "pref", "B"),
            ("q2", "amy", "human", "pref", "A"),
            ("q1", "amy", "human", "quality", "2"),
            ("q2", "amy", "human", "quality", "5"),
            ("q1", "bob", "human", "quality", "4", "", "0.5"),
            ("q1", "bob", "human", "why", "short", "", "", "kept for later"),
        ),
    )

    result = import_labels(rich, path)

    assert (result.created, result.updated) == (3, 0)
    bob_q1 = current(rich, "q1", "bob")
    assert bob_q1.answers == {"pref": "B", "quality": 4, "why": "short"}
    assert bob_q1.confidences == {"quality": 0.5}
    assert bob_q1.rationales == {"why": "kept for later"}
    assert current(rich, "q1", "amy").answers == {"quality": 2}
    assert current(rich, "q2", "amy").answers == {"pref": "A", "quality": 5}


def test_it_counts_each_items_human_labels_for_the_assignment_engine(rich, write):
    rows = [("q1", "bob", "human", "pref", "B"), ("q1", "gpt-4o", "llm", "pref", "A", "AB")]
    import_labels(rich, write("labels.csv", labels(*rows, ("q2", "dora", "human", "pref", "A"))))
    import_labels(rich, write("more.csv", labels(("q1", "bob", "human", "pref", "A"))), update=True)
    import_labels(rich, write("new.csv", labels(("q1", "eve", "human", "pref", "A"))))

    counts = dict(rich.items.values_list("external_id", "human_labels"))
    assert (counts["q1"], counts["q2"]) == (2, 1)  # judges and replaced labels not counted


def test_a_label_shown_in_an_order_comes_back_from_its_own_export(rich, write):
    shown_ba = [
        ("q1", "bob", "human", "pref", "A", "BA"),
        ("q1", "bob", "human", "quality", "4", "BA"),
        ("q1", "bob", "human", "correct", "yes", "BA"),
    ]
    import_labels(rich, write("labels.csv", labels(*shown_ba)))
    exported = io.StringIO()
    write_labels_csv(rich, exported)
    other = make_study("other", rubric=RUBRIC)
    import_items(other, write("items.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS)))

    import_labels(other, write("exported.csv", exported.getvalue()))

    label = current(other, "q1", "bob", "BA")
    assert label.answers == {"pref": "A", "quality": 4, "correct": "yes"}


def test_it_refuses_an_order_where_the_rubric_compares_no_pair(write):
    study = make_study("scores", rubric={"name": "s", "questions": [LIKERT]})
    import_items(study, write("items.jsonl", json.dumps(ITEMS[0]) + "\n"))
    with pytest.raises(ImportFailed) as failed:
        import_labels(
            study, write("labels.csv", labels(("q1", "bob", "human", "quality", "3", "BA")))
        )
    assert str(failed.value).endswith(
        'labels.csv:2: "order" applies only to rubrics with a pairwise question'
    )


def test_it_makes_human_raters_login_less_annotators(rich, write):
    import_labels(rich, write("labels.csv", labels(("q1", "dora", "human", "pref", "A"))))

    dora = Rater.objects.get(name="dora")
    assert dora.kind == Rater.Kind.HUMAN
    assert dora.user.username == "dora"
    assert dora.user.has_usable_password() is False
    assert rich.role_of(dora.user) == StudyMembership.Role.ANNOTATOR


def test_it_treats_a_rater_without_kind_as_human(rich, write):
    path = write("labels.csv", "item,rater,question,value\nq1,erin,pref,B\n")

    import_labels(rich, path)

    erin = Rater.objects.get(name="erin")
    assert erin.kind == Rater.Kind.HUMAN
    assert erin.user.has_usable_password() is False
    assert current(rich, "q1", "erin").answers == {"pref": "B"}


def test_it_gives_llm_raters_no_user_account(rich, write):
    users_before = User.objects.count()

    import_labels(rich, write("labels.csv", labels(("q1", "gpt-4o", "llm", "pref", "A", "AB"))))

    judge = Rater.objects.get(name="gpt-4o")
    assert judge.kind == Rater.Kind.LLM
    assert judge.user is None
    assert User.objects.count() == users_before
    assert not rich.memberships.exists()


def test_it_keeps_an_existing_member_role_and_password(rich, write):
    carol = make_user("carol", StudyMembership.Role.EXPERT, rich)

    import_labels(rich, write("labels.csv", labels(("q1", "carol", "human", "pref", "A"))))

    carol.refresh_from_db()
    assert Rater.objects.get(name="carol").user == carol
    assert carol.has_usable_password()
    assert list(rich.memberships.values_list("user__username", "role")) == [("carol", "expert")]


def test_it_reuses_raters_across_imports_and_studies(rich, write):
    other = make_study("other")
    import_items(other, write("items.jsonl", json.dumps(ITEMS[0]) + "\n"))

    import_labels(rich, write("a.csv", labels(("q1", "bob", "human", "pref", "A"))))
    import_labels(rich, write("b.csv", labels(("q2", "bob", "human", "pref", "A"))))
    import_labels(other, write("c.csv", labels(("q1", "bob", "human", "pref", "B"))))

    assert Rater.objects.filter(name="bob").count() == 1
    assert User.objects.filter(username="bob").count() == 1
    assert other.role_of(User.objects.get(username="bob")) == StudyMembership.Role.ANNOTATOR


@pytest.mark.parametrize(
    ("text", "stored"), [("0.75", 0.75), ("1", 1.0), ("0", 0.0), (" 0.5 ", 0.5), ("-2e-1", -0.2)]
)
def test_it_reads_confidence_as_a_number(rich, write, text, stored):
    import_labels(rich, write("labels.csv", labels(("q1", "bob", "human", "pref", "A", "", text))))

    assert current(rich, "q1", "bob").confidences == {"pref": stored}


def test_it_leaves_an_empty_confidence_out(rich, write):
    import_labels(rich, write("labels.csv", labels(("q1", "bob", "human", "pref", "A", "", ""))))

    assert current(rich, "q1", "bob").confidences == {}


# --update ---------------------------------------------------------------------------------


@pytest.fixture
def labelled(rich, write):
    import_labels(
        rich,
        write(
            "first.csv",
            labels(
                ("q1", "bob", "human", "pref", "A", "", "", "first thoughts"),
                ("q1", "gpt-4o", "llm", "pref", "A", "AB"),
                ("q1", "gpt-4o", "llm", "pref", "B", "BA"),
            ),
        ),
    )
    return rich


def test_it_refuses_to_label_again_without_update(labelled, write):
    path = write(
        "again.csv",
        labels(
            ("q2", "zed", "human", "pref", "B"),
            ("q1", "bob", "human", "pref", "B"),
            ("q1", "bob", "human", "why", "changed my mind"),
        ),
    )

    assert_refused(
        labelled,
        path,
        f"{path}:3: \"item\" 'bob' already labelled this item (use --update to replace the label)",
    )

    assert not Rater.objects.filter(name="zed").exists()
    assert not User.objects.filter(username="zed").exists()


def test_a_label_given_before_undoes_the_batches_written_ahead_of_it(
    labelled, write, one_row_batches
):
    # Labels are written by item, kind and rater: amy's new label goes in before bob's.
    path = write(
        "again.csv",
        labels(("q1", "bob", "human", "pref", "B"), ("q1", "amy", "human", "pref", "A")),
    )

    assert_refused(
        labelled,
        path,
        f"{path}:2: \"item\" 'bob' already labelled this item (use --update to replace the label)",
    )


def test_it_names_the_order_of_a_pairwise_label_given_before(labelled, write):
    path = write("again.csv", labels(("q1", "gpt-4o", "llm", "pref", "tie", "BA")))

    assert_refused(
        labelled,
        path,
        f"{path}:2: \"item\" 'gpt-4o' already labelled this item in order BA "
        "(use --update to replace the label)",
    )


def test_it_replaces_a_label_on_update_and_keeps_the_old_one_as_history(labelled, write):
    old = current(labelled, "q1", "bob")
    path = write(
        "again.csv",
        labels(
            ("q1", "bob", "human", "pref", "B", "", "0.5"),
            ("q1", "gpt-4o", "llm", "pref", "tie", "BA"),
            ("q2", "bob", "human", "pref", "A"),
        ),
    )

    output = run_import("rich", path, "--update")

    assert output.strip() == "Imported 1 new and 2 replaced labels into 'rich'."
    old.refresh_from_db()
    assert old.is_current is False
    assert old.answers == {"pref": "A"}
    assert old.rationales == {"pref": "first thoughts"}
    new = current(labelled, "q1", "bob")
    assert new.pk != old.pk
    assert new.answers == {"pref": "B"}
    assert new.confidences == {"pref": 0.5}
    assert current(labelled, "q1", "gpt-4o", "BA").answers == {"pref": "tie"}
    assert current(labelled, "q1", "gpt-4o", "AB").answers == {"pref": "A"}
    history = Annotation.objects.filter(item__external_id="q1", rater__name="bob")
    assert sorted(history.values_list("is_current", flat=True)) == [False, True]
    assert Annotation.objects.of_study(labelled).current().count() == 4


# Bad input: each error names file, line and field, and the study stays as it was -------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("q9", "bob", "human", "pref", "A"), "\"item\" 'q9' is not an item of this study"),
        (("", "bob", "human", "pref", "A"), "\"item\" '' is not an item of this study"),
        (
            ("q1", "bob", "human", "style", "A"),
            "\"question\" unknown question 'style'; the rubric has 'pref', 'quality', 'check', "
            "'tick', 'correct', 'codes' or 'why'",
        ),
        (
            ("q1", "bob", "human", "check", "yes"),
            '"question" checklist answers are written check[i] with i from 0 to 1',
        ),
        (
            ("q2", "bob", "human", "tick[1]", "yes"),
            '"question" checklist answers are written tick[i] with i from 0 to 0',
        ),
        (
            ("q1", "bob", "human", "quality[0]", "3"),
            "\"question\" question 'quality' is not a checklist; write it as 'quality'",
        ),
        (
            ("q1", "bob", "human", "pref.strength", "2"),
            "\"question\" question 'pref' has no strength scale in this rubric; "
            "write its answer as 'pref'",
        ),
        (("q1", "bob", "human", "pref", "C"), "\"value\" expected one of 'A', 'B' or 'tie'"),
        (("q1", "bob", "human", "pref", "unable"), "\"value\" expected one of 'A', 'B' or 'tie'"),
        (("q1", "bob", "human", "quality", "6"), '"value" expected an integer 1..5'),
        (("q1", "bob", "human", "quality", "4.0"), '"value" expected an integer 1..5'),
        (
            ("q1", "bob", "human", "check[0]", "maybe"),
            "\"value\" expected one of 'yes', 'no' or 'na'",
        ),
        (
            ("q1", "bob", "human", "correct", "na"),
            "\"value\" expected one of 'yes', 'no' or 'unable'",
        ),
        (("q1", "bob", "human", "codes", "x;w"), "\"value\" expected choices from 'x', 'y' or 'z'"),
        (("q1", "bob", "human", "codes", "y;y"), '"value" names a choice twice'),
        (("q1", "bob", "robot", "pref", "A"), "\"kind\" expected 'human' or 'llm'"),
        (("q1", "bob", "Human", "pref", "A"), "\"kind\" expected 'human' or 'llm'"),
        (("q1", "bob", "human", "pref", "A", "ab"), "\"order\" expected 'AB', 'BA' or empty"),
        (("q1", "bob", "human", "pref", "A", "AB "), "\"order\" expected 'AB', 'BA' or empty"),
        (("q1", "", "human", "pref", "A"), '"rater" must be a name of 1 to 150 characters'),
        (("q1", "j" * 151, "llm", "pref", "A"), '"rater" must be a name of 1 to 150 characters'),
        (
            ("q1", "bob smith", "human", "pref", "A"),
            '"rater" human rater names may hold letters, digits and @ . + - _ only',
        ),
        (("q1", "bob", "human", "pref", "A", "", "high"), '"confidence" must be a number or empty'),
        (("q1", "bob", "human", "pref", "A", "", "nan"), '"confidence" must be a number or empty'),
        (("q1", "bob", "human", "pref", "A", "", "inf"), '"confidence" must be a number or empty'),
    ],
)
def test_it_refuses_a_bad_row(labelled, write, row, message):
    path = write("labels.csv", labels(("q2", "bob", "human", "pref", "A"), row))

    assert_refused(labelled, path, f"{path}:3: {message}")


def test_it_accepts_an_llm_name_a_username_could_not_hold(rich, write):
    path = write("labels.csv", labels(("q1", "GPT 4o (2024-08)", "llm", "pref", "A", "AB")))

    import_labels(rich, path)

    assert current(rich, "q1", "GPT 4o (2024-08)", "AB").answers == {"pref": "A"}


@pytest.mark.parametrize("batch_size", [imports.BATCH_SIZE, 1])  # 1: in another batch
def test_it_refuses_a_row_given_twice_naming_both_lines(rich, write, monkeypatch, batch_size):
    monkeypatch.setattr(imports, "BATCH_SIZE", batch_size)
    path = write(
        "labels.csv",
        labels(
            ("q1", "bob", "human", "pref", "A"),
            ("q1", "bob", "human", "why", "short"),
            ("q1", "bob", "human", "pref", "B"),
        ),
    )

    assert_refused(
        rich, path, f"{path}:4: \"question\" 'pref' of 'q1' by 'bob' is already on line 2"
    )


def test_it_allows_the_same_question_in_both_orders_and_for_both_kinds(rich, write):
    path = write(
        "labels.csv",
        labels(
            ("q1", "gpt-4o", "llm", "pref", "A", "AB"),
            ("q1", "gpt-4o", "llm", "pref", "A", "BA"),
            ("q1", "gpt-4o", "llm", "pref", "A"),
        ),
    )

    import_labels(rich, path)

    assert Annotation.objects.of_study(rich).count() == 3


def test_it_refuses_a_duplicate_row_in_the_same_order(rich, write):
    path = write(
        "labels.csv",
        labels(
            ("q1", "gpt-4o", "llm", "pref", "A", "BA"),
            ("q1", "gpt-4o", "llm", "pref", "B", "AB"),
            ("q1", "gpt-4o", "llm", "pref", "B", "BA"),
        ),
    )

    assert_refused(
        rich, path, f"{path}:4: \"question\" 'pref' of 'q1' by 'gpt-4o' is already on line 2"
    )


def test_it_keeps_line_numbers_right_after_a_multi_line_rationale(rich, write):
    path = write(
        "labels.csv",
        labels(
            ("q1", "bob", "human", "pref", "A", "", "", 'Line one,\n"quoted" line two\nline three'),
            ("q1", "bob", "human", "why", "fine"),
            ("q2", "bob", "human", "pref", "C"),
        ),
    )

    assert path.read_text().count("\n") == 6
    assert_refused(rich, path, f"{path}:6: \"value\" expected one of 'A', 'B' or 'tie'")


def test_it_keeps_a_multi_line_rationale_intact(rich, write):
    rationale = 'Line one,\n"quoted" line two\r\nline three'
    path = write("labels.csv", labels(("q1", "bob", "human", "pref", "A", "", "", rationale)))

    import_labels(rich, path)

    assert current(rich, "q1", "bob").rationales == {"pref": rationale}


def test_it_reads_a_csv_with_a_byte_order_mark_and_crlf(rich, write):
    text = labels(
        ("q1", "bob", "human", "pref", "B", "", "0.5", "שלום, عالم 👋"),
        ("q1", "bob", "human", "why", "multi\r\nline"),
        newline="\r\n",
    )
    path = write("labels.csv", "\ufeff".encode() + text.encode())

    import_labels(rich, path)

    label = current(rich, "q1", "bob")
    assert label.answers == {"pref": "B", "why": "multi\r\nline"}
    assert label.confidences == {"pref": 0.5}
    assert label.rationales == {"pref": "שלום, عالم 👋"}


def test_it_reads_the_columns_in_any_order(rich, write):
    path = write("labels.csv", "value,question,rater,item,kind\nB,pref,bob,q1,human\n")

    import_labels(rich, path)

    assert current(rich, "q1", "bob").answers == {"pref": "B"}


def test_it_skips_blank_lines_but_counts_them(rich, write):
    path = write(
        "labels.csv",
        labels(("q1", "bob", "human", "pref", "A")) + "\n\n" + "q2,bob,human,pref,C,,,\n",
    )

    assert_refused(rich, path, f"{path}:5: \"value\" expected one of 'A', 'B' or 'tie'")


@pytest.mark.parametrize("missing", ["item", "rater", "question", "value"])
def test_it_refuses_a_csv_without_a_required_column(rich, write, missing):
    header = [c for c in LABEL_COLUMNS if c != missing]
    path = write("labels.csv", ",".join(header) + "\n")

    assert_refused(
        rich,
        path,
        f'{path}:1: "{missing}" is a required column; the header has {", ".join(header)}',
    )


def test_it_refuses_an_unknown_column(rich, write):
    path = write("labels.csv", "item,rater,question,value,score\nq1,bob,pref,A,1\n")

    assert_refused(
        rich,
        path,
        f'{path}:1: "score" is not a column of this format ({", ".join(LABEL_COLUMNS)})',
    )


def test_it_refuses_a_column_named_twice(rich, write):
    path = write("labels.csv", "item,rater,question,value,value\nq1,bob,pref,A,B\n")

    assert_refused(rich, path, f"{path}:1: the header names a column twice")


@pytest.mark.parametrize("row", ["q1,bob,human,pref,A,,", "q1,bob,human,pref,A,,,,"])
def test_it_refuses_a_row_with_the_wrong_number_of_fields(rich, write, row):
    path = write("labels.csv", labels(("q2", "bob", "human", "pref", "A")) + row + "\n")
    n = row.count(",") + 1

    assert_refused(rich, path, f"{path}:3: has {n} fields; the header has 8")


def test_it_refuses_a_broken_quote(rich, write):
    path = write("labels.csv", labels(("q2", "bob", "human", "pref", "A")) + 'q1,bob,"hu"man\n')

    before = snapshot(rich)
    errors = import_errors(rich, path)

    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:3: is not valid CSV: ")
    assert snapshot(rich) == before


def test_it_refuses_a_file_that_is_not_utf8(rich, write):
    path = write(
        "labels.csv", labels(("q1", "bob", "human", "why", "ok")).encode() + b"q2,b\xe9b\n"
    )

    assert_refused(rich, path, f"{path}:3: is not valid UTF-8 (byte 5 of the line)")


@pytest.mark.parametrize(
    "content", ["", "item,rater,kind,question,value,order,confidence,rationale\n"]
)
def test_it_refuses_a_file_without_labels(rich, write, content):
    path = write("labels.csv", content)

    assert_refused(rich, path, f"{path}: holds no labels")


def test_it_reports_every_bad_row_at_once(rich, write):
    path = write(
        "labels.csv",
        labels(
            ("q9", "bob", "human", "pref", "A"),
            ("q1", "bob", "human", "pref", "A"),
            ("q1", "bob", "human", "quality", "9"),
            ("q1", "bob", "alien", "pref", "A"),
        ),
    )

    errors = assert_refused(rich, path, f"{path}:2: \"item\" 'q9' is not an item of this study")

    assert errors == [
        f"{path}:2: \"item\" 'q9' is not an item of this study",
        f'{path}:4: "value" expected an integer 1..5',
        f"{path}:5: \"kind\" expected 'human' or 'llm'",
    ]


def test_it_refuses_a_nul_character_with_a_file_line_error(rich, write):
    """PostgreSQL text and jsonb cannot hold U+0000, so no backend should take it."""
    path = write("labels.csv", labels(("q1", "bob", "human", "why", "before\u0000after")))

    before = snapshot(rich)
    errors = import_errors(rich, path)

    assert errors[0].startswith(f"{path}:2: ")
    assert snapshot(rich) == before


# Strength of a preference: a cell of its own, beside its pairwise answer ------------------

STRENGTH_RUBRIC = {
    "name": "Preference with strength",
    "questions": [
        {"key": "overall", "type": "pairwise", "strength": ["a bit", "clearly", "far"]},
        {"key": "quality", "type": "likert", "scale": 5},
    ],
}


@pytest.fixture
def preferring(db, write):
    study = make_study("preferring", rubric=STRENGTH_RUBRIC)
    import_items(study, write("items.jsonl", "".join(json.dumps(i) + "\n" for i in ITEMS)))
    return study


def test_it_imports_a_strength_with_its_pairwise_answer_in_any_row_order(preferring, write):
    path = write(
        "labels.csv",
        labels(
            ("q1", "bob", "human", "overall.strength", "3", "BA"),
            ("q1", "bob", "human", "quality", "4"),
            ("q1", "bob", "human", "overall", "B", "BA", "", "B is kinder"),
            ("q2", "bob", "human", "overall", "A"),
            ("q2", "gpt-4o", "llm", "overall", "tie", "AB"),
        ),
    )

    import_labels(preferring, path)

    assert current(preferring, "q1", "bob", "BA").answers == {"overall": "B", "overall.strength": 3}
    assert current(preferring, "q1", "bob", "BA").rationales == {"overall": "B is kinder"}
    assert current(preferring, "q1", "bob").answers == {"quality": 4}
    # Imports require no question, the strength included: a label file may hold a part.
    assert current(preferring, "q2", "bob").answers == {"overall": "A"}
    assert current(preferring, "q2", "gpt-4o", "AB").answers == {"overall": "tie"}


@pytest.mark.parametrize(
    ("answer", "strength", "message"),
    [
        (
            ("q1", "bob", "human", "overall", "tie"),
            ("q1", "bob", "human", "overall.strength", "1"),
            "a strength goes only with an answer naming a response; 'overall' is 'tie'",
        ),
        (
            # A label is one rater's answers to an item in one order: AB here, none there.
            ("q1", "bob", "human", "overall", "A", "AB"),
            ("q1", "bob", "human", "overall.strength", "1"),
            "a strength goes only with an answer naming a response; 'overall' has no answer",
        ),
        (
            ("q2", "bob", "human", "overall", "B"),
            ("q1", "bob", "human", "overall.strength", "1"),
            "a strength goes only with an answer naming a response; 'overall' has no answer",
        ),
    ],
)
def test_it_refuses_a_strength_without_an_answer_naming_a_response(
    preferring, write, answer, strength, message
):
    path = write("labels.csv", labels(strength, answer))

    errors = assert_refused(preferring, path, f'{path}:2: "question" {message}')

    assert errors == [f'{path}:2: "question" {message}']


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("q1", "bob", "human", "overall.strength", "4"),
            "expected an integer 1..3 (1 'a bit' to 3 'far')",
        ),
        (
            ("q1", "bob", "human", "overall.strength", "unable"),
            "expected an integer 1..3 (1 'a bit' to 3 'far')",
        ),
    ],
)
def test_it_refuses_a_strength_outside_the_scale(preferring, write, row, message):
    path = write("labels.csv", labels(("q1", "bob", "human", "overall", "A"), row))

    assert_refused(preferring, path, f'{path}:3: "value" {message}')


def test_it_refuses_a_strength_for_a_question_without_a_strength_scale(preferring, write):
    path = write(
        "labels.csv",
        labels(
            ("q1", "bob", "human", "quality", "4"), ("q1", "bob", "human", "quality.strength", "1")
        ),
    )

    assert_refused(
        preferring,
        path,
        f"{path}:3: \"question\" question 'quality' has no strength scale in this rubric; "
        "write its answer as 'quality'",
    )


# Through the command ----------------------------------------------------------------------


def test_the_command_fails_with_the_file_line_message_and_imports_nothing(labelled, write):
    path = write(
        "labels.csv",
        labels(("q2", "bob", "human", "pref", "A"), ("q2", "gpt-4o", "llm", "pref", "X", "AB")),
    )
    before = snapshot(labelled)

    with pytest.raises(CommandError) as excinfo:
        run_import("rich", path)

    assert str(excinfo.value) == (
        f"nothing was imported.\n{path}:3: \"value\" expected one of 'A', 'B' or 'tie'"
    )
    assert snapshot(labelled) == before


def test_the_command_names_a_missing_file(rich, tmp_path):
    path = tmp_path / "nope.csv"

    with pytest.raises(CommandError, match="No such file or directory") as excinfo:
        run_import("rich", path)

    assert str(excinfo.value).startswith(f"{path}: ")


def test_the_command_names_an_unknown_study(rich, write):
    path = write("labels.csv", labels(("q1", "bob", "human", "pref", "A")))

    with pytest.raises(CommandError) as excinfo:
        run_import("nope", path)

    assert str(excinfo.value) == "no study with slug 'nope'"
    assert not Annotation.objects.exists()
