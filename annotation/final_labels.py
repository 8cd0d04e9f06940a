"""Final labels: one value per item and analysed question, and where that value came from.

The precedence, first that applies:

- `adjudicated`: an expert decided the question (the item's latest decision, unless the item
  has been routed to the queue again since);
- `unresolved` (value empty): that decision marked the item as one that cannot be resolved;
- `gold`: the answer of a gold item;
- `unanimous`: two or more human labels, all equal;
- `majority`: two or more human labels, not all equal, one value more frequent than any other;
- `single`: exactly one human label;
- `unresolved` (value empty): no unique most frequent value, or no human label at all.

Human labels count as `agreement`'s majority counts them: `unable` and empty answers left out.
No label is changed here or anywhere else by an adjudication; this reads them.

Rows stream item by item in import order, then rubric order (each checklist row on its own),
so that a study of any size exports with flat memory. The same rows make the CSV, the API and
the report's `--reference final`.
"""

import csv
from collections import Counter
from dataclasses import astuple, dataclass

from django.db import transaction

from annotation.adjudication import cells_for
from annotation.models import Adjudication, Annotation, Item, Rater, RoutingDecision
from annotation.rubrics import UNABLE, render_value
from annotation.spreadsheet import escape_cell

COLUMNS = [
    "item",
    "question",
    "value",
    "provenance",
    "n_labels",
    "agreement",
    "routed",
    "decided_by",
    "decided_at",
    "note",
]
ADJUDICATED, GOLD, UNANIMOUS, MAJORITY, SINGLE, UNRESOLVED = (
    "adjudicated",
    "gold",
    "unanimous",
    "majority",
    "single",
    "unresolved",
)
PROVENANCES = (ADJUDICATED, GOLD, UNANIMOUS, MAJORITY, SINGLE, UNRESOLVED)  # precedence order
CHUNK_SIZE = 2000
PROMOTED = "promoted to gold"  # the routing decision's `by` when promotion takes it out


@dataclass(frozen=True)
class FinalLabel:
    item: str
    question: str
    value: str
    provenance: str
    n_labels: int
    agreement: str  # the share, 6 decimals; empty when there is no value or no label
    routed: str
    decided_by: str
    decided_at: str
    note: str


def settle(values):
    """(value, provenance) from the human label values of one item and question, `unable` and
    empty ones already left out: the label-only steps of the precedence."""
    counts = Counter(values).most_common(2)
    if not counts:
        return "", UNRESOLVED
    if len(values) == 1:
        return values[0], SINGLE
    if len(counts) == 1:
        return counts[0][0], UNANIMOUS
    if counts[0][1] == counts[1][1]:
        return "", UNRESOLVED
    return counts[0][0], MAJORITY


def judged_values(answer_sets, cell):
    """The CSV values that human labels (their `answers` dicts) give `cell`, `unable` and
    empty ones left out, as agreement counts them."""
    return [
        text
        for answers in answer_sets
        if cell in answers and (text := render_value(answers[cell])) not in ("", UNABLE)
    ]


def share(values, value):
    """The share of `values` equal to `value`: the final label's agreement; None without a
    value or a label."""
    return sum(v == value for v in values) / len(values) if value and values else None


def final_labels(study, items=None):
    """The study's FinalLabel rows, item import order then rubric order; with `items` (an Item
    queryset of the study), those items' only."""
    rubric = study.rubric_version.parsed
    items = (study.items.all() if items is None else items).order_by("position")
    fields = ("pk", "external_id", "checklist", "is_gold", "gold_answers", "routed_at")
    fields += ("routed_reason", "routing_reasons")
    chunk = []
    for row in items.values_list(*fields).iterator(chunk_size=CHUNK_SIZE):
        chunk.append(row)
        if len(chunk) == CHUNK_SIZE:
            yield from _chunk_rows(rubric, chunk)
            chunk = []
    yield from _chunk_rows(rubric, chunk)


def _chunk_rows(rubric, chunk):
    if not chunk:
        return
    pks = [row[0] for row in chunk]
    labels = {}
    human = Annotation.objects.current().filter(item_id__in=pks, rater__kind=Rater.Kind.HUMAN)
    for item_id, answers in human.values_list("item_id", "answers").iterator():
        labels.setdefault(item_id, []).append(answers)
    latest = {}
    decisions = Adjudication.objects.filter(item_id__in=pks).select_related("expert")
    for d in decisions.order_by("decided_at", "pk"):
        latest[d.item_id] = d
    for pk, ext, checklist, is_gold, gold, routed_at, routed_reason, reasons in chunk:
        decision = latest.get(pk)
        if decision and (
            decision.outcome == Adjudication.Outcome.SENT_BACK
            or (routed_at and routed_at > decision.decided_at)
        ):
            decision = None  # the item went back to annotators, or is waiting for an expert
        decided = cells_for(rubric, checklist, decision.reasons) if decision else ()
        why = ";".join(reasons) or (routed_reason if routed_at else "")
        for cell in rubric.analysed_cells(checklist):
            values = judged_values(labels.get(pk, ()), cell)
            by = decision if cell in decided else None
            if by and by.outcome == Adjudication.Outcome.DECIDED and cell in by.answers:
                value, provenance = render_value(by.answers[cell]), ADJUDICATED
            elif by and by.outcome == Adjudication.Outcome.UNRESOLVED:
                value, provenance = "", UNRESOLVED
            elif is_gold and cell in gold:
                by, (value, provenance) = None, (render_value(gold[cell]), GOLD)
            else:
                by, (value, provenance) = None, settle(values)
            agreement = share(values, value)
            yield FinalLabel(
                item=ext,
                question=cell,
                value=value,
                provenance=provenance,
                n_labels=len(values),
                agreement="" if agreement is None else f"{agreement:.6f}",
                routed=why,
                decided_by=by.expert.get_username() if by else "",
                decided_at=by.decided_at.isoformat() if by else "",
                note=by.note if by else "",
            )


def csv_lines(study):
    """The final-label CSV line by line (a header, then COLUMNS of each row), every text cell
    escaped against spreadsheet formulas: for a file and for a streamed download alike."""
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for row in final_labels(study):
        yield writer.writerow(escape_cell(str(cell)) for cell in astuple(row))


def write_final_labels_csv(study, out):
    """Write the final-label CSV to a text file object; the number of rows."""
    lines = 0
    for line in csv_lines(study):
        out.write(line)
        lines += 1
    return lines - 1


class _Line:
    """A file for csv.writer whose write() hands the line back."""

    def write(self, line):
        return line


class NotAdjudicated(ValueError):
    """Only an item an expert decided can be promoted to gold."""


def is_adjudicated(study, item):
    """Whether an expert's decision gives the item a final label now: what promotion needs."""
    return any(
        r.provenance == ADJUDICATED for r in final_labels(study, study.items.filter(pk=item.pk))
    )


def promote_to_gold(study, item):
    """Make an adjudicated item gold: its final values become its gold answers (stored form),
    and it leaves the expert queue, so that annotators are checked against it. Questions
    without a final value keep no gold answer."""
    rubric = study.rubric_version.parsed
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item.pk, study=study)
        rows = list(final_labels(study, study.items.filter(pk=item.pk)))
        if not any(row.provenance == ADJUDICATED for row in rows):
            raise NotAdjudicated(f"{item.external_id}: no expert has decided this item")
        item.gold_answers = {
            row.question: rubric.clean(
                row.question,
                row.value,
                item_checklist=item.checklist,
                response_keys=item.response_keys,
            )[1]
            for row in rows
            if row.value
        }
        item.is_gold = True
        item.routed_at, item.routed_reason = None, ""
        item.save(update_fields=["gold_answers", "is_gold", "routed_at", "routed_reason"])
        RoutingDecision.objects.create(
            item=item, routed=False, reasons=item.routing_reasons, by=PROMOTED
        )
    return item
