"""Running a judge over a study: resumable, idempotent, cancellable.

The unit of work is one item in one presentation order: its questions are asked one request
each, the verdicts stored as they arrive (unique per run, item, question and order), and
when the unit is complete its answers become one Annotation of the judge's rater. A run
that is killed or restarted asks only what has no verdict yet; requests that failed after
every retry are asked again.
"""

import asyncio
import operator
import time
from collections import defaultdict
from functools import reduce

from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from annotation.models import Annotation
from annotation.signals import labels_settled, labels_written
from judging import parsing, prompts
from judging.client import JudgeClient, JudgeRequestFailed
from judging.models import JudgeRun, PromptTemplate, Verdict

CANCEL_CHECK_SECONDS = 0.2
VERDICT_FIELDS = [
    "value",
    "raw",
    "rationale",
    "confidence",
    "latency",
    "prompt_tokens",
    "completion_tokens",
    "attempts",
    "error",
]


class RunError(ValueError):
    """A run that cannot be started as asked."""


def plan_run(study, judge, questions=None, *, both_orders=False):
    """Create a queued run (see `unsaved_run`)."""
    run = unsaved_run(study, judge, questions, both_orders=both_orders)
    run.save()
    return run


def unsaved_run(study, judge, questions=None, *, both_orders=False):
    """The run asked for, not yet saved: its questions checked against the study's rubric,
    and the study's prompt templates of this moment, so a resumed run asks the same."""
    try:
        keys = JudgeRun.check_questions(study, questions)
    except ValueError as e:
        raise RunError(str(e)) from None
    return JudgeRun(
        study=study,
        judge=judge,
        questions=keys,
        both_orders=both_orders,
        templates=PromptTemplate.study_templates(study),
    )


def execute(run_id):
    """Claim a queued or interrupted run and work through what is left of it."""
    claimed = JudgeRun.objects.filter(
        pk=run_id, status__in=[JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING]
    ).update(status=JudgeRun.Status.RUNNING, heartbeat_at=timezone.now(), error="")
    if not claimed:
        return  # done, failed or cancelled meanwhile
    run = JudgeRun.objects.select_related("judge", "study__rubric").get(pk=run_id)
    run.verdicts.exclude(error="").delete()  # failed requests are asked again
    try:
        asyncio.run(_Runner(run).work())
    except Exception as e:
        JudgeRun.objects.filter(pk=run_id).update(
            status=JudgeRun.Status.FAILED,
            error=f"{type(e).__name__}: {e}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    failed = run.verdicts.exclude(error="").count()
    JudgeRun.objects.filter(pk=run_id, status=JudgeRun.Status.RUNNING).update(
        status=JudgeRun.Status.FAILED if failed else JudgeRun.Status.DONE,
        error=f"{failed} requests failed after every retry" if failed else "",
        finished_at=timezone.now(),
    )
    labels_settled.send(sender=JudgeRun, study=run.study, items=None)


def cancel(run):
    """Stop a run: requests in flight finish, no new ones start."""
    JudgeRun.objects.filter(
        pk=run.pk, status__in=[JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING]
    ).update(status=JudgeRun.Status.CANCELLED, finished_at=timezone.now())


class _Runner:
    """Asks a run's pending requests; one writer task stores the replies in batches.

    Writing each reply on its own would serialise the run on the database (one thread does
    every database call): the writer instead takes everything that arrived while it was
    busy and stores it in one transaction, a unit's annotation with its last verdict.
    """

    def __init__(self, run):
        self.run = run
        self.judge = run.judge
        self.rubric = run.study.rubric_version.parsed
        self.templates = run.templates
        self.cancelled = False
        self._checked_at = 0.0
        self._replies = []  # (item, order, cell, verdict fields, whether it completes the unit)
        self._asked = defaultdict(list)  # (item id, order) -> verdicts of units asked whole here
        self._arrived = asyncio.Event()
        self._asking = True

    async def work(self):
        units = await sync_to_async(self._pending_units)()
        client = JudgeClient(
            base_url=self.judge.base_url,
            model=self.judge.model,
            api_key=self.judge.secret(),
            max_concurrency=self.judge.max_concurrency,
            requests_per_minute=self.judge.requests_per_minute,
        )
        self._writer = asyncio.create_task(self._write())
        # At most max_concurrency units at a time, each checking for a cancel before it asks.
        slots = asyncio.Semaphore(self.judge.max_concurrency)
        try:
            await asyncio.gather(*(self._unit(slots, client, *unit) for unit in units))
        finally:
            self._asking = False
            self._arrived.set()
            try:
                await self._writer  # stores what is left, or raises why it could not
            finally:
                await client.close()
                # The thread that ran the database calls keeps its connection otherwise.
                await sync_to_async(connections.close_all)()

    def _pending_units(self):
        """(item, order, cells still without a verdict, whether some had one) for every unit
        not complete."""
        done = set(self.run.verdicts.values_list("item_id", "order", "question"))
        units = []
        for item in self.run.study.items.order_by("position"):
            for order, cells in self.run.requests_for(item):
                left = [c for c in cells if (item.pk, order, c) not in done]
                if left:
                    units.append((item, order, left, len(left) < len(cells)))
        return units

    async def _unit(self, slots, client, item, order, cells, resumed):
        async with slots:
            for n, cell in enumerate(cells, 1):
                if self._writer.done() or await self._is_cancelled():
                    return
                fields = await self._ask(client, item, order, cell)
                last = n == len(cells)
                self._replies.append((item, order, cell, fields, last, resumed))
                self._arrived.set()

    async def _write(self):
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            batch, self._replies = self._replies, []
            if batch:
                await sync_to_async(self._save)(batch)
            if not self._asking and not self._replies:
                return

    async def _ask(self, client, item, order, cell):
        """The verdict's fields from the judge's reply, or the error that stopped it."""
        question, messages = request_messages(self.rubric, self.templates, item, order, cell)
        try:
            reply = await client.complete(
                messages, temperature=self.judge.temperature, max_tokens=self.judge.max_tokens
            )
        except JudgeRequestFailed as e:
            return {"error": str(e)}
        parsed = parsing.parse_reply(
            question.type,
            reply.text,
            order=order,
            scale=question.scale or None,
            choices=list(question.choices) or None,
            multiple=question.multiple,
        )
        return {
            "value": parsed.value,
            "raw": reply.text,
            "rationale": parsed.rationale,
            "confidence": parsing.confidence_from_logprobs(reply.logprobs, parsed),
            "latency": reply.latency,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "attempts": reply.attempts,
        }

    def _save(self, batch):
        """Store replies; a unit's last verdict and its annotation commit together, so a
        worker killed in between leaves that verdict unasked and a resumed run records both."""
        verdicts, complete = [], []
        for item, order, cell, fields, last, resumed in batch:
            verdict = Verdict(run=self.run, item=item, question=cell, order=order, **fields)
            verdicts.append(verdict)
            if not resumed:
                self._asked[item.pk, order].append(verdict)
            if last:
                complete.append((item, order, resumed))
        with transaction.atomic():
            Verdict.objects.bulk_create(
                verdicts,
                update_conflicts=True,
                unique_fields=["run", "item", "question", "order"],
                update_fields=VERDICT_FIELDS,
            )
            if complete:
                self._record_annotations(complete)

    def _record_annotations(self, units):
        """Each complete unit's verdicts as the judge's label of the item in that order: from
        memory when the unit was asked whole in this execution, else from the database."""
        resumed = {item.pk: item for item, _, was_resumed in units if was_resumed}
        answered = defaultdict(list)
        for v in self.run.verdicts.filter(item_id__in=resumed, error="") if resumed else ():
            answered[v.item_id, v.order].append(v)
        labels = []
        for item, order, was_resumed in units:
            asked_here = self._asked.pop((item.pk, order), [])
            verdicts = answered[item.pk, order] if was_resumed else asked_here
            label = self._annotation(item, order, verdicts)
            if label:
                labels.append(label)
        if not labels:
            return
        replaced = reduce(operator.or_, (Q(item=a.item, order=a.order) for a in labels))
        Annotation.objects.current().filter(replaced, rater=self.judge.rater).update(
            is_current=False
        )
        Annotation.objects.bulk_create(labels)
        labels_written.send(sender=Annotation, study=self.run.study)

    def _annotation(self, item, order, verdicts):
        """The unsaved annotation of one unit's verdicts, or None if none fits the rubric."""
        answers, confidences, rationales = {}, {}, {}
        for v in verdicts:
            if v.value and v.value != Verdict.INVALID:
                try:
                    _, answers[v.question] = self.rubric.clean(
                        v.question,
                        v.value,
                        item_checklist=item.checklist,
                        response_keys=item.response_keys,
                    )
                except ValueError:
                    continue  # the parser's value does not fit this rubric: left out
                if v.confidence is not None:
                    confidences[v.question] = v.confidence
                if v.rationale:
                    rationales[v.question] = v.rationale
        if not answers:
            return None
        return Annotation(
            item=item,
            rater=self.judge.rater,
            rubric_version=self.run.study.rubric_version,
            answers=answers,
            confidences=confidences,
            rationales=rationales,
            order=order,
            source=Annotation.Source.JUDGE,
            submitted_at=timezone.now(),
        )

    async def _is_cancelled(self):
        now = time.monotonic()
        if not self.cancelled and now - self._checked_at > CANCEL_CHECK_SECONDS:
            self._checked_at = now
            status = await sync_to_async(
                lambda: JudgeRun.objects.values_list("status", flat=True).get(pk=self.run.pk)
            )()
            self.cancelled = status == JudgeRun.Status.CANCELLED
        return self.cancelled


def request_messages(rubric, templates, item, order, cell):
    """(the rubric question, the chat messages) that ask one question cell of an item, its
    responses shown in `order`, with a run's templates."""
    question = rubric.question(cell.split("[")[0])
    fields = _fields(question, cell, item, order)
    return question, prompts.messages_for(question.type, fields, templates)


def _fields(question, cell, item, order):
    """What the prompt template of the question is filled with, responses in `order`."""
    by_key = {r["key"]: r["text"] for r in item.responses}
    shown = [by_key[k] for k in order] if order else [r["text"] for r in item.responses]
    first, second = shown[0], shown[1]
    fields = {
        "prompt": item.prompt,
        "question": question.prompt,
        "reference": item.reference,
        "response_a": first,
        "response_b": second,
        "response": first,
    }
    if question.type == "likert":
        fields["scale"] = question.scale
        anchors = sorted(question.labels.items(), key=lambda kv: int(kv[0]))
        fields["anchors"] = "\n".join(f"{k} = {v}" for k, v in anchors)
    elif question.type == "checklist":
        index = int(cell[cell.index("[") + 1 : -1])
        fields["checklist_item"] = question.checklist_for(item.checklist)[index]
    elif question.type == "categorical":
        fields["choices"] = list(question.choices)
        fields["multiple"] = question.multiple
    return fields
