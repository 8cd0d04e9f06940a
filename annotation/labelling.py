"""What the labelling page shows for one item, and how its form reads back into answers.

The responses appear in the order the annotator was given (AB or BA); buttons name them by
position ("Response 1"), while the values they send name the original responses, so that a
label always means the same whatever the order shown. A strength row follows a pairwise
question that asks for one; it grades the response chosen, so it needs no such mapping.
"""

import uuid

from annotation.models import Study
from annotation.rubrics import MULTI_SEPARATOR, STRENGTH_SUFFIX, TIE, UNABLE

FIELD_PREFIX = "q:"


class LabellingPage:
    def __init__(
        self,
        study,
        user,
        item,
        order,
        rubric_version,
        *,
        answers=None,
        revising=False,
        error="",
        ticket="",
    ):
        self.study = study
        self.user = user
        self.item = item
        self.order = order
        self.rubric = rubric_version.parsed
        self.answers = answers or {}
        self.revising = revising
        self.error = error
        self.ticket = ticket

    def item_context(self):
        """What the item and its questions need (the rubric builder's preview shows these)."""
        shown = self.shown_responses()
        return {
            "study": self.study,
            "item": self.item,
            "order": self.order,
            "responses": shown,
            "show_reference": bool(self.item.reference),
            "questions": list(self.questions(shown)),
        }

    def context(self):
        labelled = self.study.labels_by(self.user)
        # The item labelled before this one: from a revised item, the one before it, so that
        # going back walks through them all.
        earlier = labelled.exclude(item=self.item)
        if self.revising:
            mine = labelled.filter(item=self.item).values_list("submitted_at", flat=True)
            if since := mine.first():
                earlier = earlier.filter(submitted_at__lt=since)
        previous = (
            earlier.order_by("-submitted_at").values_list("item__external_id", flat=True).first()
        )
        return {
            **self.item_context(),
            "submission_id": uuid.uuid4(),
            "ticket": self.ticket,
            "labelled": labelled.count(),
            "target": self.study.items_per_annotator,
            "total": self.study.item_count(),
            "previous": previous,
            "revising": self.revising,
            "read_only": self.study.status != Study.Status.OPEN,
            "error": self.error,
        }

    def shown_responses(self):
        by_key = {r["key"]: r for r in self.item.responses}
        keys = list(self.order) if self.order else list(by_key)
        return [
            {
                "position": n,
                "key": key,
                "text": by_key[key]["text"],
                "model": "" if self.study.hide_model_names else by_key[key]["model"],
            }
            for n, key in enumerate(keys, 1)
        ]

    def questions(self, shown):
        """One entry per answerable cell: its options and their keyboard keys."""
        for q in self.rubric.questions:
            if q.type == "checklist":
                for i, text in enumerate(q.checklist_for(self.item.checklist)):
                    options = [("yes", "Yes", "y"), ("no", "No", "n"), ("na", "N/A", "x")]
                    yield self._question(q, f"{q.key}[{i}]", text, options)
                continue
            if q.type == "pairwise":
                options = [
                    (r["key"], f"Response {r['position']} is better", str(r["position"]))
                    for r in shown
                ]
                if q.allow_tie:
                    options.append((TIE, "Tie", str(len(shown) + 1)))
            elif q.type == "likert":
                options = [
                    (str(n), q.labels.get(str(n), str(n)), str(n) if q.scale <= 9 else "")
                    for n in range(1, q.scale + 1)
                ]
            elif q.type == "binary":
                options = [("yes", "Yes", "y"), ("no", "No", "n")]
            elif q.type == "categorical":
                options = [(c, c, str(n) if n <= 9 else "") for n, c in enumerate(q.choices, 1)]
            else:
                options = []
            yield self._question(q, q.key, q.prompt, options)
            if q.strength:
                yield self._strength(q)

    def _question(self, q, cell, prompt, options):
        current = self.answers.get(cell)
        chosen = set(current if isinstance(current, list) else [str(current)]) if current else set()
        choices = [
            {"value": value, "label": label, "key": key, "checked": value in chosen}
            for value, label, key in options
        ]
        if q.allow_unable:
            choices.append(
                {
                    "value": UNABLE,
                    "label": "Unable to assess",
                    "key": "u",
                    "checked": UNABLE in chosen,
                }
            )
        return {
            "cell": cell,
            "field": FIELD_PREFIX + cell,
            "type": q.type,
            "prompt": prompt,
            "required": q.required,
            "multiple": q.type == "categorical" and q.multiple,
            "choices": choices,
            "text": current if q.type == "text" and isinstance(current, str) else "",
        }

    def _strength(self, q):
        """The strength row of a pairwise question; the page's script shows it only while
        the answer names a response."""
        current = str(self.answers.get(q.strength_cell, ""))
        return {
            "cell": q.strength_cell,
            "field": FIELD_PREFIX + q.strength_cell,
            "type": "strength",
            "prompt": "How much better is the response you chose?",
            "required": q.required,
            "multiple": False,
            "choices": [
                {"value": str(n), "label": label, "key": str(n), "checked": current == str(n)}
                for n, label in enumerate(q.strength, 1)
            ],
            "text": "",
            "strength_of": FIELD_PREFIX + q.key,
        }

    @staticmethod
    def answers_from(post):
        """The form's answers keyed by question cell, as the label CSV would write them.

        A strength still checked after the answer changed to a tie is no answer: without
        the page's script, which disables the row, a radio button cannot be unchecked.
        """
        answers = {}
        for field in post:
            if field.startswith(FIELD_PREFIX):
                values = [v for v in post.getlist(field) if v != ""]
                if values:
                    answers[field.removeprefix(FIELD_PREFIX)] = MULTI_SEPARATOR.join(values)
        for cell in [c for c in answers if c.endswith(STRENGTH_SUFFIX)]:
            if answers.get(cell.removesuffix(STRENGTH_SUFFIX)) in (None, TIE, UNABLE):
                del answers[cell]
        return answers
