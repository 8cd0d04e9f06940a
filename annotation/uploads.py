"""Files uploaded in the browser: stored, previewed, confirmed, then imported by the worker.

Nothing here reads a format: the preview and the import both go through imports.py's readers,
so the rows a researcher is shown are the rows the import will read. An upload moves
awaiting → queued (the researcher confirms) → running (a worker claims it) → done or failed,
each step a conditional update, so a double click or a task delivered twice does nothing.
"""

import codecs
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from annotation.imports import (
    LABEL_COLUMNS,
    REQUIRED_LABEL_COLUMNS,
    FieldError,
    ImportFailed,
    clean_item,
    csv_rows,
    import_items,
    import_labels,
    item_csv_records,
    jsonl_records,
)
from annotation.models import Rater, Upload
from annotation.rubrics import render_value

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
RECENT_UPLOADS = 20
SUFFIXES = {Upload.Kind.ITEMS: (".jsonl", ".csv"), Upload.Kind.LABELS: (".csv",)}
NOUNS = {Upload.Kind.ITEMS: ("item", "items"), Upload.Kind.LABELS: ("label", "labels")}


class Unreadable(Exception):
    """The file cannot even be read as the kind it was sent as; nothing of it is kept."""


@dataclass
class Preview:
    """What the import will read: the first rows, each with its problem if the import would
    refuse it, and over the whole file the rows read well and the gold items among them."""

    rows: list = field(default_factory=list)
    count: int = 0
    gold: int = 0
    problems: int = 0


def receive(study, user, kind, uploaded, *, update=False):
    """Store an uploaded file under a random name and record it, awaiting confirmation.

    Refused (Unreadable, nothing kept) when it is not a .jsonl or .csv file as its kind
    needs, not UTF-8 text, or holds no row the import's reader can read: an import that could
    only fail is not offered.
    """
    if study.read_only:
        raise Unreadable("the study is closed: it takes no more items or labels")
    name = Path(uploaded.name).name[:255]
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES[kind]:
        raise Unreadable(f"{name}: expected a {' or '.join(SUFFIXES[kind])} file of {kind}")
    folder = Path(settings.UPLOAD_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(16)}{suffix}"
    try:
        size = _store_utf8(uploaded, path, name)
        _first_readable_row(study, kind, path, name)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Upload.objects.create(
        study=study,
        kind=kind,
        filename=name,
        path=str(path),
        update=update,
        total_bytes=size,
        created_by=user,
    )


def _store_utf8(uploaded, path, name):
    """Copy the upload to `path` chunk by chunk, never whole in memory, checking on the way
    that it is UTF-8: the import would find a bad byte only once confirmed. Its size."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = lines = 0
    with open(path, "xb") as out:
        for chunk in uploaded.chunks():
            pending = len(decoder.getstate()[0])  # a character cut by the previous chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                line = lines + chunk.count(b"\n", 0, max(e.start - pending, 0)) + 1
                raise Unreadable(_not_utf8(name, line)) from None
            lines += chunk.count(b"\n")
            out.write(chunk)
            size += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise Unreadable(_not_utf8(name, lines + 1)) from None
    return size


def _not_utf8(name, line):
    return f"{name}:{line}: is not UTF-8 text; save the file as UTF-8 and upload it again"


def _first_readable_row(study, kind, path, name):
    """Read on until the reader reads a row (good or not); Unreadable if it never does."""
    first_problem = None
    for line, _, problem, read in _rows(study, kind, path):
        if read:
            return
        first_problem = first_problem or f"{name}:{line}: {problem}"
    raise Unreadable(first_problem or f"{name}: holds no {kind}")


def _rows(study, kind, path):
    """(line, row for the preview table or None, problem or None, read) of each row of the
    file, read by the import's own reader and, for items, checked as the import checks each
    one. `read`: whether the reader could read the row (bad JSON or CSV it cannot)."""
    path = Path(path)
    if kind == Upload.Kind.LABELS:
        rows = csv_rows(path, required=REQUIRED_LABEL_COLUMNS, allowed=LABEL_COLUMNS)
        for line, row in rows:
            if isinstance(row, FieldError):
                yield line, None, _problem(row), False
                continue
            cells = {key: row[key] for key in ("item", "rater", "question", "value")}
            yield line, {**cells, "kind": row.get("kind") or Rater.Kind.HUMAN}, None, True
        return
    rubric = study.rubric_version.parsed
    records = jsonl_records(path) if path.suffix.lower() == ".jsonl" else item_csv_records(path)
    for line, record in records:
        if isinstance(record, FieldError):
            yield line, None, _problem(record), False
            continue
        try:
            item = clean_item(record, rubric)
        except FieldError as e:
            yield line, None, _problem(e), True
            continue
        row = {
            "external_id": item["external_id"],
            "prompt": item["prompt"],
            "responses": len(item["responses"]),
            "gold": {cell: render_value(v) for cell, v in item["gold_answers"].items()},
        }
        yield line, row, None, True


def _problem(error):
    """A row's error as the import writes it, less the file and line."""
    return f'"{error.field}" {error}' if error.field else str(error)


def preview(upload):
    """The upload's first PREVIEW_ROWS rows as the import will read them, and its counts.
    Reads the whole file, once per call; Unreadable if the file is gone."""
    result = Preview()
    try:
        for line, row, problem, _ in _rows(upload.study, upload.kind, upload.path):
            if problem is None:
                result.count += 1
                result.gold += bool(row.get("gold"))
            else:
                result.problems += 1
            if len(result.rows) < PREVIEW_ROWS:
                result.rows.append({"line": line, "problem": problem, **(row or {})})
    except OSError as e:
        raise Unreadable(f"{upload.filename}: {e.strerror or e}") from None
    return result


def recent(study):
    """The study's latest uploads, newest first, for the upload page."""
    return study.uploads.select_related("created_by").order_by("-created_at", "-pk")[
        :RECENT_UPLOADS
    ]


def confirm(upload):
    """Queue an awaiting upload for import; True if this call queued it. A second click, or
    the same page in two tabs, finds it queued already and sends nothing."""
    from annotation.tasks import import_upload  # the task module imports this one

    if upload.study.read_only:
        return False
    queued = Upload.objects.filter(pk=upload.pk, state=Upload.State.AWAITING).update(
        state=Upload.State.QUEUED
    )
    if queued:
        transaction.on_commit(lambda: import_upload.delay(upload.pk))
    return bool(queued)


def as_json(upload):
    """What the upload page's poller shows."""
    return {
        "state": upload.state,
        "state_display": upload.get_state_display().capitalize(),
        "done_bytes": upload.done_bytes,
        "total_bytes": upload.total_bytes,
        "errors": upload.errors,
        "summary": upload.summary,
    }


def run(upload_id):
    """Import a queued upload, all or nothing as the import commands do; the worker's task.

    Whatever happens, the upload ends done (with its summary, in the study's audit log) or
    failed (with the import's errors, or why it stopped), and its file is deleted. An upload
    not queued (claimed by another delivery of the task, or deleted) is left alone.
    """
    claimed = Upload.objects.filter(pk=upload_id, state=Upload.State.QUEUED).update(
        state=Upload.State.RUNNING
    )
    if not claimed:
        return
    upload = Upload.objects.select_related("study", "created_by").get(pk=upload_id)
    if upload.study.read_only:
        _finish(upload, Upload.State.FAILED, errors=["the study was closed: nothing imported"])
        Path(upload.path).unlink(missing_ok=True)
        return
    importer = import_items if upload.kind == Upload.Kind.ITEMS else import_labels
    try:
        with _Progress(upload) as progress:
            result = importer(upload.study, upload.path, update=upload.update, progress=progress)
    except ImportFailed as e:
        _finish(upload, Upload.State.FAILED, errors=[_named(m, upload) for m in e.errors])
    except OSError as e:
        _finish(upload, Upload.State.FAILED, errors=[f"{upload.filename}: {e.strerror or e}"])
    except BaseException as e:
        log.exception("The import of upload %s stopped", upload_id)
        reason = f"{upload.filename}: the import stopped: {type(e).__name__}: {e}"
        _finish(upload, Upload.State.FAILED, errors=[reason[:1000]])
        if not isinstance(e, Exception):
            raise  # the worker is shutting down
    else:
        _finish(upload, Upload.State.DONE, summary=_summary(upload.kind, result))
    finally:
        Path(upload.path).unlink(missing_ok=True)


def _named(message, upload):
    """An import error with the name the file was uploaded as, not the one it waited under."""
    if message.startswith(upload.path):
        return upload.filename + message.removeprefix(upload.path)
    return message


def _summary(kind, result):
    singular, plural = NOUNS[kind]
    text = f"{result.created:,} {singular if result.created == 1 else plural} imported"
    return text + (f", {result.updated:,} updated" if result.updated else "")


def _finish(upload, state, *, summary="", errors=()):
    changes = {
        "state": state,
        "summary": summary,
        "errors": list(errors),
        "finished_at": timezone.now(),
    }
    if state == Upload.State.DONE:
        changes["done_bytes"] = upload.total_bytes
    with transaction.atomic():
        Upload.objects.filter(pk=upload.pk, state=Upload.State.RUNNING).update(**changes)
        if state == Upload.State.DONE:
            upload.study.record(upload.created_by, upload.kind, "", summary)


class _Progress:
    """Stores how much of the file the import has read, where the upload's page sees it.

    The items import reads inside its transaction, where an update through the task's own
    connection would show only at the end: on PostgreSQL progress goes through a second
    connection, in autocommit. Not on SQLite, which has one writer at a time (there the bar
    moves only while a label file is read, outside the transaction), nor inside a caller's
    transaction (a task run eagerly), which may hold the upload's row the second connection
    would wait for.
    """

    def __init__(self, upload):
        self.upload = upload
        self.side = None

    def __enter__(self):
        if connection.vendor != "sqlite" and not connection.in_atomic_block:
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)
        return self

    def __exit__(self, *exc):
        if self.side is not None:
            self.side.close()

    def __call__(self, done_bytes):
        if self.side is None:
            Upload.objects.filter(pk=self.upload.pk, state=Upload.State.RUNNING).update(
                done_bytes=done_bytes
            )
            return
        table = self.side.ops.quote_name(Upload._meta.db_table)
        with self.side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET done_bytes = %s WHERE id = %s AND state = %s",
                [done_bytes, self.upload.pk, Upload.State.RUNNING],
            )
