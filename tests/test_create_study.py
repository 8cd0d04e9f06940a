"""`create_study` and rubric versions: a study starts on version 1; labelled ones never change."""

import io
import json

import pytest
from conftest import DEMO_DIR, PAIRWISE_RUBRIC, demo_rubric
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from annotation.imports import import_items, import_labels
from annotation.models import Annotation, Rubric, RubricVersion, RubricVersionLocked, Study
from annotation.rubrics import RubricError

pytestmark = pytest.mark.django_db

LIKERT_RUBRIC = {
    "name": "Helpfulness",
    "questions": [
        {"key": "quality", "type": "likert", "scale": 5},
        {"key": "why", "type": "text", "required": False},
        {"key": "safe", "type": "binary"},
    ],
}


def create(*args):
    out = io.StringIO()
    call_command("create_study", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def rubric_file(write, definition, name="rubric.json"):
    return write(name, json.dumps(definition))


def nothing_created():
    return not (Study.objects.exists() or Rubric.objects.exists() or RubricVersion.objects.exists())


# create_study -----------------------------------------------------------------------------


def test_it_creates_a_study_on_version_1_of_the_rubric(write):
    path = rubric_file(write, LIKERT_RUBRIC)

    output = create("helpful", "--rubric", str(path))

    assert output.strip() == "Created study 'helpful' (Helpfulness) with 3 questions."
    study = Study.objects.get(slug="helpful")
    assert study.name == "Helpfulness"
    assert study.overlap == 3
    assert study.status == Study.Status.DRAFT
    assert study.rubric.name == "Helpfulness"
    assert study.rubric_version.number == 1
    assert study.rubric_version.definition == LIKERT_RUBRIC
    assert study.rubric_version.parsed.keys == ["quality", "why", "safe"]


def test_it_takes_the_name_overlap_and_items_per_annotator_given(write):
    path = rubric_file(write, LIKERT_RUBRIC)

    output = create(
        "helpful",
        *("--rubric", str(path), "--name", "Helpfulness, round 2", "--overlap", "5"),
        *("--items-per-annotator", "20"),
    )

    assert output.strip() == "Created study 'helpful' (Helpfulness, round 2) with 3 questions."
    study = Study.objects.get(slug="helpful")
    assert study.name == "Helpfulness, round 2"
    assert (study.overlap, study.items_per_annotator) == (5, 20)
    assert study.rubric.name == "Helpfulness"


def test_it_reads_the_demo_rubric(db):
    create("demo", "--rubric", str(DEMO_DIR / "rubric.json"))

    assert Study.objects.get(slug="demo").rubric_version.definition == demo_rubric()


def test_it_reads_a_rubric_file_with_a_byte_order_mark(write):
    path = write("rubric.json", "\ufeff" + json.dumps(LIKERT_RUBRIC, ensure_ascii=False) + "\r\n")

    create("helpful", "--rubric", str(path))

    assert Study.objects.get(slug="helpful").rubric_version.definition == LIKERT_RUBRIC


def test_it_gives_each_study_its_own_rubric(write):
    path = rubric_file(write, LIKERT_RUBRIC)

    create("one", "--rubric", str(path))
    create("two", "--rubric", str(path))

    one, two = Study.objects.order_by("slug")
    assert one.rubric != two.rubric
    assert RubricVersion.objects.count() == 2


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"name": "R", "questions": [{"key": "q", "type": "likert", "scale": 0}]},
            "questions[0].scale: must be an integer from 2 to 100",
        ),
        (
            {
                "name": "R",
                "questions": [{"key": "q", "type": "pairwise"}, {"key": "q", "type": "text"}],
            },
            "questions[1].key: 'q' is used twice",
        ),
        ({"name": "R", "questions": []}, '"questions" must be a non-empty list'),
        ([1, 2], 'the rubric must be a JSON object with "name" and "questions"'),
    ],
)
def test_it_refuses_a_bad_rubric_naming_file_and_field(write, definition, message):
    path = rubric_file(write, definition)

    with pytest.raises(CommandError) as excinfo:
        create("bad", "--rubric", str(path))

    assert str(excinfo.value) == f"{path}: {message}"
    assert nothing_created()


def test_it_refuses_a_rubric_file_that_is_not_json(write):
    path = write("rubric.json", '{"name": "R", "questions": [}')

    with pytest.raises(CommandError) as excinfo:
        create("bad", "--rubric", str(path))

    assert str(excinfo.value).startswith(f"{path}: is not valid JSON: ")
    assert nothing_created()


def test_it_refuses_a_rubric_file_that_is_not_utf8(write):
    path = write("rubric.json", b'{"name": "R\xe9sum\xe9", "questions": []}')

    with pytest.raises(CommandError) as excinfo:
        create("bad", "--rubric", str(path))

    assert str(excinfo.value).startswith(f"{path}: is not valid JSON: ")
    assert nothing_created()


def test_it_names_a_missing_rubric_file(db, tmp_path):
    path = tmp_path / "nope.json"

    with pytest.raises(CommandError) as excinfo:
        create("bad", "--rubric", str(path))

    assert str(excinfo.value) == f"{path}: No such file or directory"
    assert nothing_created()


def test_it_requires_a_rubric(db):
    with pytest.raises(CommandError, match="--rubric"):
        create("bad")

    assert nothing_created()


@pytest.mark.parametrize("overlap", ["0", "-2"])
def test_it_refuses_an_overlap_below_1(write, overlap):
    path = rubric_file(write, LIKERT_RUBRIC)

    with pytest.raises(CommandError, match=r"^--overlap must be at least 1$"):
        create("bad", "--rubric", str(path), "--overlap", overlap)

    assert nothing_created()


def test_it_refuses_a_negative_number_of_items_per_annotator(write):
    path = rubric_file(write, LIKERT_RUBRIC)

    with pytest.raises(CommandError, match="--items-per-annotator must be 0"):
        create("bad", "--rubric", str(path), "--items-per-annotator", "-1")

    assert nothing_created()


def test_it_refuses_a_slug_already_taken(study, write):
    path = rubric_file(write, LIKERT_RUBRIC)

    with pytest.raises(CommandError) as excinfo:
        create("s1", "--rubric", str(path))

    assert str(excinfo.value) == "a study with slug 's1' already exists"

    assert Study.objects.get().rubric_version.definition == PAIRWISE_RUBRIC
    assert Rubric.objects.count() == 1


@pytest.mark.parametrize("slug", ["two words", "ünïcode/slash", "s" * 65])
def test_it_refuses_a_slug_that_study_urls_cannot_hold(write, slug):
    path = rubric_file(write, LIKERT_RUBRIC)

    with pytest.raises(CommandError):
        create(slug, "--rubric", str(path))

    assert nothing_created()


# Rubric versions --------------------------------------------------------------------------


@pytest.fixture
def labelled(study, write):
    import_items(
        study,
        write(
            "items.jsonl",
            json.dumps(
                {
                    "external_id": "q1",
                    "prompt": "p",
                    "responses": [{"key": "A", "text": "a"}, {"key": "B", "text": "b"}],
                }
            )
            + "\n",
        ),
    )
    import_labels(study, write("labels.csv", "item,rater,question,value\nq1,bob,pref,A\n"))
    return study


def revised_definition():
    return {
        **PAIRWISE_RUBRIC,
        "questions": [*PAIRWISE_RUBRIC["questions"], LIKERT_RUBRIC["questions"][0]],
    }


def test_it_records_a_revision_as_the_next_version(study):
    v2 = study.rubric.revise(revised_definition())

    assert v2.number == 2
    assert list(study.rubric.versions.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert Study.objects.get(pk=study.pk).rubric_version == v2
    assert Study.objects.get(pk=study.pk).rubric_version.parsed.keys == ["pref", "why", "quality"]
    assert study.rubric.revise(PAIRWISE_RUBRIC).number == 3


def test_it_refuses_to_record_a_revision_that_does_not_validate(study):
    bad = {"name": "R", "questions": [{"key": "q", "type": "likert"}]}

    with pytest.raises(RubricError, match=r"^questions\[0\]\.scale:"):
        study.rubric.revise(bad)

    assert study.rubric.versions.count() == 1


def test_it_refuses_to_change_a_version_that_has_labels(labelled):
    version = labelled.rubric_version
    version.definition = revised_definition()

    with pytest.raises(RubricVersionLocked, match="has labels"):
        version.save()

    assert RubricVersion.objects.get(pk=version.pk).definition == PAIRWISE_RUBRIC


def test_it_refuses_to_delete_a_version_that_has_labels(labelled):
    version = labelled.rubric_version

    with pytest.raises(RubricVersionLocked):
        version.delete()

    assert RubricVersion.objects.filter(pk=version.pk).exists()


def test_it_lets_a_version_without_labels_change(study):
    version = study.rubric_version
    version.definition = revised_definition()

    version.save()

    assert RubricVersion.objects.get(pk=version.pk).parsed.keys == ["pref", "why", "quality"]


def test_it_never_stores_a_definition_that_does_not_validate(study):
    version = study.rubric_version
    version.definition = {"name": "R", "questions": "none"}

    with pytest.raises(RubricError):
        version.save()

    assert RubricVersion.objects.get(pk=version.pk).definition == PAIRWISE_RUBRIC


def test_it_keeps_one_number_per_version_of_a_rubric(study):
    with pytest.raises(IntegrityError), transaction.atomic():
        RubricVersion.objects.create(rubric=study.rubric, number=1, definition=PAIRWISE_RUBRIC)


def test_it_writes_new_labels_against_the_latest_version_and_keeps_old_ones(labelled, write):
    v1 = labelled.rubric_version
    v2 = labelled.rubric.revise(revised_definition())
    labelled = Study.objects.get(pk=labelled.pk)

    import_labels(labelled, write("more.csv", "item,rater,question,value\nq1,erin,quality,4\n"))

    assert Annotation.objects.get(rater__name="bob").rubric_version == v1
    assert Annotation.objects.get(rater__name="erin").rubric_version == v2
    assert Annotation.objects.get(rater__name="erin").answers == {"quality": 4}
    assert RubricVersion.objects.get(pk=v1.pk).definition == PAIRWISE_RUBRIC
