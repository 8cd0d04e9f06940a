"""The strength of a preference on the labelling page: keyboard first, and without the script."""

import json

import pytest
from conftest import SCREENSHOTS, make_study

from annotation.imports import import_items
from annotation.models import Annotation, Reservation, Study

RUBRIC = {
    "name": "Preference with strength",
    "questions": [
        {
            "key": "overall",
            "type": "pairwise",
            "prompt": "Which response is better?",
            "strength": ["slightly better", "clearly better", "much better"],
        },
        {"key": "fluent", "type": "binary", "prompt": "Is response 1 fluent?"},
    ],
}


@pytest.fixture
def strength_study(transactional_db, tmp_path):
    study = make_study(
        slug="strength",
        rubric=RUBRIC,
        overlap=1,
        status=Study.Status.OPEN,
        randomise_order=True,
        hide_model_names=True,
    )
    item = {
        "external_id": "q1",
        "prompt": "Say hello",
        "responses": [{"key": "A", "text": "hi"}, {"key": "B", "text": "Hello! How are you?"}],
    }
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(item) + "\n")
    import_items(study, path)
    return study


def join(page, base, study, worker_id):
    page.goto(f"{base}/s/strength/join?worker_id={worker_id}&token={study.join_token}")
    page.wait_for_url(f"{base}/s/strength/label/")


def active_question(page):
    return page.locator("fieldset.question.active").get_attribute("data-type")


def test_a_worker_grades_how_much_better_the_chosen_response_is_with_the_keyboard(
    asgi_server, strength_study, page
):
    join(page, asgi_server, strength_study, "PID1")
    # Whatever order was drawn, show B first: the strength must follow the response chosen.
    Reservation.objects.filter(item__study=strength_study).update(order="BA")
    page.reload()
    strength = page.locator("fieldset.strength")
    assert strength.is_hidden()

    page.keyboard.press("3")  # a tie: no strength is asked, the next question is active
    assert strength.is_hidden()
    assert active_question(page) == "binary"
    page.keyboard.press("k")  # back up, past the hidden strength row
    assert active_question(page) == "pairwise"
    page.keyboard.press("1")  # the response shown first: B
    assert strength.is_visible()
    assert active_question(page) == "strength"
    assert " ".join(strength.inner_text().split()) == (
        "How much better is the response you chose? "
        "1 slightly better 2 clearly better 3 much better"
    )
    page.screenshot(path=str(SCREENSHOTS / "labelling-strength.png"))
    page.keyboard.press("2")  # clearly better
    assert active_question(page) == "binary"
    page.keyboard.press("y")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{asgi_server}/s/strength/done/")

    label = Annotation.objects.get(item__study=strength_study, rater__name="PID1@strength")
    assert label.order == "BA"
    assert label.answers == {"overall": "B", "overall.strength": 2, "fluent": "yes"}


def test_a_tie_chosen_after_a_strength_drops_the_strength(asgi_server, strength_study, page):
    join(page, asgi_server, strength_study, "PID2")
    page.keyboard.press("1")
    page.keyboard.press("3")  # much better...
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.keyboard.press("t")  # ...then a tie after all
    assert page.locator("fieldset.strength").is_hidden()
    page.keyboard.press("n")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{asgi_server}/s/strength/done/")

    label = Annotation.objects.get(item__study=strength_study, rater__name="PID2@strength")
    assert label.answers == {"overall": "tie", "fluent": "no"}


def test_the_page_takes_a_strength_without_its_script(asgi_server, strength_study, page):
    no_script = page.context.browser.new_context(java_script_enabled=False).new_page()
    join(no_script, asgi_server, strength_study, "PID3")
    order = no_script.locator("input[name=order]").input_value()
    shown_first = order[0]
    assert no_script.locator("fieldset.strength").is_visible()

    # A radio button cannot be unchecked: a strength picked before a tie is left behind.
    no_script.check(f'input[name="q:overall"][value="{shown_first}"]')
    no_script.check('input[name="q:overall.strength"][value="3"]')
    no_script.check('input[name="q:overall"][value="tie"]')
    no_script.check('input[name="q:fluent"][value="yes"]')
    no_script.click("button[value=submit]")
    no_script.wait_for_url(f"{asgi_server}/s/strength/done/")

    label = Annotation.objects.get(item__study=strength_study, rater__name="PID3@strength")
    assert label.answers == {"overall": "tie", "fluent": "yes"}
