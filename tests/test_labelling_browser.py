"""A crowdworker's whole visit, keyboard only, in a real browser against the ASGI server."""

import json

import pytest
from conftest import SCREENSHOTS, make_study

from annotation.imports import import_items
from annotation.models import Annotation, Study

RUBRIC = {
    "name": "Pairwise with checks",
    "questions": [
        {"key": "pref", "type": "pairwise", "prompt": "Which response is better?"},
        {"key": "check", "type": "checklist", "items": ["Is response 1 polite?"]},
        {"key": "why", "type": "text", "required": False},
    ],
}
HOSTILE = "<img src=x onerror=alert(1)> <script>alert(2)</script>"


@pytest.fixture
def crowd_study(transactional_db, tmp_path):
    study = make_study(
        slug="crowd",
        rubric=RUBRIC,
        overlap=1,
        status=Study.Status.OPEN,
        randomise_order=True,
        hide_model_names=True,
    )
    items = [
        {
            "external_id": f"q{n}",
            "prompt": f"Question {n}",
            "responses": [
                {"key": "A", "text": f"answer A{n}", "model": "secret-model-a"},
                {
                    "key": "B",
                    "text": HOSTILE if n == 1 else f"answer B{n}",
                    "model": "secret-model-b",
                },
            ],
        }
        for n in range(1, 4)
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    import_items(study, path)
    return study


def test_a_worker_labels_revises_and_finishes_with_the_keyboard(asgi_server, crowd_study, page):
    base = asgi_server
    page.goto(f"{base}/s/crowd/join?worker_id=PID42&token={crowd_study.join_token}")
    page.wait_for_url(f"{base}/s/crowd/label/")

    shown = []
    for n in range(3):
        page.wait_for_selector("#label-form")
        item = page.locator("input[name=item]").input_value()
        order = page.locator("input[name=order]").input_value()
        shown.append((item, order))
        if n == 0:
            page.screenshot(path=str(SCREENSHOTS / "labelling.png"))
            assert "secret-model" not in page.content()
        page.keyboard.press("1")  # pairwise: the response shown first
        page.keyboard.press("y")  # the checklist row
        page.keyboard.type("clear")  # focus is in the optional rationale now
        page.keyboard.press("Escape")
        with page.expect_navigation():  # the answer's POST, its redirect and the next page
            page.keyboard.press("Enter")

    # every item was answered; the worker lands on the completion page
    page.wait_for_url(f"{base}/s/crowd/done/")
    assert page.locator("#completion-code").inner_text() == crowd_study.completion_code

    # back to the previous item (the last one), change the answer to the second response
    page.keyboard.press("p")
    page.wait_for_url(f"{base}/s/crowd/label/{shown[-1][0]}/")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/s/crowd/done/")

    labels = Annotation.objects.filter(item__study=crowd_study, rater__name="PID42@crowd")
    current = {a.item.external_id: a for a in labels.filter(is_current=True)}
    assert sorted(current) == ["q1", "q2", "q3"]
    assert labels.count() == 4  # three labels and the revised one kept as history
    for item, order in shown:
        a = current[item]
        assert a.order == order
        first_shown, second_shown = order[0], order[1]
        expected = second_shown if item == shown[-1][0] else first_shown
        assert a.answers == {"pref": expected, "check[0]": "yes", "why": "clear"}
        assert a.active_seconds is not None
        assert (a.started_at is None) == (item == shown[-1][0])  # a revision had no reservation


def test_hostile_response_text_renders_as_inert_text(asgi_server, crowd_study, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{asgi_server}/s/crowd/join?worker_id=PID7&token={crowd_study.join_token}")
    for _ in range(3):  # find the item with the hostile response
        if page.locator("input[name=item]").input_value() == "q1":
            break
        with page.expect_navigation():
            page.keyboard.press("s")
    assert page.locator("input[name=item]").input_value() == "q1"
    assert page.locator(".response img").count() == 0
    assert page.locator(".response script").count() == 0
    assert (
        "alert(2)"
        in page.locator(".response").nth(0).inner_text()
        + page.locator(".response").nth(1).inner_text()
    )
    assert dialogs == []  # no alert ran
