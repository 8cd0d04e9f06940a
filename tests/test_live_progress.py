"""The study dashboard is pushed to open pages when an import or a label changes it."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from conftest import DEMO_DIR, make_study, make_user
from django.db import connections
from django.utils import timezone

from annotation.assignment import next_item, submit
from annotation.consumers import RECOUNT_EVERY_SECONDS, announce_progress
from annotation.imports import import_items, import_labels
from annotation.models import Study, StudyMembership
from annotation.routing import websocket_urlpatterns


async def connect(user, slug="live"):
    communicator = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/studies/{slug}/progress/"
    )
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


@pytest.mark.django_db(transaction=True)
def test_it_pushes_new_counts_after_an_import():
    study = make_study(slug="live")
    alice = make_user("alice", StudyMembership.Role.RESEARCHER, study)

    async def scenario():
        ws, connected, _ = await connect(alice)
        assert connected
        assert (await ws.receive_json_from(timeout=5))["items"] == 0
        await database_sync_to_async(import_items)(study, DEMO_DIR / "items.jsonl")
        after_items = await ws.receive_json_from(timeout=5)
        await database_sync_to_async(import_labels)(study, DEMO_DIR / "labels.csv")
        after_labels = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        await database_sync_to_async(connections.close_all)()  # the consumer's thread's
        return after_items, after_labels

    after_items, after_labels = asyncio.run(scenario())
    assert after_items["items"] == 300 and after_items["human_labels"] == 0
    assert after_labels["human_labels"] == 900
    assert after_labels["judge_labels"] == 300
    assert after_labels["complete_items"] == 300


def label_next(study, user):
    reservation = next_item(study, user)
    submit(study, user, reservation.item, {"pref": "A"}, submission_id=uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_it_pushes_the_annotator_table_and_labels_per_day_after_a_label():
    study = make_study(slug="live", overlap=1, status=Study.Status.OPEN)
    import_items(study, DEMO_DIR / "items.jsonl")
    alice = make_user("alice", StudyMembership.Role.RESEARCHER, study)
    bob = make_user("bob", StudyMembership.Role.ANNOTATOR, study)

    async def scenario():
        ws, connected, _ = await connect(alice)
        assert connected
        before = await ws.receive_json_from(timeout=5)
        await database_sync_to_async(label_next)(study, bob)
        after = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        await database_sync_to_async(connections.close_all)()
        return before, after

    before, after = asyncio.run(scenario())
    assert before["annotator_summaries"] == [] and before["per_day"] == []
    assert after["human_labels"] == 1 and after["annotators"] == 1  # the counters stay as were
    (row,) = after["annotator_summaries"]
    assert row["name"] == "bob" and row["labels"] == 1
    assert row["paused_reason"] == "" and not row["speeder"] and not row["straight_liner"]
    assert after["per_day"] == [{"day": timezone.localdate().isoformat(), "labels": 1}]


@pytest.mark.django_db(transaction=True)
def test_it_closes_the_socket_for_annotators():
    study = make_study(slug="live")
    bob = make_user("bob", StudyMembership.Role.ANNOTATOR, study)

    async def scenario():
        result = await connect(bob)
        await database_sync_to_async(connections.close_all)()
        return result

    _, connected, code = asyncio.run(scenario())
    assert not connected
    assert code == 4404


@pytest.mark.django_db(transaction=True)
def test_it_answers_a_burst_of_changes_with_one_recount():
    study = make_study(slug="live")
    alice = make_user("alice", StudyMembership.Role.RESEARCHER, study)

    async def scenario():
        ws, connected, _ = await connect(alice)
        assert connected
        await ws.receive_json_from(timeout=5)  # the counts on connecting
        await database_sync_to_async(import_items)(study, DEMO_DIR / "items.jsonl")
        for _ in range(20):
            await database_sync_to_async(announce_progress)(study)
        first = await ws.receive_json_from(timeout=5)
        quiet = await ws.receive_nothing(timeout=RECOUNT_EVERY_SECONDS + 0.5)
        await ws.disconnect()
        await database_sync_to_async(connections.close_all)()
        return first, quiet

    first, quiet = asyncio.run(scenario())
    assert first["items"] == 300
    assert quiet  # 21 announcements, one recount


HOSTILE_NAME = "<img src=x onerror=alert(1)>"


def log_in(page, base, username):
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-only")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


@pytest.fixture
def open_study(transactional_db):
    """Made before the browser starts: an import announces itself, which Playwright's event
    loop on the thread would not allow."""
    study = make_study(slug="live", overlap=1, status=Study.Status.OPEN)
    import_items(study, DEMO_DIR / "items.jsonl")
    make_user("alice", StudyMembership.Role.RESEARCHER, study)
    make_user(HOSTILE_NAME, StudyMembership.Role.ANNOTATOR, study)
    return study


def test_an_open_dashboard_adds_an_annotator_as_they_label(asgi_server, open_study, page):
    from playwright.sync_api import expect

    log_in(page, asgi_server, "alice")
    page.goto(f"{asgi_server}/studies/live/")
    expect(page.locator("#no-annotators")).to_be_visible()
    expect(page.locator("#labels-per-day")).to_be_hidden()

    annotator = page.context.browser.new_page()  # a context of its own: another login
    log_in(annotator, asgi_server, HOSTILE_NAME)
    annotator.goto(f"{asgi_server}/s/live/label/")
    annotator.keyboard.press("1")
    annotator.click("button[value=submit]")
    annotator.wait_for_load_state()

    rows = page.locator("#annotator-rows tr")
    expect(rows).to_have_count(1)
    expect(page.locator("#no-annotators")).to_be_hidden()
    name, labels, gold, median, flags = rows.first.locator("td").all_inner_texts()
    assert (name, labels, gold, flags) == (HOSTILE_NAME, "1", "—", "")
    assert median.endswith(" s")
    assert page.locator("#annotator-rows img").count() == 0  # the name stayed text
    expect(page.locator("#per-day-rows td")).to_have_text([timezone.localdate().isoformat(), "1"])
    expect(page.locator('[data-counter="human_labels"]')).to_have_text("1")
