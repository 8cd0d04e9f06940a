"""An expert works the queue in a real browser, keyboard only: decides one item, sends one
back for more labels; the final-label export shows both."""

import csv
import io

import pytest
from conftest import SCREENSHOTS, make_study, make_user
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Item, StudyMembership

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def routed_study(transactional_db, write):
    study = make_study(overlap=2)
    for n in (1, 2):
        Item.objects.create(
            study=study,
            external_id=f"q{n}",
            position=n,
            prompt=f"Prompt {n}",
            responses=[
                {"key": "A", "text": f"Answer A{n}", "model": "m-a"},
                {"key": "B", "text": f"Answer B{n}", "model": "m-b"},
            ],
        )
    rows = "".join(
        f"q{n},h{h},human,pref,{v},AB,,\n" for n in (1, 2) for h, v in ((1, "A"), (2, "B"))
    )
    header = "item,rater,kind,question,value,order,confidence,rationale\n"
    call_command("import_labels", "s1", write("l.csv", header + rows), stdout=io.StringIO())
    Item.objects.filter(study=study).update(
        routed_at=timezone.now(),
        routed_reason="routing rules",
        routing_reasons=["no_majority:pref"],
        reason_count=1,
    )
    make_user("carol", StudyMembership.Role.EXPERT, study)
    return study


def test_an_expert_decides_one_item_and_sends_one_back_with_the_keyboard(
    asgi_server, routed_study, page, tmp_path
):
    base = asgi_server
    page.goto(base + "/login/?next=/s/s1/queue/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", "pw-for-tests-only")
    page.press("#id_password", "Enter")
    page.wait_for_url(base + "/s/s1/queue/")

    assert page.locator("input[name=item]").input_value() == "q1"
    page.screenshot(path=str(SCREENSHOTS / "adjudication.png"))
    page.keyboard.press("2")  # Response 2 (B) is better; the note is next
    page.keyboard.type("B is right")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")  # decide

    assert page.locator("input[name=item]").input_value() == "q2"
    page.focus("#extra-labels")
    page.keyboard.press("Control+A")
    page.keyboard.type("2")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the field's own button: send back for 2 more
    assert page.locator("#queue-done").is_visible()

    path = tmp_path / "final.csv"
    call_command("export", "s1", "--format", "csv", "--final", "--out", path, stderr=io.StringIO())
    rows = {r["item"]: r for r in csv.DictReader(path.open(encoding="utf-8", newline=""))}
    decided, sent_back = rows["q1"], rows["q2"]
    assert (decided["value"], decided["provenance"]) == ("B", "adjudicated")
    assert (decided["decided_by"], decided["note"]) == ("carol", "B is right")
    # Sent back: the labels speak (a 1-1 split) until the two more arrive.
    assert (sent_back["value"], sent_back["provenance"], sent_back["decided_by"]) == (
        "",
        "unresolved",
        "",
    )
    assert sent_back["routed"] == "no_majority:pref"
    item = routed_study.items.get(external_id="q2")
    assert (item.routed_at, item.labels_needed(routed_study)) == (None, 4)
