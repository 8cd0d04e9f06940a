"""Every import format in one place: items (JSONL, CSV) and labels (long CSV).

An import streams its file once, validating each line (label rows are staged on disk on the
way, since a label's rows may lie anywhere in the file); rows are written in batches inside
one transaction, and the first error stops all writing. At the end any error rolls the
transaction back, so a study is either fully updated or untouched. Errors read
`file:line: "field" what was expected`, and up to MAX_ERRORS are reported at once.
"""

import codecs
import collections
import csv
import functools
import itertools
import json
import math
import os
import sqlite3
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from annotation.consumers import announce_progress
from annotation.models import (
    Annotation,
    Item,
    Rater,
    ResponseKeys,
    Study,
    StudyMembership,
)
from annotation.signals import labels_settled, labels_written
from annotation.spreadsheet import unescape_cell

MAX_ERRORS = 50
BATCH_SIZE = 2000
ITEM_FIELDS = {"external_id", "prompt", "responses", "reference", "checklist", "metadata", "gold"}
RESPONSE_FIELDS = {"key", "text", "model"}
ITEM_CSV_COLUMNS = {
    "external_id",
    "prompt",
    "response_a",
    "response_b",
    "reference",
    "model_a",
    "model_b",
}
LABEL_COLUMNS = ("item", "rater", "kind", "question", "value", "order", "confidence", "rationale")
REQUIRED_LABEL_COLUMNS = ("item", "rater", "question", "value")
RATER_KINDS = frozenset(Rater.Kind.values)
ORDERS = frozenset(Annotation.Order.values)
NUL_MESSAGE = "holds the NUL character (U+0000), which no database can store"


class ImportFailed(Exception):
    """The file had errors; nothing was written. `errors` lists them, file:line first."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("\n".join(errors))


class FieldError(ValueError):
    def __init__(self, field, message):
        self.field = field
        super().__init__(message)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0


class _Errors:
    """Collects errors; once it has any, the import stops writing and only validates."""

    def __init__(self, filename):
        self.filename = filename
        self.messages = []

    def add(self, line, message, field=None):
        where = f":{line}" if line else ""
        quoted = f'"{field}" ' if field else ""
        self.messages.append(f"{self.filename}{where}: {quoted}{message}")
        if len(self.messages) >= MAX_ERRORS:
            self.messages.append(f"{self.filename}: stopped after {MAX_ERRORS} errors")
            raise ImportFailed(self.messages)

    def __bool__(self):
        return bool(self.messages)

    def raise_if_any(self):
        if self.messages:
            raise ImportFailed(self.messages)


# Items ------------------------------------------------------------------------------------


def import_items(study, path, *, update=False, progress=None):
    """Add the items of a .jsonl or .csv file to a study (with update, replace same ids).

    `progress`, if given, is called with the bytes read so far (`_read_lines`)."""
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        records = jsonl_records(path, progress)
    elif path.suffix.lower() == ".csv":
        records = item_csv_records(path, progress)
    else:
        raise ImportFailed([f"{path}: expected a .jsonl or .csv file of items"])

    rubric = study.rubric_version.parsed
    errors = _Errors(str(path))
    seen = {}
    result = ImportResult()
    to_create, to_update = [], []

    with transaction.atomic():
        # One import of a study's items at a time (uploads run in parallel workers): the
        # next positions and the ids already there are read under the study's lock.
        list(Study.objects.select_for_update().filter(pk=study.pk).values_list("pk"))
        existing = dict(study.items.values_list("external_id", "id"))
        position = study.items.order_by("-position").values_list("position", flat=True).first() or 0
        for line, record in records:
            if isinstance(record, FieldError):
                errors.add(line, str(record), record.field)
                continue
            try:
                fields = clean_item(record, rubric)
            except FieldError as e:
                errors.add(line, str(e), e.field)
                continue
            external_id = fields["external_id"]
            if external_id in seen:
                errors.add(
                    line, f"{external_id!r} is already on line {seen[external_id]}", "external_id"
                )
                continue
            seen[external_id] = line
            if external_id in existing and not update:
                errors.add(
                    line,
                    f"{external_id!r} is already in study {study.slug!r} "
                    "(use --update to replace it)",
                    "external_id",
                )
                continue
            if errors:
                continue
            if external_id in existing:
                to_update.append(Item(id=existing[external_id], study=study, **fields))
            else:
                position += 1
                to_create.append(Item(study=study, position=position, **fields))
            if len(to_create) >= BATCH_SIZE:
                result.created += _flush_create(Item, to_create)
            if len(to_update) >= BATCH_SIZE:
                result.updated += _flush_items_update(to_update)
        if not seen and not errors:
            errors.add(None, "holds no items")
        errors.raise_if_any()
        result.created += _flush_create(Item, to_create)
        result.updated += _flush_items_update(to_update)
        if result.created:
            transaction.on_commit(lambda: _analyze(Item))
        labels_written.send(sender=Item, study=study)
        transaction.on_commit(lambda: announce_progress(study))
    return result


def _analyze(model):
    """Refresh PostgreSQL's statistics of a table after a bulk load: until autovacuum's next
    round, the planner takes thousands of new rows for a handful, and the next-item query
    picks plans ten times slower than it should."""
    db = connections[router.db_for_write(model)]
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(f"ANALYZE {db.ops.quote_name(model._meta.db_table)}")


def _flush_create(model, objs):
    db = connections[router.db_for_write(model)]
    if db.vendor == "postgresql":
        _copy_into(db, model, objs)
    else:
        model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
    n = len(objs)
    objs.clear()
    return n


def _copy_into(db, model, objs):
    """Write new rows with COPY: on PostgreSQL it is several times faster than INSERT.

    Values go through each field's own preparation, as bulk_create would do; the objects do
    not learn their primary keys, which no importer needs.
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    qn = db.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    with (
        db.cursor() as cursor,
        cursor.cursor.copy(f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields])


def _flush_items_update(items):
    Item.objects.bulk_update(
        items,
        ["prompt", "responses", "reference", "checklist", "metadata", "is_gold", "gold_answers"],
        batch_size=BATCH_SIZE,
    )
    n = len(items)
    items.clear()
    return n


def jsonl_records(path, progress=None):
    """Yield (line number, object or FieldError) for each non-blank line of a JSONL file."""
    with open(path, "rb") as f:
        for line, raw in enumerate(_read_lines(f, progress), 1):
            try:
                text = _decode_line(raw, line).rstrip("\r\n")
            except FieldError as e:
                yield line, e
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                yield line, FieldError(None, f"is not valid JSON: {e.msg} (column {e.colno})")
                continue
            yield line, FieldError(None, NUL_MESSAGE) if _has_nul(record) else record


def item_csv_records(path, progress=None):
    """Yield (line number, item object) from the items CSV, shaped like a JSONL item."""
    for line, row in csv_rows(
        path, required=("external_id", "prompt", "response_a", "response_b"), progress=progress
    ):
        if isinstance(row, FieldError):
            yield line, row
            continue
        record = {
            "external_id": row["external_id"],
            "prompt": row["prompt"],
            "responses": [
                {"key": "A", "text": row["response_a"], "model": row.get("model_a") or ""},
                {"key": "B", "text": row["response_b"], "model": row.get("model_b") or ""},
            ],
            "reference": row.get("reference") or "",
        }
        extra = {k: v for k, v in row.items() if k not in ITEM_CSV_COLUMNS and v != ""}
        if extra:
            record["metadata"] = extra
        yield line, record


def clean_item(record, rubric):
    """Turn one parsed item record into Item fields, or raise FieldError."""
    if not isinstance(record, dict):
        raise FieldError(None, "must be a JSON object")
    unknown = sorted(set(record) - ITEM_FIELDS)
    if unknown:
        raise FieldError(unknown[0], 'is not an item field (put extra data in "metadata")')
    external_id = record.get("external_id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 255:
        raise FieldError("external_id", "must be a non-empty string of at most 255 characters")
    prompt = record.get("prompt")
    if not isinstance(prompt, str):
        raise FieldError("prompt", "must be a string")
    responses = _clean_responses(record.get("responses"))
    reference = record.get("reference") or ""
    if not isinstance(reference, str):
        raise FieldError("reference", "must be a string")
    checklist = record.get("checklist") or []
    if not isinstance(checklist, list) or not all(
        isinstance(q, str) and q.strip() for q in checklist
    ):
        raise FieldError("checklist", "must be a list of non-empty strings")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise FieldError("metadata", "must be a JSON object")

    for q in rubric.questions:
        if q.type == "pairwise" and len(responses) != 2:
            raise FieldError(
                "responses", f"must have exactly 2 entries for the pairwise question {q.key!r}"
            )
        if q.per_item and not checklist:
            raise FieldError("checklist", f"is needed by the per-item checklist {q.key!r}")
        if q.type == "binary" and q.needs_reference and not reference:
            raise FieldError("reference", f"is needed by the question {q.key!r}")

    gold = record.get("gold") or {}
    if not isinstance(gold, dict):
        raise FieldError("gold", "must be an object mapping question keys to answers")
    gold_answers = {}
    keys = [r["key"] for r in responses]
    for cell, value in gold.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise FieldError("gold", f"{cell!r}: answers are strings as in the label CSV")
        try:
            _, gold_answers[cell] = rubric.clean(
                cell, value, item_checklist=checklist, response_keys=keys
            )
        except ValueError as e:
            raise FieldError("gold", f"{cell!r}: {e}") from None
    for cell, problem in rubric.strength_problems(gold_answers):
        raise FieldError("gold", f"{cell!r}: {problem}")
    return {
        "external_id": external_id,
        "prompt": prompt,
        "responses": responses,
        "reference": reference,
        "checklist": checklist,
        "metadata": metadata,
        "is_gold": bool(gold_answers),
        "gold_answers": gold_answers,
    }


def _clean_responses(responses):
    expected = 'must be a list of 2+ objects with "text"'
    if not isinstance(responses, list) or len(responses) < 2:
        raise FieldError("responses", expected)
    cleaned = []
    for i, r in enumerate(responses):
        if not isinstance(r, dict) or not isinstance(r.get("text"), str):
            raise FieldError("responses", expected)
        unknown = sorted(set(r) - RESPONSE_FIELDS)
        if unknown:
            raise FieldError(
                "responses", f"entry {i}: {unknown[0]!r} is not a response field (key, text, model)"
            )
        default_key = string.ascii_uppercase[i] if i < 26 else f"R{i}"
        key = r.get("key", default_key)
        model = r.get("model") or ""
        if not isinstance(key, str) or not key or key == "tie":
            raise FieldError(
                "responses", f"entry {i}: \"key\" must be a non-empty string other than 'tie'"
            )
        if not isinstance(model, str):
            raise FieldError("responses", f'entry {i}: "model" must be a string')
        cleaned.append({"key": key, "text": r["text"], "model": model})
    if len({r["key"] for r in cleaned}) != len(cleaned):
        raise FieldError("responses", "keys must be distinct")
    return cleaned


# Labels -----------------------------------------------------------------------------------


def import_labels(study, path, *, update=False, progress=None):
    """Add the labels of a long CSV to a study; raters are created as needed.

    With update, a label for an (item, rater, order) that already has one replaces it and
    the earlier label stays as history. A label's rows may lie anywhere in the file, so the
    rows are staged on disk (`_StagedRows`) and read back label by label: memory stays flat
    however long the file. `progress`, if given, is called with the bytes read so far.
    """
    path = Path(path)
    rubric_version = study.rubric_version
    rubric = rubric_version.parsed
    errors = _Errors(str(path))
    with _StagedRows() as staged:
        rows = csv_rows(
            path, required=REQUIRED_LABEL_COLUMNS, allowed=LABEL_COLUMNS, progress=progress
        )
        while batch := list(itertools.islice(rows, BATCH_SIZE)):
            staged.add(_clean_label_rows(study, rubric, batch, errors))
        for line, cell, item, rater, first in staged.repeated():
            errors.add(
                line, f"{cell!r} of {item!r} by {rater!r} is already on line {first}", "question"
            )
        if any(q.strength for q in rubric.questions):
            # A strength row is checked against its label's pairwise row, which may come later.
            for _, answers, _, _, lines, _ in staged.labels():
                for cell, problem in rubric.strength_problems(answers):
                    errors.add(lines[cell], problem, "question")
        if not staged.count and not errors:
            errors.add(None, "holds no labels")
        errors.raise_if_any()
        with transaction.atomic():
            result = _write_labels(study, rubric_version, staged, errors, update=update)
            errors.raise_if_any()
            labels_settled.send(sender=Annotation, study=study, items=None)
            labels_written.send(sender=Annotation, study=study)
            transaction.on_commit(lambda: announce_progress(study))
    return result


def _write_labels(study, rubric_version, staged, errors, *, update):
    """Store the staged labels in batches; a label given before is an error, or with
    update replaces it. After the first error nothing more is written."""
    raters = _raters_for(study, staged.raters())
    current = Annotation.objects.of_study(study).current()
    if current.exists():
        # Which labels are there already is asked once, not per batch: the labels of a big
        # import are not in the planner's statistics until it commits, and "these items'
        # labels" was planned as a scan of the whole table, batch after batch.
        staged.add_existing(
            current.values_list("item_id", "rater__kind", "rater__name", "order").iterator(
                chunk_size=BATCH_SIZE * 5
            )
        )
    result = ImportResult()
    labels = staged.labels()
    while batch := list(itertools.islice(labels, BATCH_SIZE)):
        new, added = [], collections.Counter()  # added: new human labels by item
        for (item_id, kind, name, order), answers, confidences, rationales, lines, given in batch:
            rater_id = raters[kind, name]
            if given:
                if not update:
                    errors.add(
                        min(lines.values()),
                        f"{name!r} already labelled this item"
                        f"{' in order ' + order if order else ''} (use --update "
                        "to replace the label)",
                        "item",
                    )
                    continue
                Annotation.objects.current().filter(
                    item_id=item_id, rater_id=rater_id, order=order
                ).update(is_current=False)
                result.updated += 1
            else:
                result.created += 1
                if kind == Rater.Kind.HUMAN:
                    added[item_id] += 1
            new.append((item_id, rater_id, order, answers, confidences, rationales))
        if not errors:
            _flush_labels(rubric_version, new)
            _count_new_labels(added)
    return result


def _count_new_labels(added):
    """Add to the items' `human_labels` their new labels ({item id: n}): one UPDATE per
    distinct n, rather than a recount of every item of the study."""
    by_count = collections.defaultdict(list)
    for item_id, n in added.items():
        by_count[n].append(item_id)
    for n, items in by_count.items():
        Item.objects.filter(pk__in=items).update(human_labels=F("human_labels") + n)


def _flush_labels(rubric_version, labels):
    """Write new imported labels, (item id, rater id, order, answers, confidences,
    rationales) each. On PostgreSQL by COPY of the values as the database takes them: a
    model instance and each field's preparation of its value took 50 µs a label, these
    tuples take 4."""
    db = connections[router.db_for_write(Annotation)]
    if db.vendor != "postgresql":
        Annotation.objects.bulk_create(
            (
                Annotation(
                    item_id=item_id,
                    rater_id=rater_id,
                    rubric_version=rubric_version,
                    order=order,
                    source=Annotation.Source.IMPORT,
                    answers=answers,
                    confidences=confidences,
                    rationales=rationales,
                )
                for item_id, rater_id, order, answers, confidences, rationales in labels
            ),
            batch_size=BATCH_SIZE,
        )
        return
    fields = ("item", "rater", "order", "answers", "confidences", "rationales")
    fields += ("rubric_version", "source", "is_current", "created_at")
    same = (rubric_version.pk, Annotation.Source.IMPORT.value, True, timezone.now())
    qn = db.ops.quote_name
    columns = ", ".join(qn(Annotation._meta.get_field(f).column) for f in fields)
    table = qn(Annotation._meta.db_table)
    with (
        db.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for item_id, rater_id, order, answers, confidences, rationales in labels:
            copy.write_row(
                (
                    item_id,
                    rater_id,
                    order,
                    json.dumps(answers),
                    json.dumps(confidences) if confidences else "{}",
                    json.dumps(rationales) if rationales else "{}",
                    *same,
                )
            )


def _clean_label_rows(study, rubric, batch, errors):
    """The batch's good rows, as `_StagedRows.add` takes them; the others go to `errors`."""
    names = {row["item"] for _, row in batch if not isinstance(row, FieldError)}
    items = {
        ext: (pk, checklist, keys)
        for ext, pk, checklist, keys in study.items.filter(external_id__in=names).values_list(
            "external_id", "id", "checklist", ResponseKeys("responses")
        )
    }
    cleaned = []
    for line, row in batch:
        if isinstance(row, FieldError):
            errors.add(line, str(row), row.field)
            continue
        try:
            key, cell, value, confidence = _clean_label_row(row, items, rubric)
        except FieldError as e:
            errors.add(line, str(e), e.field)
            continue
        cleaned.append((line, row["item"], *key, cell, value, confidence, row.get("rationale")))
    return cleaned


def _clean_label_row(row, items, rubric):
    item = items.get(row["item"])
    if item is None:
        raise FieldError("item", f"{row['item']!r} is not an item of this study")
    item_id, checklist, response_keys = item
    kind = row.get("kind") or Rater.Kind.HUMAN
    if kind not in RATER_KINDS:
        raise FieldError("kind", "expected 'human' or 'llm'")
    rater = row["rater"]
    if not rater or len(rater) > 150:
        raise FieldError("rater", "must be a name of 1 to 150 characters")
    if kind == Rater.Kind.HUMAN and not _is_username(rater):
        raise FieldError("rater", "human rater names may hold letters, digits and @ . + - _ only")
    order = row.get("order") or ""
    if order not in ORDERS:
        raise FieldError("order", "expected 'AB', 'BA' or empty")
    try:
        _, value = rubric.clean(
            row["question"], row["value"], item_checklist=checklist, response_keys=response_keys
        )
    except ValueError as e:
        field = (
            "question"
            if str(e).startswith(("unknown question", "checklist answers", "question "))
            else "value"
        )
        raise FieldError(field, str(e)) from None
    if order and not rubric.has("pairwise"):
        # Every question of a pair shown in an order carries that order (exports write it so).
        raise FieldError("order", "applies only to rubrics with a pairwise question")
    confidence = None
    if row.get("confidence"):
        try:
            confidence = float(row["confidence"])
        except ValueError:
            confidence = math.nan
        if not math.isfinite(confidence):
            raise FieldError("confidence", "must be a number or empty")
    return (item_id, kind, rater, order), row["question"], value, confidence


@functools.lru_cache(maxsize=1024)
def _is_username(name):
    """A label file names a few raters many times over: check each name once."""
    try:
        UnicodeUsernameValidator()(name)
    except ValidationError:
        return False
    return True


def _raters_for(study, kinds_and_names):
    """Map (kind, name) to Rater ids, creating raters (and login-less users) as needed."""
    names_by_kind = {}
    for kind, name in kinds_and_names:
        names_by_kind.setdefault(kind, set()).add(name)
    found = {}
    for kind, names in names_by_kind.items():
        for name, pk in Rater.objects.filter(kind=kind, name__in=names).values_list("name", "id"):
            found[kind, name] = pk
    User = get_user_model()
    for kind, name in sorted(set(kinds_and_names) - set(found)):
        user = None
        if kind == Rater.Kind.HUMAN:
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
        found[kind, name] = Rater.objects.create(kind=kind, name=name, user=user).pk
    human_users = (
        Rater.objects.filter(
            kind=Rater.Kind.HUMAN, name__in=names_by_kind.get(Rater.Kind.HUMAN, ())
        )
        .exclude(user__memberships__study=study)
        .values_list("user_id", flat=True)
    )
    StudyMembership.objects.bulk_create(
        StudyMembership(study=study, user_id=uid, role=StudyMembership.Role.ANNOTATOR)
        for uid in human_users
    )
    return found


class _StagedRows:
    """A label file's good rows in a scratch SQLite database on disk, read back grouped into
    labels (one per item, rater kind, rater and order), in constant memory.

    SQLite sorts and groups on disk what a dict would hold in memory: 300,000 labels took
    nearly 300 MB that way.
    """

    COLUMNS = "line, item, item_id, kind, rater, ord, cell, value, confidence, rationale"
    LABEL = "item_id, kind, rater, ord"

    def __enter__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="quorum-labels-")
        self.db = sqlite3.connect(Path(self._folder.name) / "rows.sqlite3")
        self.db.execute("PRAGMA journal_mode = OFF")  # scratch: nothing to recover
        self.db.execute(f"CREATE TABLE row ({self.COLUMNS})")
        self.db.execute(f"CREATE TABLE existing ({self.LABEL})")
        self.count = 0
        self._indexed = False
        return self

    def __exit__(self, *exc):
        self.db.close()
        self._folder.cleanup()

    def add(self, rows):
        """Rows as (line, item name, item id, kind, rater, order, cell, value, confidence,
        rationale); a value is text, an integer or a list of texts (choices), which SQLite
        keeps as JSON bytes: the others it keeps as they are, with no JSON to read back."""
        self.db.executemany(
            f"INSERT INTO row VALUES ({', '.join('?' * 10)})",
            [
                (*row[:7], json.dumps(row[7]).encode(), *row[8:])
                if isinstance(row[7], list)
                else row
                for row in rows
            ],
        )
        self.count += len(rows)

    def add_existing(self, labels):
        """The labels the study has already, (item id, kind, rater, order) each."""
        self.db.executemany("INSERT INTO existing VALUES (?, ?, ?, ?)", labels)

    def _index(self):
        if not self._indexed:
            self.db.execute(f"CREATE INDEX row_label ON row ({self.LABEL}, cell, line)")
            self.db.execute(f"CREATE UNIQUE INDEX existing_label ON existing ({self.LABEL})")
            self._indexed = True

    def repeated(self):
        """(line, cell, item, rater, first line) of each row that gives a label's cell again."""
        self._index()
        return self.db.execute(
            f"""SELECT line, cell, item, rater, first FROM (
                SELECT line, cell, item, rater,
                    MIN(line) OVER (PARTITION BY {self.LABEL}, cell) AS first FROM row)
            WHERE line > first ORDER BY line"""
        )

    def raters(self):
        return set(self.db.execute("SELECT DISTINCT kind, rater FROM row"))

    def labels(self):
        """Yield (label key, answers, confidences, rationales, line of each cell, whether
        the study has the label already) per label, the cells in file order; a cell given
        twice keeps its first row."""
        self._index()
        rows = self.db.execute(
            f"SELECT {self.LABEL}, line, cell, value, confidence, rationale, "
            "existing.item_id IS NOT NULL FROM row LEFT JOIN existing USING "
            f"({self.LABEL}) ORDER BY {self.LABEL}, cell, line"
        )
        for key, group in itertools.groupby(rows, key=lambda row: row[:4]):
            answers, confidences, rationales, lines = {}, {}, {}, {}
            group = list(group)
            if len(group) > 1:
                group.sort(key=lambda r: r[4])
            for *_, line, cell, value, confidence, rationale, _ in group:
                if cell in lines:
                    continue
                lines[cell] = line
                answers[cell] = json.loads(value) if isinstance(value, bytes) else value
                if confidence is not None:
                    confidences[cell] = confidence
                if rationale:
                    rationales[cell] = rationale
            yield key, answers, confidences, rationales, lines, bool(group[0][-1])


# CSV reading shared by items and labels ---------------------------------------------------


def csv_rows(path, *, required, allowed=None, progress=None):
    """Yield (line number, row dict or FieldError); UTF-8 with or without BOM, any newline.

    The line number is where the row starts, so a quoted field spanning lines is reported
    where a user would look for it. Every cell, header included, loses the `'` that exports
    put before would-be spreadsheet formulas (`annotation.spreadsheet`).
    """
    with open(path, "rb") as raw:
        lines = _DecodedLines(_read_lines(raw, progress))
        reader = csv.reader(lines, strict=True)
        try:
            header = next(reader, None)
        except (FieldError, csv.Error) as e:
            yield lines.number, _csv_problem(e)
            return
        if header is None:
            return
        header = [unescape_cell(h.strip()) for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            yield (
                1,
                FieldError(missing[0], f"is a required column; the header has {', '.join(header)}"),
            )
            return
        unknown = [c for c in header if allowed is not None and c not in allowed]
        if unknown:
            yield (
                1,
                FieldError(unknown[0], f"is not a column of this format ({', '.join(allowed)})"),
            )
            return
        if len(set(header)) != len(header):
            yield 1, FieldError(None, "the header names a column twice")
            return
        while True:
            line = lines.number + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except (FieldError, csv.Error) as e:
                yield lines.number, _csv_problem(e)
                return
            if row == [] or row == [""]:
                continue
            if len(row) != len(header):
                yield line, FieldError(None, f"has {len(row)} fields; the header has {len(header)}")
            else:
                yield line, dict(zip(header, map(unescape_cell, row), strict=True))


def _read_lines(raw, progress):
    """A binary file's lines; with `progress`, the bytes read so far are passed to it every
    1% of the file or BATCH_SIZE lines, whichever comes first, and at the end (an upload's
    progress bar)."""
    return raw if progress is None else _told_lines(raw, progress)


def _told_lines(raw, progress):
    step = max(os.fstat(raw.fileno()).st_size // 100, 1)
    done = told = 0
    for number, line in enumerate(raw, 1):
        done += len(line)
        if done - told >= step or number % BATCH_SIZE == 0:
            progress(done)
            told = done
        yield line
    progress(done)


class _DecodedLines:
    """A binary file's lines as text, decoded one by one so a bad byte is found on its line."""

    def __init__(self, raw):
        self.raw = raw
        self.number = 0

    def __iter__(self):
        for raw in self.raw:
            self.number += 1
            yield _decode_line(raw, self.number)


def _decode_line(raw, number):
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FieldError(None, f"is not valid UTF-8 (byte {e.start + 1} of the line)") from None
    if "\x00" in text:
        raise FieldError(None, NUL_MESSAGE)
    return text


def _has_nul(value):
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _csv_problem(e):
    if isinstance(e, FieldError):
        return e
    return FieldError(None, f"is not valid CSV: {e}")
