"""The data browser: a study's items found by their filters, one keyset page at a time, and
one item's whole record (its content, every version of every label, its judges' verdicts).

Pages go by keyset, never by offset: a page is `WHERE key > :after ORDER BY key LIMIT 51`,
which reads along an index from the cursor, so the 2,000th page of a 100,000-item study
costs what the first does; an offset would make the database walk past every row before
the page. For the same reason no page counts its matches (a count reads them all). Items
are keyed by `position`, their import order, which the imports number 1, 2, 3... within a
study (the (study, position) index serves it).
"""

import json
import math
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import F, Q, Value
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Substr

from annotation.rubrics import render_value

PAGE_SIZE = 50
EXCERPT_CHARS = 160
# The largest cursor or count a filter takes: what every database's integer columns hold.
LARGEST = 2**31 - 1
# Metadata numbers compared as numbers too, while they are exact in JSON's doubles.
EXACT_NUMBER = 2**53
YES_NO = [("", "either"), ("yes", "yes"), ("no", "no")]


@dataclass
class Page:
    """One keyset page: its rows, and the cursors of the pages beside it (None: no page
    that way). `query` is the filters, carried into the links to those pages."""

    rows: list
    after: int | None = None
    before: int | None = None
    query: dict = field(default_factory=dict)

    @property
    def next_query(self):
        return "?" + urlencode({**self.query, "after": self.after})

    @property
    def previous_query(self):
        return "?" + urlencode({**self.query, "before": self.before})

    @property
    def first_query(self):
        return "?" + urlencode(self.query)


def keyset_page(rows, key, *, after=None, before=None, size=PAGE_SIZE, query=None):
    """The page of `rows` (a QuerySet) after the cursor `after`, or before `before`, in
    order of `key`, a unique column with an index.

    One query, whichever page: it asks for one row more than the page holds, to learn
    whether there is a page beyond it. That a page lies the way the cursor came from is
    taken from the cursor itself (a page reached by a link has one). An empty page has no
    neighbours: its template links to the first page.
    """
    if before is not None:
        found = list(rows.filter(**{f"{key}__lt": before}).order_by(f"-{key}")[: size + 1])
        more, found = len(found) > size, found[:size][::-1]
        keys = [getattr(row, key) for row in found]
        return Page(
            found,
            after=keys[-1] if keys else None,
            before=keys[0] if more else None,
            query=query or {},
        )
    if after is not None:
        rows = rows.filter(**{f"{key}__gt": after})
    found = list(rows.order_by(key)[: size + 1])
    more, found = len(found) > size, found[:size]
    keys = [getattr(row, key) for row in found]
    return Page(
        found,
        after=keys[-1] if more else None,
        before=keys[0] if keys and after is not None else None,
        query=query or {},
    )


class PageForm(forms.Form):
    """The cursor of a keyset page, `?after=` or `?before=`; the filters of a list add
    their fields. Checked like any form, so that a bad value gets a 400 and a message
    instead of reaching the database."""

    after = forms.IntegerField(required=False, min_value=0, max_value=LARGEST)
    before = forms.IntegerField(required=False, min_value=0, max_value=LARGEST)
    CURSORS = ("after", "before")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("after") is not None and cleaned.get("before") is not None:
            raise ValidationError("A page goes after one row or before one, not both.")
        return cleaned

    @property
    def paging_errors(self):
        """Messages about the cursor, which has no field on the page to show them beside."""
        return [
            *self.non_field_errors(),
            *(e for c in self.CURSORS for e in self.errors.get(c, [])),
        ]

    @property
    def filter_fields(self):
        return [f for f in self if f.name not in self.CURSORS]

    def query(self):
        """The filters as given (no cursor, no empty ones), for the links to other pages."""
        return {
            name: self.data[name]
            for name in self.fields
            if name not in self.CURSORS and self.data.get(name, "") != ""
        }

    def page(self, rows, key, size=PAGE_SIZE):
        return keyset_page(
            rows,
            key,
            after=self.cleaned_data["after"],
            before=self.cleaned_data["before"],
            size=size,
            query=self.query(),
        )


class ItemFilters(PageForm):
    """The items list's filters, a GET form that works without JavaScript."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        help_text="Items whose external id or prompt contains this (any case).",
    )
    meta = forms.CharField(
        label="Metadata",
        required=False,
        max_length=400,
        help_text="key:value, items whose metadata field has exactly this value "
        "(e.g. category:math; a number matches as a number or as text).",
    )
    min_labels = forms.IntegerField(
        label="Human labels at least", required=False, min_value=0, max_value=LARGEST
    )
    max_labels = forms.IntegerField(
        label="Human labels at most", required=False, min_value=0, max_value=LARGEST
    )
    agreement_max = forms.FloatField(
        label="Agreement at most",
        required=False,
        min_value=0,
        max_value=1,
        help_text="A share from 0 to 1; items the routing rules never decided have no "
        "agreement and are left out.",
    )
    gold = forms.ChoiceField(label="Gold", required=False, choices=YES_NO)
    routed = forms.ChoiceField(label="In the expert queue", required=False, choices=YES_NO)

    def clean_meta(self):
        meta = self.cleaned_data["meta"]
        if not meta:
            return None
        key, colon, value = meta.partition(":")
        if not colon or not key:
            raise ValidationError("Write it as key:value, e.g. category:math.")
        return key, value

    def clean(self):
        cleaned = super().clean()
        least, most = cleaned.get("min_labels"), cleaned.get("max_labels")
        if least is not None and most is not None and least > most:
            self.add_error("max_labels", "At most is less than at least: no item could match.")
        return cleaned

    def items(self, study):
        """The study's items that pass the filters, with what a row of the list shows and
        nothing else (no response, no long prompt)."""
        c = self.cleaned_data
        items = study.items.only(
            "pk",
            "study",  # the related manager's rows read it to link back to the study
            "external_id",
            "position",
            "is_gold",
            "routed_at",
            "routing_agreement",
            "human_labels",
            "extra_labels",
        ).annotate(
            excerpt=Substr("prompt", 1, EXCERPT_CHARS + 1),
            needed=Value(study.overlap) + F("extra_labels"),
        )
        if c["q"]:
            items = items.filter(Q(external_id__icontains=c["q"]) | Q(prompt__icontains=c["q"]))
        if c["meta"]:
            items = items.alias(meta_value=KeyTransform(c["meta"][0], "metadata")).filter(
                _same_json_value("meta_value", c["meta"][1])
            )
        if c["min_labels"] is not None:
            items = items.filter(human_labels__gte=c["min_labels"])
        if c["max_labels"] is not None:
            items = items.filter(human_labels__lte=c["max_labels"])
        if c["agreement_max"] is not None:
            items = items.filter(routing_agreement__lte=c["agreement_max"])
        if c["gold"]:
            items = items.filter(is_gold=c["gold"] == "yes")
        if c["routed"]:
            items = items.filter(routed_at__isnull=c["routed"] == "no")
        return items


def _same_json_value(name, text):
    """A metadata value equal to `text`, or to the number or true/false it spells: typed
    into a form, 3 and "3" look the same, and imports keep whichever the file had."""
    match = Q(**{name: text})
    try:
        parsed = json.loads(text)
    except ValueError:
        return match
    if isinstance(parsed, bool) or (
        isinstance(parsed, int | float) and math.isfinite(parsed) and abs(parsed) < EXACT_NUMBER
    ):
        match |= Q(**{name: parsed})
    return match


@dataclass
class LabelRecord:
    """One label of an item as the item page shows it: its cells in label CSV terms."""

    label: object
    cells: list  # (cell, value, confidence, rationale)


def item_labels(item):
    """Every label of the item, replaced versions too, oldest first, with their answers as
    the label CSV writes them (render_value) beside each cell's confidence and rationale."""
    labels = item.annotations.select_related("rater", "rubric_version").order_by("pk")
    return [
        LabelRecord(
            label,
            [
                (
                    cell,
                    render_value(value),
                    label.confidences.get(cell),
                    label.rationales.get(cell, ""),
                )
                for cell, value in label.answers.items()
            ],
        )
        for label in labels
    ]


def item_verdicts(item):
    """The item's verdicts from every judge run, failed requests and `invalid` replies too."""
    return item.verdicts.select_related("run__judge").order_by("run_id", "question", "order")


def metadata_rows(item):
    """(key, value as text) of the item's metadata: a template's `.items` would read a
    field named "items" instead."""
    return [(key, _as_text(value)) for key, value in item.metadata.items()]


def gold_rows(item):
    return [(cell, render_value(value)) for cell, value in item.gold_answers.items()]


def _as_text(value):
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
