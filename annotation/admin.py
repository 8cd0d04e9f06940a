from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from annotation.models import (
    Annotation,
    Item,
    Rater,
    RoutingDecision,
    Rubric,
    RubricVersion,
    Study,
    StudyMembership,
)
from annotation.rubrics import rubric_problems
from annotation.signals import labels_settled, labels_written


class MembershipInline(admin.TabularInline):
    model = StudyMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "status", "overlap", "created_at"]
    list_filter = ["status"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "routing_rules" in form.changed_data:
            labels_settled.send(sender=Study, study=obj, items=None)  # route it again


class RubricVersionInline(admin.TabularInline):
    model = RubricVersion
    extra = 0
    fields = ["number", "definition", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # new versions come from Rubric.revise, so old ones stay intact


class RubricAdminForm(forms.ModelForm):
    """A rubric with its questions: the admin cannot save one without (the model refuses it)."""

    definition = forms.JSONField(
        help_text='The rubric JSON, as in the README\'s "Rubric format". Editing a version '
        "that has labels makes a new version."
    )

    class Meta:
        model = Rubric
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["definition"].initial = self.instance.definition

    def clean_definition(self):
        problems = rubric_problems(self.cleaned_data["definition"])
        if problems:
            raise ValidationError([message for _, message in problems])
        if self.instance.pk is None:
            self.instance.definition = self.cleaned_data["definition"]  # version 1
        return self.cleaned_data["definition"]


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    form = RubricAdminForm
    list_display = ["name", "created_at"]
    inlines = [RubricVersionInline]

    def save_model(self, request, obj, form, change):
        obj.save()
        if change:
            obj.edit(form.cleaned_data["definition"])


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "study", "is_gold", "position", "routed_at"]
    list_filter = ["study", "is_gold", ("routed_at", admin.EmptyFieldListFilter)]
    search_fields = ["external_id"]
    list_select_related = ["study"]
    actions = ["route_to_experts", "return_to_annotators"]

    @admin.action(description="Send to the expert queue (annotators no longer get them)")
    def route_to_experts(self, request, queryset):
        n = self._move(request, queryset.filter(routed_at=None), routed=True)
        self.message_user(request, f"{n} items sent to the expert queue.")

    @admin.action(description="Return to annotators")
    def return_to_annotators(self, request, queryset):
        n = self._move(request, queryset.exclude(routed_at=None), routed=False)
        self.message_user(request, f"{n} items returned to annotators.")

    @staticmethod
    def _move(request, queryset, *, routed):
        """Route or un-route the items by hand, each change kept in the item's history."""
        now, by = timezone.now(), f"sent by {request.user.get_username()}"
        with transaction.atomic():
            pks = list(queryset.select_for_update().values_list("pk", flat=True))
            Item.objects.filter(pk__in=pks).update(
                routed_at=now if routed else None, routed_reason=by if routed else ""
            )
            RoutingDecision.objects.bulk_create(
                RoutingDecision(item_id=pk, routed=routed, by=by, created_at=now) for pk in pks
            )
        return len(pks)


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "family", "user"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["item", "rater", "order", "source", "is_current", "submitted_at"]
    list_filter = ["source", "is_current", "rater__kind"]
    list_select_related = ["item", "rater"]
    raw_id_fields = ["item", "rater", "rubric_version"]

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        Item.objects.filter(pk=obj.item_id).recount_labels()
        labels_written.send(sender=Annotation, study=obj.item.study)

    def delete_queryset(self, request, queryset):
        items = list(queryset.values_list("item_id", flat=True).distinct())
        studies = list(Study.objects.filter(items__in=items).distinct())
        super().delete_queryset(request, queryset)
        Item.objects.filter(pk__in=items).recount_labels()
        for study in studies:
            labels_written.send(sender=Annotation, study=study)
