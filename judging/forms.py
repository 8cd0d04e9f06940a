from django import forms

from judging import prompts
from judging.models import Judge


class RunForm(forms.Form):
    """The study page's request for a judge run: the same fields as the API's."""

    judge = forms.ModelChoiceField(
        queryset=Judge.objects.order_by("name"), to_field_name="name", empty_label=None
    )
    questions = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="The rubric's questions a judge can answer.",
    )
    both_orders = forms.BooleanField(
        required=False,
        label="Both orders",
        help_text="Ask pairwise questions with the responses in AB and in BA order, to measure "
        "position bias.",
    )

    def __init__(self, study, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rubric = study.rubric_version.parsed
        judgeable = [q for q in rubric.questions if q.type in prompts.DEFAULT_TEMPLATES]
        self.fields["questions"].choices = [(q.key, f"{q.key} ({q.type})") for q in judgeable]
        self.fields["questions"].initial = [q.key for q in judgeable]
        if not rubric.has("pairwise"):
            del self.fields["both_orders"]

    def run_request(self):
        """The cleaned request as planning.estimate and planning.start take it."""
        data = self.cleaned_data
        return {
            "judge": data["judge"],
            "questions": data["questions"],
            "both_orders": data.get("both_orders", False),
        }
