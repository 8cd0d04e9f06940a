"""The forms of setting a study up: its settings (one page for a new study and for editing
one, each field checked with its message beside it, the routing rules one field per rule),
its questions as JSON, the people invited to it, and the files uploaded to it."""

import json

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from annotation import people, queue_rules
from annotation.models import Study, StudyMembership, Upload
from annotation.people import PeopleError
from annotation.rubrics import text_problems

RULE_LABELS = {
    "no_majority": "No majority among the human labels",
    "low_agreement": "Human agreement below (share giving the most frequent value)",
    "judge_conflict": "A judge disagrees with the human majority",
    "judge_inconsistent": "A judge changes its verdict when the order is swapped",
    "low_confidence": "A judge's confidence below",
    "unable": 'Someone answered "unable to assess"',
    "gold_miss": "The majority misses a gold answer",
}
RESERVED_SLUGS = {"new", "markdown-preview"}  # addresses under /studies/ of their own


def _formfield(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"  # a platform's return address is https
    return field.formfield(**kwargs)


class StudyForm(forms.ModelForm):
    """A study's settings. A new study also takes its slug; the slug never changes after,
    since the crowd link and every export carry it."""

    class Meta:
        model = Study
        formfield_callback = _formfield
        fields = ["slug", *(name for name in Study.SETTINGS if name != "routing_rules")]
        widgets = {"instructions": forms.Textarea(attrs={"rows": 8, "data-markdown": ""})}
        help_texts = {
            "slug": "Letters, digits, - and _: the study's address, fixed once created.",
            "gold_pause_below": "Pause an annotator whose gold accuracy falls below this "
            "share (0: never). Quality control flags speeders and straight-liners on the "
            "study page.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["overlap"].validators.append(MinValueValidator(1))
        shares = ("gold_rate", "qualification_accuracy", "gold_pause_below")
        for name in (*shares, "speeder_share", "straight_line_share"):
            self.fields[name].validators += [MinValueValidator(0), MaxValueValidator(1)]
        if self.instance.pk:
            del self.fields["slug"]
        for rule in queue_rules.RULES:
            current = (self.instance.routing_rules or {}).get(rule, False)
            if rule in queue_rules.THRESHOLD_RULES:
                self.fields[f"rule_{rule}"] = forms.FloatField(
                    label=RULE_LABELS[rule],
                    required=False,
                    min_value=0,
                    max_value=1,
                    initial=current or None,
                    help_text="A share in (0, 1]; empty: off.",
                )
            else:
                self.fields[f"rule_{rule}"] = forms.BooleanField(
                    label=RULE_LABELS[rule], required=False, initial=bool(current)
                )

    @property
    def rule_fields(self):
        return [self[f"rule_{rule}"] for rule in queue_rules.RULES]

    @property
    def setting_fields(self):
        return [f for f in self if not f.name.startswith("rule_")]

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if slug in RESERVED_SLUGS:
            raise ValidationError(f"{slug!r} is reserved; choose another.")
        return slug

    def clean(self):
        cleaned = super().clean()
        rules = {}
        for rule in queue_rules.RULES:
            value = cleaned.get(f"rule_{rule}")
            if rule in queue_rules.THRESHOLD_RULES:
                if value == 0:
                    self.add_error(f"rule_{rule}", "Must be above 0; leave it empty for off.")
                rules[rule] = value if value else False
            else:
                rules[rule] = bool(value)
        self.instance.routing_rules = queue_rules.check_rules(rules)
        return cleaned

    def changes(self, before):
        """(setting, before, after) of each setting this form changed, for the audit log;
        `before` is the study's settings as read before the form was bound."""
        after = settings_of(self.instance)
        return [(name, before[name], after[name]) for name in after if before[name] != after[name]]


def settings_of(study):
    """A study's settings as the audit log writes them."""
    values = {name: getattr(study, name) for name in Study.SETTINGS}
    values["routing_rules"] = queue_rules.check_rules(study.routing_rules or {})
    return values


class RubricForm(forms.Form):
    """A rubric definition as JSON text (the README format), every problem listed at once."""

    definition = forms.CharField(widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}))

    def clean_definition(self):
        text = self.cleaned_data["definition"]
        self.problems = text_problems(text)
        if self.problems:
            raise ValidationError([f"line {p['line']}: {p['message']}" for p in self.problems])
        return json.loads(text)


class InviteForm(forms.Form):
    """People to invite to a study: every name checked, one bad line refuses them all."""

    names = forms.CharField(
        label="User names or e-mail addresses",
        help_text="One per line, or separated by commas. An e-mail address of someone without "
        "an account becomes their user name.",
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": "Paste at least one user name or e-mail address."},
    )
    role = forms.ChoiceField(
        choices=StudyMembership.Role.choices, initial=StudyMembership.Role.ANNOTATOR
    )
    days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=90,
        initial=people.DEFAULT_EXPIRY_DAYS,
    )

    def clean_names(self):
        try:
            return people.parse_names(self.cleaned_data["names"])
        except PeopleError as e:
            raise forms.ValidationError(str(e)) from None


class UploadForm(forms.Form):
    """An items or labels file to upload, and whether it replaces what has the same ids."""

    kind = forms.ChoiceField(
        choices=Upload.Kind.choices, initial=Upload.Kind.ITEMS, widget=forms.RadioSelect
    )
    file = forms.FileField(help_text="Items: .jsonl or .csv. Labels: the long .csv. UTF-8.")
    update = forms.BooleanField(
        required=False,
        label="Update existing",
        help_text="Replace items with the same external_id, and labels a rater gave before "
        "(the old ones stay as history); without it, those are errors.",
    )
