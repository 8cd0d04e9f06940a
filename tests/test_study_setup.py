"""Setting a study up in the browser's pages: new study, settings with their audit log,
clone, archive, the lifecycle's guard rails, and the done page's return link."""

import io
import uuid

import pytest
from conftest import make_study, make_user
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from annotation.assignment import next_item, submit
from annotation.forms import StudyForm, settings_of
from annotation.models import Item, Rubric, Study, StudyChange, StudyMembership
from calibration.reports import build_report

pytestmark = pytest.mark.django_db

SETTINGS = {
    "name": "Helpfulness",
    "instructions": "Pick the *more helpful* answer.",
    "overlap": "3",
    "items_per_annotator": "0",
    "randomise_order": "on",
    "hide_model_names": "on",
    "reservation_minutes": "30",
    "gold_rate": "0",
    "qualification_gold_items": "0",
    "qualification_accuracy": "0.8",
    "gold_pause_below": "0",
    "speeder_share": "0.3",
    "straight_line_share": "0.9",
    "completion_code": "C0DE42",
    "return_url": "https://app.prolific.com/submissions/complete?cc=C0DE42",
    "worker_id_param": "PROLIFIC_PID",
    "rule_no_majority": "on",
    "rule_low_agreement": "0.7",
}


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def add_item(study, n=1):
    return Item.objects.create(
        study=study,
        external_id=f"i{n}",
        position=n,
        prompt="p",
        responses=[
            {"key": "A", "text": "a", "model": "m"},
            {"key": "B", "text": "b", "model": "n"},
        ],
    )


@pytest.fixture
def staff(db):
    return User.objects.create_user("dana", password="pw-for-tests-only", is_staff=True)


def test_it_creates_a_study_from_the_form_with_its_creator_as_admin(staff):
    response = signed_in(staff).post(
        "/studies/new/", {**SETTINGS, "slug": "helpful", "starter": "likert"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/studies/helpful/rubric/"
    study = Study.objects.get(slug="helpful")
    assert study.status == Study.Status.DRAFT
    assert study.routing_rules["low_agreement"] == 0.7
    assert study.routing_rules["no_majority"] is True
    assert study.routing_rules["gold_miss"] is False
    assert study.worker_id_param == "PROLIFIC_PID"
    assert study.rubric_version.parsed.questions[0].type == "likert"
    assert study.role_of(staff) == StudyMembership.Role.ADMIN
    assert StudyChange.objects.filter(study=study, what="created").exists()


def test_it_shows_each_bad_field_with_its_message_and_saves_nothing(staff):
    bad = {
        **SETTINGS,
        "slug": "new",
        "overlap": "0",
        "gold_rate": "1.5",
        "return_url": "not a url",
        "rule_low_agreement": "2",
    }
    response = signed_in(staff).post("/studies/new/", bad)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) >= {"slug", "overlap", "gold_rate", "return_url", "rule_low_agreement"}
    body = response.content.decode()
    assert "reserved" in body and 'id="id_gold_rate-error"' in body
    assert not Study.objects.exists()


def test_it_refuses_the_new_study_page_to_people_who_cannot_start_studies(db):
    annotator = make_user("bob", StudyMembership.Role.ANNOTATOR, make_study())
    assert signed_in(annotator).get("/studies/new/").status_code == 404


def test_it_logs_every_changed_setting_on_the_study_page(alice, study):
    client = signed_in(alice)
    response = client.post(f"/studies/{study.slug}/settings/", {**SETTINGS, "overlap": "5"})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.overlap == 5 and study.name == "Helpfulness"
    changes = {c.what: (c.before, c.after) for c in study.changes.all()}
    assert changes["overlap"] == ("3", "5")
    assert changes["name"] == ("s1", "Helpfulness")
    assert "slug" not in changes
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert 'id="changes"' in page and "overlap" in page


def test_a_closed_study_keeps_its_settings(alice, study):
    add_item(study)
    study.change_status("open", alice)
    study.change_status("closed", alice)
    response = signed_in(alice).post(f"/studies/{study.slug}/settings/", SETTINGS)
    assert response.status_code == 200 and b"can no longer change" in response.content
    study.refresh_from_db()
    assert study.name == "s1"


def test_it_clones_settings_and_questions_but_not_items_labels_or_secrets(alice, study):
    add_item(study)
    study.overlap = 4
    study.save()
    response = signed_in(alice).post(f"/studies/{study.slug}/clone/")
    copy = Study.objects.get(slug="s1-copy")
    assert response["Location"] == "/studies/s1-copy/settings/"
    assert copy.overlap == 4 and copy.status == Study.Status.DRAFT
    assert copy.items.count() == 0
    assert copy.rubric_id != study.rubric_id
    assert copy.rubric.definition == study.rubric.definition
    assert copy.join_token != study.join_token
    assert copy.completion_code != study.completion_code
    assert copy.role_of(alice) == StudyMembership.Role.ADMIN
    signed_in(alice).post(f"/studies/{study.slug}/clone/")
    assert Study.objects.filter(slug="s1-copy-2").exists()


def test_it_archives_and_lists_archived_studies_apart(alice, study):
    client = signed_in(alice)
    client.post(f"/studies/{study.slug}/archive/", {"archived": "yes"})
    study.refresh_from_db()
    assert study.archived_at is not None
    home = client.get("/")
    assert home.context["active"] == [] and len(home.context["archived"]) == 1
    client.post(f"/studies/{study.slug}/archive/", {"archived": "no"})
    study.refresh_from_db()
    assert study.archived_at is None


def test_the_home_page_shows_progress_and_queue_to_researchers_only(alice, bob, study):
    add_item(study)
    row = signed_in(alice).get("/").context["active"][0]
    assert row["progress"]["items"] == 1 and row["queue_open"] == 0
    assert "progress" not in signed_in(bob).get("/").context["active"][0]


def test_a_study_cannot_open_without_items(alice, study):
    client = signed_in(alice)
    response = client.post(f"/studies/{study.slug}/status/", {"status": "open"})
    assert response.status_code == 400 and b"upload its items" in response.content
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT


def test_the_lifecycle_runs_draft_open_paused_closed_with_confirmation(alice, study):
    add_item(study)
    client = signed_in(alice)
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert "hand out nothing until it is opened" in page and 'id="open-study"' in page
    assert client.post(f"/studies/{study.slug}/status/", {"status": "open"}).status_code == 302
    client.post(f"/studies/{study.slug}/status/", {"status": "paused"})
    study.refresh_from_db()
    assert study.status == Study.Status.PAUSED
    asked = client.post(f"/studies/{study.slug}/status/", {"status": "closed"})
    assert asked.status_code == 200 and b"cannot be undone" in asked.content
    study.refresh_from_db()
    assert study.status == Study.Status.PAUSED
    client.post(f"/studies/{study.slug}/status/", {"status": "closed", "confirm": "yes"})
    study.refresh_from_db()
    assert study.status == Study.Status.CLOSED
    reopen = client.post(f"/studies/{study.slug}/status/", {"status": "open"})
    assert reopen.status_code == 400
    assert [c.after for c in study.changes.filter(what="status").order_by("at")] == [
        "open",
        "paused",
        "closed",
    ]


def test_a_researcher_cannot_change_the_setup(study):
    researcher = make_user("rita", StudyMembership.Role.RESEARCHER, study)
    client = signed_in(researcher)
    assert client.get(f"/studies/{study.slug}/settings/").status_code == 404
    assert client.post(f"/studies/{study.slug}/status/", {"status": "open"}).status_code == 404


def test_the_instructions_preview_is_sanitised(alice):
    response = signed_in(alice).post(
        "/studies/markdown-preview/", {"text": "**bold** <script>alert(1)</script>"}
    )
    html = response.content.decode()
    assert "<strong>bold</strong>" in html and "<script>" not in html


def test_the_done_page_sends_a_finished_worker_back_to_the_platform(alice, bob, study):
    add_item(study)
    study.overlap = 1
    study.return_url = "https://app.prolific.com/submissions/complete?cc=C0DE42"
    study.save()
    study.change_status("open", alice)
    reservation = next_item(study, bob)
    submit(study, bob, reservation.item, {"pref": "A"}, submission_id=uuid.uuid4())
    page = signed_in(bob).get(f"/s/{study.slug}/done/").content.decode()
    assert 'id="completion-code">' + study.completion_code in page
    assert 'href="https://app.prolific.com/submissions/complete?cc=C0DE42"' in page
    assert 'http-equiv="refresh"' in page and "app.prolific.com" in page


def test_a_rubric_without_questions_is_refused_by_the_model(db):
    with pytest.raises(ValidationError, match="needs its questions"):
        Rubric.objects.create(name="empty")
    with pytest.raises(ValueError, match="non-empty list"):
        Rubric.objects.create(name="empty", definition={"name": "empty", "questions": []})
    assert not Rubric.objects.exists()


def test_a_closed_study_takes_no_upload(alice, study):
    add_item(study)
    study.change_status("open", alice)
    study.change_status("closed", alice)
    items = b'{"external_id": "i9", "prompt": "p", "responses": [{"text": "a"}, {"text": "b"}]}\n'
    response = signed_in(alice).post(
        f"/studies/{study.slug}/upload/",
        {"kind": "items", "file": SimpleUploadedFile("items.jsonl", items)},
    )
    assert response.status_code == 400 and b"the study is closed" in response.content
    assert not study.uploads.exists()


def test_the_home_page_shows_the_agreement_of_the_built_report(alice, study, write):
    for n in (1, 2):
        add_item(study, n)
    rows = "".join(
        f"i{n},h{h},human,pref,{'A' if h < 3 or n == 1 else 'B'},AB,,\n"
        for n in (1, 2)
        for h in (1, 2, 3)
    )
    header = "item,rater,kind,question,value,order,confidence,rationale\n"
    call_command("import_labels", study.slug, write("l.csv", header + rows), stdout=io.StringIO())
    client = signed_in(alice)
    assert client.get("/").context["active"][0]["agreement"] is None  # not built yet
    alpha = build_report(study)["report"]["questions"][0]["humans"]["krippendorff_alpha"]
    row = client.get("/").context["active"][0]
    assert row["agreement"] == alpha
    assert f"\u03b1 {alpha:.2f}" in client.get("/").content.decode()  # alpha


def test_saving_settings_keeps_a_status_changed_meanwhile(alice, study):
    add_item(study)
    stale = Study.objects.get(pk=study.pk)  # the settings page's copy, read before the close
    study.change_status("open", alice)
    study.change_status("closed", alice)
    form = StudyForm({**SETTINGS, "overlap": "4"}, instance=stale)
    before = settings_of(stale)
    assert form.is_valid(), form.errors
    stale.save(update_fields=[*Study.SETTINGS])
    assert form.changes(before)
    study.refresh_from_db()
    assert study.status == Study.Status.CLOSED and study.overlap == 4


def test_a_clone_has_no_return_url(alice, study):
    study.return_url = "https://app.prolific.com/submissions/complete?cc=OLD"
    study.save()
    signed_in(alice).post(f"/studies/{study.slug}/clone/")
    assert Study.objects.get(slug="s1-copy").return_url == ""


def test_the_preview_is_for_those_who_set_studies_up_and_capped(alice, bob):
    assert signed_in(bob).post("/studies/markdown-preview/", {"text": "x"}).status_code == 404
    too_long = signed_in(alice).post("/studies/markdown-preview/", {"text": "x" * 100_001})
    assert too_long.status_code == 400


def test_a_new_study_needs_questions_to_start_from(staff):
    response = signed_in(staff).post(
        "/studies/new/", {**SETTINGS, "slug": "helpful", "starter": "nonsense"}
    )
    assert response.status_code == 400
    assert b"Choose the questions the study starts from." in response.content
    assert not Study.objects.exists()
