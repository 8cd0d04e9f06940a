from django import forms
from django.contrib import admin

from annotation.models import Study, StudyMembership
from judging import prompts
from judging.access import may_configure_judges
from judging.models import Judge, JudgeRun, PromptTemplate


class JudgeForm(forms.ModelForm):
    """The API key can be set or replaced, never read back."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the stored key.",
    )

    class Meta:
        model = Judge
        fields = [
            "name",
            "base_url",
            "model",
            "api_key",
            "api_key_env",
            "temperature",
            "max_tokens",
            "max_concurrency",
            "requests_per_minute",
            "price_per_1k_input",
            "price_per_1k_output",
            "family",
        ]

    def clean_api_key(self):
        return self.cleaned_data["api_key"] or (self.instance.api_key if self.instance else "")


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    """Adding a judge needs `change_judge` too, as in the API: either points a key somewhere.
    A changed base URL clears the stored key unless a new one is given with it."""

    form = JudgeForm
    list_display = ["name", "model", "base_url", "family", "max_concurrency"]
    search_fields = ["name", "model"]

    def has_add_permission(self, request):
        return may_configure_judges(request.user)


class _OwnStudiesAdmin(admin.ModelAdmin):
    """Staff see and choose only the studies whose researchers or admins they are."""

    def _studies(self, request):
        return Study.objects.where_role(request.user, StudyMembership.Role.RESEARCHER)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(study__in=self._studies(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "study":
            kwargs["queryset"] = self._studies(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(JudgeRun)
class JudgeRunAdmin(_OwnStudiesAdmin):
    list_display = ["id", "study", "judge", "status", "both_orders", "created_at"]
    list_filter = ["status"]
    readonly_fields = [
        "study",
        "judge",
        "questions",
        "both_orders",
        "status",
        "error",
        "templates",
        "heartbeat_at",
        "finished_at",
    ]


def _fields_help():
    listed = "; ".join(
        f"{qtype}: {', '.join('{' + f + '}' for f in fields)}"
        for qtype, fields in prompts.FIELDS.items()
    )
    return f"Fields a template can use, by question type: {listed}. Write {{{{ and }}}} for braces."


@admin.register(PromptTemplate)
class PromptTemplateAdmin(_OwnStudiesAdmin):
    """A study's own judge prompts. A new one starts from the default text of its type
    (?question_type=likert in the add page's address picks which)."""

    list_display = ["study", "question_type", "updated_at"]
    list_filter = ["question_type"]
    list_select_related = ["study"]
    autocomplete_fields = ["study"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.base_fields["user"].help_text = _fields_help()
        if not change:
            form.base_fields["question_type"].help_text = (
                "The texts below are this type's default; to start from another type's, open "
                "this page as …/add/?question_type=likert (or checklist, binary, categorical)."
            )
        return form

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        qtype = initial.get("question_type")
        if qtype not in prompts.DEFAULT_TEMPLATES:
            qtype = initial["question_type"] = "pairwise"
        return {**prompts.DEFAULT_TEMPLATES[qtype], **initial}
