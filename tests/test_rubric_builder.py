"""The rubric builder: every problem of a definition at once with its line, the labelling
page's live preview, editing in place until labels lock a version, and a rubric without
questions refused by the model, the admin and the builder alike."""

import json

import pytest
from conftest import PAIRWISE_RUBRIC, make_user
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from annotation.models import Annotation, Rater, Rubric, StudyMembership
from annotation.rubrics import text_problems

pytestmark = pytest.mark.django_db

THREE_PROBLEMS = """{
  "name": "Broken",
  "questions": [
    {"key": "pref", "type": "pairwise"},
    {"key": "Bad Key", "type": "likert",
     "scale": 1},
    {"key": "pref", "type": "binary",
     "colour": "red"}
  ]
}"""


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_it_lists_every_problem_with_the_line_it_is_on():
    problems = text_problems(THREE_PROBLEMS)
    assert [(p["line"], p["path"]) for p in problems] == [
        (5, "questions[1].key"),
        (6, "questions[1].scale"),
        (8, "questions[2].colour"),
        (7, "questions[2].key"),
    ]
    assert "from 2 to 100" in problems[1]["message"]
    assert "used twice" in problems[3]["message"]


def test_a_missing_field_points_at_the_object_that_lacks_it():
    text = '{\n  "name": "x",\n  "questions": [\n    {"key": "q", "type": "likert"}\n  ]\n}'
    assert text_problems(text) == [
        {"line": 4, "path": "questions[0].scale", "message": text_problems(text)[0]["message"]}
    ]


def test_a_json_syntax_error_names_its_line():
    (problem,) = text_problems('{\n  "name": "x",\n  "questions": [\n}')
    assert problem["line"] == 4 and problem["message"].startswith("not JSON")


def test_the_builder_previews_the_labelling_page_with_the_studys_questions(alice, study):
    response = signed_in(alice).get(f"/studies/{study.slug}/rubric/")
    assert response.status_code == 200
    preview = str(response.context["preview"])
    assert "Which is better?" in preview and 'name="q:pref"' in preview
    assert "A sample prompt" in preview  # the study has no items yet


def test_the_preview_endpoint_renders_an_unsaved_definition_or_its_problems(alice, study):
    client = signed_in(alice)
    likert = {
        "name": "L",
        "questions": [
            {"key": "q", "type": "likert", "scale": 5, "prompt": "How <b>good</b>?"},
            {"key": "c", "type": "checklist", "items": ["Is it polite?"]},
        ],
    }
    answer = client.post(
        f"/studies/{study.slug}/rubric/preview/", {"definition": json.dumps(likert)}
    ).json()
    assert "How &lt;b&gt;good&lt;/b&gt;?" in answer["html"]
    assert "Is it polite?" in answer["html"]
    answer = client.post(
        f"/studies/{study.slug}/rubric/preview/", {"definition": THREE_PROBLEMS}
    ).json()
    assert [p["line"] for p in answer["problems"]] == [5, 6, 8, 7]
    assert study.rubric.versions.count() == 1


def test_saving_edits_the_unlabelled_version_in_place(alice, study):
    edited = {**PAIRWISE_RUBRIC, "questions": PAIRWISE_RUBRIC["questions"][:1]}
    response = signed_in(alice).post(
        f"/studies/{study.slug}/rubric/", {"definition": json.dumps(edited)}
    )
    assert response.status_code == 302
    assert study.rubric.versions.count() == 1
    assert study.rubric.definition == edited
    assert study.changes.get(what="questions").after == "edited (no labels)"


def test_saving_after_labels_makes_a_new_version_shown_as_a_diff(alice, bob, study):
    version = study.rubric_version
    item = study.items.create(
        external_id="i1",
        position=1,
        prompt="p",
        responses=[
            {"key": "A", "text": "a", "model": "m"},
            {"key": "B", "text": "b", "model": "n"},
        ],
    )
    rater = Rater.objects.create(kind="human", name="bob", user=bob)
    Annotation.objects.create(
        item=item, rater=rater, rubric_version=version, answers={"pref": "A"}, source="ui"
    )
    edited = json.loads(json.dumps(PAIRWISE_RUBRIC))
    edited["questions"][0]["prompt"] = "Which response is more helpful?"
    client = signed_in(alice)
    client.post(f"/studies/{study.slug}/rubric/", {"definition": json.dumps(edited)})
    assert [v.number for v in study.rubric.versions.order_by("number")] == [1, 2]
    assert (study.changes.get(what="questions").before, study.changes.get().after) == ("v1", "v2")
    version.refresh_from_db()
    assert version.definition == PAIRWISE_RUBRIC  # the labelled version is untouched
    page = client.get(f"/studies/{study.slug}/rubric/")
    newest = page.context["versions"][0]
    assert newest["version"].number == 2 and newest["labels"] == 0
    assert '+      "prompt": "Which response is more helpful?",' in newest["diff"]
    assert page.context["versions"][1]["labels"] == 1


def test_a_bad_definition_is_shown_with_every_problem_beside_its_line(alice, study):
    response = signed_in(alice).post(
        f"/studies/{study.slug}/rubric/", {"definition": THREE_PROBLEMS}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert body.count('class="field-error">line ') == 4
    assert "line 6: questions[1].scale: must be an integer from 2 to 100" in body
    assert study.rubric.definition == PAIRWISE_RUBRIC


def test_the_builder_refuses_a_rubric_without_questions(alice, study):
    empty = json.dumps({"name": "Empty", "questions": []})
    response = signed_in(alice).post(f"/studies/{study.slug}/rubric/", {"definition": empty})
    assert response.status_code == 400 and b"non-empty list" in response.content
    assert study.rubric.definition == PAIRWISE_RUBRIC


def test_the_admin_refuses_a_rubric_without_questions_and_saves_one_with(db):
    admin = User.objects.create_superuser("root", password="pw-for-tests-only")
    client = signed_in(admin)
    response = client.post("/admin/annotation/rubric/add/", {"name": "Empty"})
    assert response.status_code == 200 and b"This field is required" in response.content
    response = client.post(
        "/admin/annotation/rubric/add/",
        {"name": "Empty", "definition": json.dumps({"name": "Empty", "questions": []})},
    )
    assert response.status_code == 200 and b"non-empty list" in response.content
    assert not Rubric.objects.exists()
    inline = {"versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0"}
    response = client.post(
        "/admin/annotation/rubric/add/",
        {"name": "Pairwise", "definition": json.dumps(PAIRWISE_RUBRIC), **inline},
    )
    assert response.status_code == 302
    (rubric,) = Rubric.objects.all()
    assert rubric.versions.get().definition == PAIRWISE_RUBRIC


def test_only_admins_of_the_study_edit_its_questions(study):
    researcher = make_user("rita", StudyMembership.Role.RESEARCHER, study)
    client = signed_in(researcher)
    assert client.get(f"/studies/{study.slug}/rubric/").status_code == 404
    empty = json.dumps(PAIRWISE_RUBRIC)
    assert client.post(f"/studies/{study.slug}/rubric/", {"definition": empty}).status_code == 404


def test_the_report_splits_by_rubric_version(alice, study, tmp_path):
    v1 = study.rubric_version
    v2 = study.rubric.revise({**PAIRWISE_RUBRIC, "name": "Pairwise v2"})
    for n, (version, raters) in enumerate(((v1, "hij"), (v2, "kl")), 1):
        item = study.items.create(
            external_id=f"i{n}",
            position=n,
            prompt="p",
            responses=[
                {"key": "A", "text": "a", "model": "m"},
                {"key": "B", "text": "b", "model": "n"},
            ],
        )
        for name in raters:
            user = make_user(name)
            rater = Rater.objects.create(kind="human", name=name, user=user)
            Annotation.objects.create(
                item=item, rater=rater, rubric_version=version, answers={"pref": "A"}, source="ui"
            )
    client = signed_in(alice)

    def labels(query):
        report = client.get(f"/studies/{study.slug}/report/?format=json{query}").json()
        return report["questions"][0]["humans"]["n_labels"], report.get("rubric_version")

    assert labels("") == (5, None)
    assert labels("&version=1") == (3, 1)
    assert labels("&version=2") == (2, 2)
    assert client.get(f"/studies/{study.slug}/report/?version=3").status_code == 404
    page = client.get(f"/studies/{study.slug}/report/?version=1").content.decode()
    assert 'id="report-versions"' in page and "rubric v1" in page

    out = tmp_path / "r.json"
    call_command("report", study.slug, "--rubric-version", "2", "--bootstrap", "0", "--out", out)
    assert json.loads(out.read_text())["questions"][0]["humans"]["n_labels"] == 2
    with pytest.raises(CommandError, match="no rubric version 7; it has 1, 2"):
        call_command("report", study.slug, "--rubric-version", "7")


@pytest.mark.parametrize("missing", ["name", "questions"])
def test_a_missing_top_level_field_is_on_line_1(missing):
    data = {"name": "x", "questions": [{"key": "q", "type": "text"}]}
    del data[missing]
    (problem,) = text_problems(json.dumps(data, indent=2))
    assert problem["line"] == 1 and problem["path"] == missing


def test_an_open_studys_questions_change_in_a_new_version_even_without_labels(alice, study):
    study.items.create(
        external_id="i1",
        position=1,
        prompt="p",
        responses=[{"key": "A", "text": "a"}, {"key": "B", "text": "b"}],
    )
    study.change_status("open", alice)
    edited = {**PAIRWISE_RUBRIC, "name": "Edited"}
    signed_in(alice).post(f"/studies/{study.slug}/rubric/", {"definition": json.dumps(edited)})
    assert [v.definition["name"] for v in study.rubric.versions.order_by("number")] == [
        "Pairwise",
        "Edited",
    ]


def test_an_edit_that_strands_the_items_gold_answers_is_refused(alice, study):
    study.items.create(
        external_id="g1",
        position=1,
        prompt="p",
        responses=[{"key": "A", "text": "a"}, {"key": "B", "text": "b"}],
        is_gold=True,
        gold_answers={"pref": "A"},
    )
    likert = {"name": "L", "questions": [{"key": "score", "type": "likert", "scale": 5}]}
    response = signed_in(alice).post(
        f"/studies/{study.slug}/rubric/", {"definition": json.dumps(likert)}
    )
    assert response.status_code == 400
    assert "items would not fit: item g1: gold:" in response.content.decode()
    assert study.rubric.definition == PAIRWISE_RUBRIC
