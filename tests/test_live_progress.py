"""Study counters are pushed to open dashboards when an import changes them."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from conftest import DEMO_DIR, make_study, make_user
from django.db import connections

from annotation.consumers import RECOUNT_EVERY_SECONDS, announce_progress
from annotation.imports import import_items, import_labels
from annotation.models import StudyMembership
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
