"""The live study dashboard over a websocket: researchers watch labelling progress."""

import asyncio
import dataclasses
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from annotation import adjudication, quality
from annotation.access import has_role
from annotation.models import Study, StudyMembership

# A busy study changes many times a second; each dashboard recounts at most this often.
RECOUNT_EVERY_SECONDS = 1.0


def progress_group(study):
    return f"study-progress-{study.pk}"


def dashboard(study):
    """Everything the study page shows that labelling and adjudication change, as JSON: the
    progress counts (their keys are the page's `data-counter`s), a summary per annotator,
    labels per day, the expert queue."""
    return {
        **study.progress(),
        "annotator_summaries": [dataclasses.asdict(s) for s in quality.annotator_summaries(study)],
        "per_day": [{"day": day.isoformat(), "labels": n} for day, n in study.labels_per_day()],
        "queue": adjudication.queue_summary(study),
    }


def announce_progress(study):
    """Tell every open dashboard of the study that its counts changed."""
    async_to_sync(get_channel_layer().group_send)(
        progress_group(study), {"type": "progress.changed"}
    )


class StudyProgressConsumer(AsyncJsonWebsocketConsumer):
    _sent_at = 0.0
    _recount = None  # the pending recount, while one is waiting its turn

    async def connect(self):
        self.study = await self._study_for_user()
        if self.study is None:
            await self.close(code=4404)
            return
        await self.channel_layer.group_add(progress_group(self.study), self.channel_name)
        await self.accept()
        await self._send_progress()

    async def disconnect(self, code):
        if self._recount is not None:
            self._recount.cancel()
        if getattr(self, "study", None) is not None:
            await self.channel_layer.group_discard(progress_group(self.study), self.channel_name)

    async def progress_changed(self, event):
        """Recount soon: changes that arrive meanwhile are answered by the same recount."""
        if self._recount is None or self._recount.done():
            wait = self._sent_at + RECOUNT_EVERY_SECONDS - time.monotonic()
            self._recount = asyncio.create_task(self._send_progress(max(wait, 0)))

    async def _send_progress(self, after=0.0):
        await asyncio.sleep(after)
        self._sent_at = time.monotonic()
        await self.send_json(await database_sync_to_async(dashboard)(self.study))

    @database_sync_to_async
    def _study_for_user(self):
        study = Study.objects.filter(slug=self.scope["url_route"]["kwargs"]["slug"]).first()
        if study and has_role(study, self.scope["user"], StudyMembership.Role.RESEARCHER):
            return study
        return None
