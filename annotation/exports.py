"""Every export format in one place: items JSONL, the long labels CSV and the final labels.

Exports stream from the database in chunks, so memory stays flat however big the study.
They are the exact inverse of the importers: export, import into a new study and export
again gives the same bytes. CSV cells are escaped against spreadsheet formulas
(`annotation.spreadsheet`), and the importers undo the escape.
"""

import csv
import json
import os
import tempfile
from pathlib import Path

from django.db import connection, connections
from django.db.models import TextField
from django.db.models.functions import Cast, Collate

from annotation.final_labels import write_final_labels_csv
from annotation.imports import LABEL_COLUMNS, FieldError, clean_item
from annotation.models import Annotation
from annotation.rubrics import CELL_RE, STRENGTH_RE, render_value
from annotation.spreadsheet import escape_cell

FORMATS = ("csv", "jsonl")
CHUNK_SIZE = 5000


def export_study(study, fmt, out, *, final=False):
    """Write a study's labels (csv; with `final`, its final labels) or items (jsonl) to a
    text file object."""
    if final:
        if fmt != "csv":
            raise ValueError("final labels are exported as csv only")
        return write_final_labels_csv(study, out)
    if fmt == "csv":
        return write_labels_csv(study, out)
    if fmt == "jsonl":
        return write_items_jsonl(study, out)
    raise ValueError(f"unknown export format {fmt!r}; expected {' or '.join(FORMATS)}")


def export_study_to_path(study, fmt, path, *, final=False):
    """Export into a file that appears complete or not at all (written aside, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            count = export_study(study, fmt, out, final=final)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return count


def write_items_jsonl(study, out):
    """One JSON object per line, keys in the documented order, empty optional keys left out."""
    n = 0
    for record in item_records(study):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        n += 1
    return n


def item_records(study):
    """Each item of the study, in import order, as its items-JSONL object."""
    fields = (
        "external_id",
        "prompt",
        "responses",
        "reference",
        "checklist",
        "metadata",
        "gold_answers",
    )
    for ext, prompt, responses, reference, checklist, metadata, gold in (
        study.items.order_by("position").values_list(*fields).iterator(chunk_size=CHUNK_SIZE)
    ):
        record = {
            "external_id": ext,
            "prompt": prompt,
            "responses": [
                {
                    "key": r["key"],
                    "text": r["text"],
                    **({"model": r["model"]} if r.get("model") else {}),
                }
                for r in responses
            ],
        }
        if reference:
            record["reference"] = reference
        if checklist:
            record["checklist"] = checklist
        if metadata:
            record["metadata"] = metadata
        if gold:
            record["gold"] = {cell: render_value(value) for cell, value in gold.items()}
        yield record


def item_problems(study, rubric, limit=10):
    """The study's items that `rubric` would refuse, as the items import checks each of
    them exported (responses, checklist, reference, gold answers): "ID: field: message",
    the first `limit`. A change of questions that strands items or their gold answers is
    refused with them."""
    problems = []
    for record in item_records(study):
        try:
            clean_item(record, rubric)
        except FieldError as e:
            problems.append(f"item {record['external_id']}: {e.field}: {e}")
            if len(problems) == limit:
                break
    return problems


def write_labels_csv(study, out):
    """The long label CSV: one row per (item, rater, question cell) of current labels, every
    cell escaped so that no answer, name or id runs as a spreadsheet formula."""
    writer = csv.writer(out)
    writer.writerow(LABEL_COLUMNS)
    n = 0
    for *head, confidence, rationale in label_rows(study):
        confidence = "" if confidence is None else repr(confidence)
        writer.writerow(map(escape_cell, (*head, confidence, rationale)))
        n += 1
    return n


def label_rows(study, items=None, rubric_version=None):
    """A study's current labels as label CSV rows, values in CSV terms, confidence a float;
    with `items` (item ids), those items' only; with `rubric_version`, the labels written
    against that version only.

    Rows follow item import order, then humans before judges, rater name, presentation order,
    and the rubric's question order.
    """
    in_order = _cell_key((rubric_version or study.rubric_version).parsed)
    for columns in label_chunks(study, items, rubric_version):
        for ext, rater, kind, order, answers, confidences, rationales in zip(*columns, strict=True):
            cells = answers if len(answers) == 1 else sorted(answers, key=in_order)
            for cell in cells:
                yield (
                    ext,
                    rater,
                    kind,
                    cell,
                    render_value(answers[cell]),
                    order,
                    confidences.get(cell),
                    rationales.get(cell, ""),
                )


def label_chunks(study, items=None, rubric_version=None):
    """The labels of `label_rows`, in its order, a chunk at a time as columns: items, raters,
    kinds, orders, answers, confidences, rationales (the last three decoded)."""
    labels = Annotation.objects.of_study(study).current()
    if rubric_version is not None:
        labels = labels.filter(rubric_version=rubric_version)
    if items is not None:
        labels = labels.filter(item_id__in=items)
    chunks = _raw_chunks(
        labels
        # JSON as text, decoded a chunk at a time with one json.loads: a call per label was
        # most of a large export's time.
        .annotate(
            answers_json=Cast("answers", TextField()),
            confidences_json=Cast("confidences", TextField()),
            rationales_json=Cast("rationales", TextField()),
        )
        .order_by("item__position", "rater__kind", _bytewise("rater__name"), "order")
        .values_list(
            "item__external_id",
            "rater__name",
            "rater__kind",
            "order",
            "answers_json",
            "confidences_json",
            "rationales_json",
        )
    )
    for chunk in chunks:
        *heads, answers, confidences, rationales = zip(*chunk, strict=True)
        yield *heads, _json_list(answers), _json_list(confidences), _json_list(rationales)


def cell_order(cells, rubric):
    """Label cells in the rubric's question order: checklist rows by index, a strength right
    after its pairwise answer."""
    return sorted(cells, key=_cell_key(rubric))


def _raw_chunks(queryset):
    """The rows of a values_list of text columns as the database sends them, in chunks, from
    a server-side cursor where the database has one: Django's per-value converters, which
    such columns do not need, were most of a large export's time."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(CHUNK_SIZE):
            yield chunk


def _json_list(texts):
    """Decode JSON texts with one call."""
    return json.loads(f"[{','.join(texts)}]")


def _bytewise(field):
    """Order by code point on every backend, so exports match whatever the database."""
    if connection.vendor == "postgresql":
        return Collate(field, "C")
    return field  # SQLite compares text bytewise already


def _cell_key(rubric):
    """The sort key of `cell_order`."""
    rank = {key: i for i, key in enumerate(rubric.keys)}
    return lambda cell: _cell_rank(cell, rank)


def _cell_rank(cell, rank):
    match, strength = CELL_RE.match(cell), STRENGTH_RE.match(cell)
    if match:
        key, index = match["key"], int(match["index"])
    elif strength:
        key, index = strength["key"], 0
    else:
        key, index = cell, -1
    return rank.get(key, len(rank)), key, index
