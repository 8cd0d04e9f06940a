"""The REST API of the annotation app: studies, their items and final labels, role-checked
per study."""

from django.db import transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from annotation import queue_rules
from annotation.access import get_study_for
from annotation.final_labels import PROVENANCES, final_labels
from annotation.models import Item, Study, StudyMembership
from annotation.signals import labels_settled
from quorum.pagination import CappedCursorPagination


@extend_schema_field(queue_rules.RULES_SCHEMA)
class RoutingRulesField(serializers.JSONField):
    """A study's routing rules: any JSON to DRF, the object check_rules takes to the schema."""


class StudySerializer(serializers.ModelSerializer):
    rubric = serializers.SerializerMethodField()
    routing_rules = RoutingRulesField(
        required=False, help_text=Study._meta.get_field("routing_rules").help_text
    )

    class Meta:
        model = Study
        fields = [
            "slug",
            "name",
            "instructions",
            "status",
            "overlap",
            "randomise_order",
            "hide_model_names",
            "gold_rate",
            "reservation_minutes",
            "rubric",
            "routing_rules",
            "created_at",
        ]
        read_only_fields = [f for f in fields if f != "routing_rules"]

    def validate_routing_rules(self, rules):
        try:
            queue_rules.check_rules(rules)
        except ValueError as e:
            raise ValidationError(str(e)) from None
        return rules

    def get_rubric(self, study) -> dict:
        version = study.rubric_version
        return {"version": version.number, **version.definition}


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = [
            "external_id",
            "prompt",
            "responses",
            "reference",
            "checklist",
            "metadata",
            "is_gold",
            "gold_answers",
        ]


class StudyList(generics.ListAPIView):
    """Studies the caller holds a role in."""

    serializer_class = StudySerializer

    def get_queryset(self):
        return Study.objects.visible_to(self.request.user).select_related("rubric").order_by("slug")


class StudyDetail(generics.RetrieveUpdateAPIView):
    """A study; its researchers and admins may change its routing rules (PATCH)."""

    serializer_class = StudySerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        role = StudyMembership.Role.ANNOTATOR
        if self.request.method == "PATCH":
            role = StudyMembership.Role.RESEARCHER
        return get_study_for(self.request, self.kwargs["slug"], role=role)

    def perform_update(self, serializer):
        with transaction.atomic():
            before = serializer.instance.routing_rules
            study = serializer.save()
            if study.routing_rules != before:
                # New rules can change where every item belongs: route the study again.
                labels_settled.send(sender=Study, study=study, items=None)


class ItemList(generics.ListAPIView):
    """A study's items with gold answers: for researchers and admins only."""

    serializer_class = ItemSerializer

    def get_queryset(self):
        request: Request = self.request
        study = get_study_for(request, self.kwargs["slug"], role=StudyMembership.Role.RESEARCHER)
        return study.items.order_by("position")


class FinalLabelSerializer(serializers.Serializer):
    """One row of the final-label CSV."""

    item = serializers.CharField()
    question = serializers.CharField()
    value = serializers.CharField()
    provenance = serializers.ChoiceField(PROVENANCES)
    n_labels = serializers.IntegerField()
    agreement = serializers.CharField(help_text="6 decimals; empty without a value or a label")
    routed = serializers.CharField(help_text='"rule:question" reasons joined by ";"')
    decided_by = serializers.CharField()
    decided_at = serializers.CharField(help_text="ISO 8601, empty when no expert decided")
    note = serializers.CharField()


class ItemCursorPagination(CappedCursorPagination):
    """Pages of items in import order."""

    ordering = "position"


class FinalLabelList(generics.ListAPIView):
    """A study's final labels with provenance, the rows of `page_size` items a page (item
    import order, then rubric order): for researchers and admins only."""

    serializer_class = FinalLabelSerializer
    pagination_class = ItemCursorPagination

    def get_queryset(self):
        request: Request = self.request
        self.study = get_study_for(
            request, self.kwargs["slug"], role=StudyMembership.Role.RESEARCHER
        )
        return self.study.items.only("pk", "position")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        rows = final_labels(self.study, self.study.items.filter(pk__in=[i.pk for i in page]))
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)
