"""The REST API of judging: judges, a study's judge runs and prompt templates.

Judges are configured by those with the right to (see judging.access); runs and templates
are for the study's researchers and admins. No endpoint here returns a verdict or a judge's
API key.
"""

import re

from django.db.models import ProtectedError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from annotation.access import get_study_for
from annotation.models import StudyMembership
from judging import planning, prompts, work
from judging.access import JudgePermission
from judging.models import NAME_CLASH, Judge, JudgeRun, PromptTemplate
from quorum import api_fields
from quorum.api_errors import DETAIL, Conflict

PRICE = r"^\d{1,4}(\.\d{1,6})?$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": PRICE, "example": "0.5"})
class PriceField(serializers.DecimalField):
    """Dollars per 1,000 tokens, as a string such as "0.5": never negative, and held to the
    pattern the schema publishes (DRF's field would also take "1e2", " 1" or a JSON number)."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=10, decimal_places=6, **kwargs)

    def to_internal_value(self, data):
        if not (isinstance(data, str) and re.fullmatch(PRICE, data)):
            self.fail("invalid")
        return super().to_internal_value(data)


class JudgeSerializer(api_fields.ModelSerializer):
    price_per_1k_input = PriceField(required=False)
    price_per_1k_output = PriceField(required=False)
    api_key = api_fields.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=500,
        style={"input_type": "password"},
        help_text='Write-only. Sets or replaces the key; left out, the stored key stays; "" '
        "removes it.",
    )
    has_api_key = serializers.SerializerMethodField()

    class Meta:
        model = Judge
        fields = [
            "id",
            "name",
            "base_url",
            "model",
            "api_key",
            "has_api_key",
            "api_key_env",
            "temperature",
            "max_tokens",
            "max_concurrency",
            "requests_per_minute",
            "price_per_1k_input",
            "price_per_1k_output",
            "family",
            "created_at",
        ]
        extra_kwargs = {
            "name": {"min_length": 1},  # blank was refused already; now the schema says so
            "model": {"min_length": 1},
            "max_tokens": {"min_value": 1},
            "max_concurrency": {"min_value": 1},
            "requests_per_minute": {"min_value": 1},
            "temperature": {"min_value": 0},
        }

    def get_has_api_key(self, judge) -> bool:
        return bool(judge.api_key)

    def validate_name(self, name):
        if self.instance is not None and self.instance.name_clashes(name):
            raise serializers.ValidationError(NAME_CLASH)
        return name


class ProgressSerializer(serializers.Serializer):
    # Not an enum in the schema: the run's own `status` is, and one enum per name is clearer.
    status = serializers.CharField(help_text="The run's status, as in the run's `status`.")
    planned = serializers.IntegerField(help_text="Requests the run asks in all.")
    done = serializers.IntegerField(help_text="Requests answered.")
    failed = serializers.IntegerField(help_text="Requests that failed after every retry.")
    remaining = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.FloatField(help_text="So far, from the judge's prices per 1,000 tokens.")


class JudgeRunSerializer(serializers.ModelSerializer):
    judge = serializers.SlugRelatedField(slug_field="name", read_only=True)
    progress = ProgressSerializer(read_only=True)

    class Meta:
        model = JudgeRun
        fields = [
            "id",
            "judge",
            "questions",
            "both_orders",
            "status",
            "error",
            "created_at",
            "finished_at",
            "progress",
        ]


class RunRequestSerializer(serializers.Serializer):
    judge = api_fields.SlugRelatedField(
        slug_field="name", queryset=Judge.objects.all(), help_text="The judge's name."
    )
    questions = serializers.ListField(
        child=api_fields.CharField(),
        required=False,
        help_text="Rubric question keys; left out or empty, every question a judge answers.",
    )
    both_orders = api_fields.BooleanField(
        default=False, help_text="Ask pairwise questions in AB and in BA order."
    )


class EstimateSerializer(serializers.Serializer):
    planned = serializers.IntegerField(help_text="Requests the run would ask.")
    prompt_chars = serializers.IntegerField(help_text="Characters of all its rendered prompts.")
    prompt_tokens = serializers.IntegerField()
    tokens_per_char = serializers.FloatField()
    tokens_per_char_measured_on = serializers.IntegerField(
        help_text="Earlier verdicts of this judge the rate was measured on; 0: 4 chars/token."
    )
    completion_tokens_max = serializers.IntegerField(help_text="max_tokens for every request.")
    completion_tokens_expected = serializers.IntegerField(
        allow_null=True, help_text="From the judge's earlier replies; null without any."
    )
    cost_max = serializers.FloatField()
    cost_expected = serializers.FloatField(allow_null=True)


class PromptTemplateSerializer(serializers.Serializer):
    question_type = serializers.CharField(read_only=True)
    system = api_fields.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Left out: the default. Empty: no system message.",
    )
    user = api_fields.CharField(
        required=False, min_length=1, trim_whitespace=False, help_text="Left out: the default."
    )
    is_default = serializers.BooleanField(read_only=True)
    template_fields = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The {fields} it can use."
    )

    def validate(self, attrs):
        try:
            return prompts.check_template(self.context["question_type"], attrs)
        except ValueError as e:
            raise ValidationError(str(e)) from None


def _study(request, slug):
    """The study, unless the user is not one of its researchers or admins (404, as on the
    study page): annotators never see what a judge said."""
    return get_study_for(request, slug, role=StudyMembership.Role.RESEARCHER)


def _template_data(question_type, template=None):
    return {
        "question_type": question_type,
        **(template or prompts.DEFAULT_TEMPLATES[question_type]),
        "is_default": template is None,
        "template_fields": list(prompts.FIELDS[question_type]),
    }


class JudgeList(generics.ListCreateAPIView):
    """LLM judges. A judge holds a provider key and spends money: reading them needs the
    `judging.view_judge` permission, adding one `judging.change_judge` (or a superuser)."""

    permission_classes = [JudgePermission]
    serializer_class = JudgeSerializer
    queryset = Judge.objects.order_by("name")


class JudgeDetail(generics.RetrieveUpdateDestroyAPIView):
    """One judge. A new `base_url` clears the stored key unless `api_key` comes with it."""

    permission_classes = [JudgePermission]
    serializer_class = JudgeSerializer
    queryset = Judge.objects.all()

    @extend_schema(
        responses={204: None, 409: OpenApiResponse(DETAIL, description="The judge has runs.")}
    )
    def delete(self, request, *args, **kwargs):
        return super().delete(request, *args, **kwargs)

    def perform_destroy(self, judge):
        try:
            judge.delete()
        except ProtectedError:
            raise Conflict(f"judge {judge.name!r} has runs; their verdicts need it") from None


class JudgeRunList(generics.ListAPIView):
    """A study's judge runs with their progress, newest first; POST starts one."""

    serializer_class = JudgeRunSerializer

    def get_queryset(self):
        study = _study(self.request, self.kwargs["slug"])
        return study.judge_runs.select_related("judge", "study__rubric").order_by("-created_at")

    @extend_schema(request=RunRequestSerializer, responses={201: JudgeRunSerializer})
    def post(self, request, slug):
        study = _study(request, slug)
        asked = RunRequestSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            run = planning.start(study, **asked.validated_data)
        except work.RunError as e:
            raise ValidationError({"questions": [str(e)]}) from None
        return Response(JudgeRunSerializer(run).data, status=status.HTTP_201_CREATED)


class _StudyRunView(generics.GenericAPIView):
    serializer_class = JudgeRunSerializer

    def get_object(self):
        study = _study(self.request, self.kwargs["slug"])
        runs = study.judge_runs.select_related("judge", "study__rubric")
        return get_object_or_404(runs, pk=self.kwargs["pk"])


class JudgeRunDetail(_StudyRunView):
    """One run's status and progress: requests done, failed and left, tokens, cost so far."""

    def get(self, request, slug, pk):
        return Response(self.get_serializer(self.get_object()).data)


class JudgeRunCancel(_StudyRunView):
    """Stop a queued or running run: requests in flight finish, no new ones start."""

    @extend_schema(
        request=None,
        responses={
            200: JudgeRunSerializer,
            409: OpenApiResponse(DETAIL, description="Already over."),
        },
    )
    def post(self, request, slug, pk):
        run = self.get_object()
        if not run.is_live:
            raise Conflict(f"run {run.pk} is {run.status}; only queued or running runs stop")
        work.cancel(run)
        run.refresh_from_db()
        return Response(JudgeRunSerializer(run).data)


class JudgeRunEstimate(generics.GenericAPIView):
    """What a run would ask and cost, before starting it: the body is that of a start."""

    serializer_class = RunRequestSerializer

    @extend_schema(request=RunRequestSerializer, responses={200: EstimateSerializer})
    def post(self, request, slug):
        study = _study(request, slug)
        asked = self.get_serializer(data=request.data)
        asked.is_valid(raise_exception=True)
        try:
            estimate = planning.estimate(study, **asked.validated_data)
        except work.RunError as e:
            raise ValidationError({"questions": [str(e)]}) from None
        return Response(EstimateSerializer(estimate).data)


class PromptTemplateList(generics.GenericAPIView):
    """The prompt of every question type a judge answers: the study's own, or the default."""

    serializer_class = PromptTemplateSerializer
    pagination_class = None

    @extend_schema(responses={200: PromptTemplateSerializer(many=True)})
    def get(self, request, slug):
        study = _study(request, slug)
        own = PromptTemplate.study_templates(study)
        return Response([_template_data(t, own.get(t)) for t in prompts.DEFAULT_TEMPLATES])


@extend_schema(
    parameters=[
        OpenApiParameter(
            "question_type",
            OpenApiTypes.STR,
            OpenApiParameter.PATH,
            enum=list(prompts.DEFAULT_TEMPLATES),
        )
    ]
)
class PromptTemplateDetail(generics.GenericAPIView):
    """A study's prompt for one question type. PUT checks it (an unknown {field} is a 400
    naming it) and stores it complete; DELETE brings back the default."""

    serializer_class = PromptTemplateSerializer

    def get(self, request, slug, question_type):
        study, question_type = self.get_object()
        own = PromptTemplate.study_templates(study).get(question_type)
        return Response(_template_data(question_type, own))

    def put(self, request, slug, question_type):
        study, question_type = self.get_object()
        asked = self.get_serializer(data=request.data)
        asked.is_valid(raise_exception=True)
        template = {part: asked.validated_data[part] for part in prompts.TEMPLATE_PARTS}
        PromptTemplate.objects.update_or_create(
            study=study, question_type=question_type, defaults=template
        )
        return Response(_template_data(question_type, template))

    @extend_schema(responses={204: None})
    def delete(self, request, slug, question_type):
        study, question_type = self.get_object()
        PromptTemplate.objects.filter(study=study, question_type=question_type).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "question_type": self.kwargs["question_type"]}

    def get_object(self):
        """The study and the question type of the URL, 404 unless the caller is one of the
        study's researchers and judges answer that type. OPTIONS calls it too, to learn
        whether to describe PUT; a template is no model instance, so there is no queryset."""
        study = _study(self.request, self.kwargs["slug"])
        question_type = self.kwargs["question_type"]
        if question_type not in prompts.DEFAULT_TEMPLATES:
            raise NotFound(f"judges answer no {question_type!r} questions")
        return study, question_type
