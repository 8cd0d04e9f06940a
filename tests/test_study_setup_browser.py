"""A new admin sets a study up from nothing in a real browser: a three-question rubric in the
builder (its preview checked), a bad items file refused with its line, a good one imported by
the Celery worker, an annotator invited, the study opened; the annotator labels the first
item, and the admin finds that label in the data browser. Screenshots for the README."""

import subprocess
import sys

import pytest
from conftest import REPO, SCREENSHOTS, subprocess_env
from django.contrib.auth.models import User
from playwright.sync_api import expect

from annotation.models import Annotation, Study

pytestmark = pytest.mark.django_db(transaction=True)

ITEMS = "".join(
    f'{{"external_id": "q{n}", "prompt": "Question {n}?", "responses": [{{"text": "Answer A{n}", '
    f'"model": "m-a"}}, {{"text": "Answer B{n}", "model": "m-b"}}]}}\n'
    for n in (1, 2, 3)
)
BAD_ITEMS = ITEMS + '{"external_id": "q4", "prompt": "No responses"}\n'


@pytest.fixture
def celery_worker(transactional_db, tmp_path_factory):
    """A real `celery worker` process on the test database, for the uploads."""
    log = open(tmp_path_factory.mktemp("worker") / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "quorum", "worker", "--pool=solo"],
        cwd=REPO,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield worker
    worker.terminate()
    worker.wait(timeout=30)
    log.close()


def test_a_new_admin_sets_up_a_study_that_an_invited_annotator_labels(
    asgi_server, celery_worker, page, tmp_path
):
    base = asgi_server
    User.objects.create_user("dana", password="pw-for-tests-only", is_staff=True)
    (tmp_path / "bad.jsonl").write_text(BAD_ITEMS)
    (tmp_path / "items.jsonl").write_text(ITEMS)

    page.goto(base + "/login/")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "pw-for-tests-only")
    page.press("#id_password", "Enter")
    page.click("#new-study")

    # New study: settings, each checked; the first try has a bad overlap.
    page.fill("#id_name", "Helpfulness")
    page.fill("#id_slug", "helpful")
    page.fill("#id_instructions", "Pick the **more helpful** answer.")
    page.wait_for_selector("#instructions-preview strong")
    page.fill("#id_overlap", "0")
    page.click("text=Create study")
    assert "Ensure this value is greater than or equal to 1" in page.inner_text("#id_overlap-error")
    page.fill("#id_overlap", "1")
    page.screenshot(path=str(SCREENSHOTS / "setup-new-study.png"), full_page=True)
    page.click("text=Create study")
    page.wait_for_url(base + "/studies/helpful/rubric/")

    # The rubric builder: the starter's pairwise question, plus a Likert and a checklist.
    page.select_option("#new-question-type", "likert")
    page.click("#add-question")
    card = page.locator(".question-card").nth(2)
    card.get_by_label("Key", exact=True).fill("clarity")
    card.get_by_label("Prompt", exact=True).fill("How clear is the better response?")
    page.select_option("#new-question-type", "checklist")
    page.click("#add-question")
    card = page.locator(".question-card").nth(3)
    card.get_by_label("Key", exact=True).fill("checks")
    card.get_by_label("Rows", exact=True).fill("Is it polite?\nIs it correct?")
    # The "why" text question of the starter goes: three questions remain.
    page.locator(".question-card").nth(1).get_by_role("button", name="Remove").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Is it correct?")
    expect(preview).not_to_contain_text("Why?")
    assert preview.locator("fieldset.question").count() == 4  # pairwise, likert, 2 rows
    assert "How clear is the better response?" in preview.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "setup-rubric-builder.png"), full_page=True)
    page.click("#save-rubric")
    page.wait_for_url(base + "/studies/helpful/rubric/")
    study = Study.objects.get(slug="helpful")
    assert study.rubric_version.parsed.keys == ["preference", "clarity", "checks"]

    # Items: a bad file refused with its line, then the good one.
    page.goto(base + "/studies/helpful/upload/")
    page.set_input_files("#id_file", str(tmp_path / "bad.jsonl"))
    page.click("#upload-button")
    page.click("#import-button")
    page.wait_for_selector("#upload-errors li", timeout=60_000)
    assert "bad.jsonl:4:" in page.inner_text("#upload-errors")
    page.screenshot(path=str(SCREENSHOTS / "setup-upload-error.png"), full_page=True)
    assert study.items.count() == 0
    page.goto(base + "/studies/helpful/upload/")
    page.set_input_files("#id_file", str(tmp_path / "items.jsonl"))
    page.click("#upload-button")
    assert page.locator("#preview tbody tr").count() == 3
    page.click("#import-button")
    page.wait_for_selector("#upload-summary:not([hidden])", timeout=60_000)
    assert "3 items imported" in page.inner_text("#upload-summary")

    # An annotator invited by name; the study opened from its page.
    page.goto(base + "/studies/helpful/people/")
    page.fill("#id_names", "erin")
    page.click("#invite-form button[type=submit]")
    link = page.locator('[data-invitation="erin"] input[data-copy]').input_value()
    page.goto(base + "/studies/helpful/")
    assert "hand out nothing until it is opened" in page.inner_text("#draft-notice")
    page.click("#open-study")
    assert page.inner_text("#study-status") == "Open"
    page.screenshot(path=str(SCREENSHOTS / "setup-study-page.png"), full_page=True)

    # The invited annotator chooses a password and labels the first item.
    erin = page.context.browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    erin.goto(link)
    erin.fill("#id_new_password1", "erin-pw-for-tests-only")
    erin.fill("#id_new_password2", "erin-pw-for-tests-only")
    erin.click("#password-form button[type=submit]")
    erin.wait_for_url(base + "/s/helpful/label/")
    erin.keyboard.press("1")  # Response 1 is better
    erin.click("[name='q:clarity'][value='4']")
    erin.click("[name='q:checks[0]'][value='yes']")
    erin.click("[name='q:checks[1]'][value='no']")
    with erin.expect_navigation():
        erin.click("button.primary")
    (label,) = Annotation.objects.filter(rater__name="erin")
    labelled = label.item.external_id

    # The admin finds the label in the data browser.
    page.goto(base + "/studies/helpful/items/")
    page.click(f"#items a[href='/studies/helpful/items/{labelled}/']")
    page.wait_for_url(base + f"/studies/helpful/items/{labelled}/")
    assert "erin" in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / "setup-data-browser.png"), full_page=True)
