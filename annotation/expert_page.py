"""What the adjudication page shows an expert for one routed item, unblinded.

Everything the annotators were not shown is here: the responses in import order with their
models, every human label with its rationale, time spent and the order it was shown in, every
judge verdict with its rationale, order and confidence, each question's agreement, and why
the item was routed. The answer widgets and their keys are the labelling page's.
"""

from annotation.adjudication import MAX_EXTRA_LABELS, decision_cells, waiting
from annotation.final_labels import judged_values, settle, share
from annotation.labelling import LabellingPage
from annotation.models import Rater
from annotation.rubrics import UNABLE, render_value


class ExpertPage:
    def __init__(self, study, user, item, reservation=None, *, answers=None, note="", error=""):
        self.study = study
        self.user = user
        self.item = item
        self.reservation = reservation
        self.rubric = study.rubric_version.parsed
        self.answers = answers or {}
        self.note = note
        self.error = error

    def context(self):
        cells = decision_cells(self.rubric, self.item)
        labels = list(
            self.item.annotations.current()
            .select_related("rater")
            .order_by("rater__kind", "rater__name", "order")
        )
        humans = [a for a in labels if a.rater.kind == Rater.Kind.HUMAN]
        judges = [a for a in labels if a.rater.kind == Rater.Kind.LLM]
        return {
            "study": self.study,
            "item": self.item,
            "reservation": self.reservation,
            "responses": [
                {"position": n, "key": r["key"], "text": r["text"], "model": r["model"]}
                for n, r in enumerate(self.item.responses, 1)
            ],
            "reasons": self._reasons(),
            "cells": [self._cell(cell, humans, judges) for cell in cells],
            "questions": self._questions(cells),
            "humans": [self._label(a) for a in humans],
            "judges": [self._label(a) for a in judges],
            "note": self.note,
            "error": self.error,
            "max_extra_labels": MAX_EXTRA_LABELS,
            "waiting": waiting(self.study).count(),
        }

    def _reasons(self):
        reasons = [r.split(":", 1) for r in self.item.routing_reasons if ":" in r]
        if not reasons:
            return [{"rule": self.item.routed_reason or "sent by hand", "question": ""}]
        return [{"rule": rule, "question": question} for rule, question in reasons]

    def _cell(self, cell, humans, judges):
        """One decided question: each rater's answer and the humans' agreement on it."""
        values = judged_values((a.answers for a in humans), cell)
        majority, provenance = settle(values)
        return {
            "cell": cell,
            "majority": majority,
            "provenance": provenance,
            "n_labels": len(values),
            "agreement": share(values, majority),
            "judges": [
                {"rater": a.rater.name, "order": a.order, "value": render_value(a.answers[cell])}
                for a in judges
                if cell in a.answers
            ],
        }

    def _questions(self, cells):
        """The labelling page's widgets for the decided cells, without `unable` (an item
        nobody can decide is marked so instead)."""
        page = LabellingPage(
            self.study, self.user, self.item, "", self.study.rubric_version, answers=self.answers
        )
        shown = [{"position": n, "key": r["key"]} for n, r in enumerate(self.item.responses, 1)]
        questions = []
        for q in page.questions(shown):
            if q["cell"] not in cells:
                continue
            q["choices"] = [c for c in q["choices"] if c["value"] != UNABLE]
            questions.append(q)
        return questions

    def _label(self, a):
        rank = {cell: i for i, cell in enumerate(self.rubric.cells(self.item.checklist))}
        cells = sorted(a.answers, key=lambda cell: (rank.get(cell, len(rank)), cell))
        return {
            "rater": a.rater.name,
            "order": a.order,
            "source": a.get_source_display(),
            "submitted_at": a.submitted_at,
            "active_seconds": a.active_seconds,
            "answers": [
                {
                    "cell": cell,
                    "value": render_value(a.answers[cell]),
                    "rationale": a.rationales.get(cell, ""),
                    "confidence": a.confidences.get(cell),
                }
                for cell in cells
            ],
        }
