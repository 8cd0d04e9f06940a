import os

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Count, Func, IntegerField, Q, Sum

from annotation.models import Item, Rater, Study
from judging import prompts


class JSONArrayLength(Func):
    """The length of a JSON array column."""

    function = "JSON_ARRAY_LENGTH"  # SQLite's
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra)


NAME_CLASH = "another LLM rater has labels under this name"


def validate_key_env(name):
    """Only variables the operator listed may hold a judge's key: anything else in the
    server's environment (DATABASE_URL, SECRET_KEY, ...) would be sent to the judge's host."""
    if name and name not in settings.JUDGE_KEY_ENV_NAMES:
        allowed = ", ".join(settings.JUDGE_KEY_ENV_NAMES) or "none"
        raise ValidationError(
            f"{name!r} is not a variable judges may read their key from (JUDGE_KEY_ENV_NAMES "
            f"allows: {allowed})"
        )


class Judge(models.Model):
    """An LLM behind an OpenAI-compatible chat-completions endpoint, labelling as a rater.

    The API key is write-only: no page, API response, log line or export shows it.
    """

    name = models.CharField(max_length=150, unique=True)
    base_url = models.CharField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1",
    )
    model = models.CharField(max_length=200)
    api_key = models.CharField(max_length=500, blank=True)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_key_env],
        help_text="Or: the variable holding the key, one of JUDGE_KEY_ENV_NAMES.",
    )
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=512)
    max_concurrency = models.PositiveSmallIntegerField(default=8)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    price_per_1k_input = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    price_per_1k_output = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    family = models.CharField(
        max_length=100, blank=True, help_text="Model family, for self-preference (e.g. gpt)."
    )
    rater = models.OneToOneField(Rater, on_delete=models.PROTECT, related_name="judge")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    def __repr__(self):
        return f"<Judge {self.name} {self.model} at {self.base_url}>"  # never the key

    def save(self, *args, **kwargs):
        stored = getattr(self, "_stored", {})
        if self.base_url != stored.get("base_url", self.base_url) and self.api_key == stored.get(
            "api_key"
        ):
            # A stored key belongs to the host it was given for: it never follows a new one.
            self.api_key = ""
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "api_key"}
        if self.rater_id is None:
            self.rater, _ = Rater.objects.get_or_create(kind=Rater.Kind.LLM, name=self.name)
        # Its labels go by its name (exports, reports), and calibration reads the family from
        # the rater (it does not import judging).
        changed = [f for f in ("name", "family") if getattr(self.rater, f) != getattr(self, f)]
        for f in changed:
            setattr(self.rater, f, getattr(self, f))
        if changed:
            self.rater.save(update_fields=changed)
        super().save(*args, **kwargs)
        self._stored = {"base_url": self.base_url, "api_key": self.api_key}

    @classmethod
    def from_db(cls, db, field_names, values):
        """Remembers what was stored, so that save can tell a new base_url from the old."""
        judge = super().from_db(db, field_names, values)
        judge._stored = {f: getattr(judge, f) for f in ("base_url", "api_key") if f in field_names}
        return judge

    def clean(self):
        if self.name_clashes(self.name):
            raise ValidationError({"name": NAME_CLASH})

    def name_clashes(self, name):
        """Whether `name` is another LLM rater's (one of imported labels): renamed so, the
        judge's labels would mix with that rater's. A new judge of such a name labels as it."""
        others = Rater.objects.filter(kind=Rater.Kind.LLM, name=name).exclude(pk=self.rater_id)
        return self.rater_id is not None and others.exists()

    def secret(self):
        """The API key to send, from the database or the named environment variable.

        The variable is checked again here: a judge saved before JUDGE_KEY_ENV_NAMES was
        narrowed must not read what it no longer names.
        """
        if self.api_key:
            return self.api_key
        if not self.api_key_env:
            return ""
        validate_key_env(self.api_key_env)
        return os.environ.get(self.api_key_env, "")


class JudgeRun(models.Model):
    """A study's items judged by one judge on some questions, in one or both orders."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="judge_runs")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="runs")
    questions = models.JSONField(help_text="Question keys of the rubric to judge.")
    both_orders = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    templates = models.JSONField(
        default=dict,
        blank=True,
        help_text="The study's prompt templates when the run was planned, so a resumed run "
        "asks the same.",
    )
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.judge} on {self.study} ({self.status})"

    @property
    def orders(self):
        return ["AB", "BA"] if self.both_orders else ["AB"]

    @property
    def is_live(self):
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @staticmethod
    def check_questions(study, questions=None):
        """The question keys a run of the study asks: `questions`, or all a judge answers.

        Raises ValueError naming an unknown or free-text question, so that a run is refused
        before it is planned, estimated or started.
        """
        rubric = study.rubric_version.parsed
        judgeable = tuple(prompts.DEFAULT_TEMPLATES)
        keys = list(questions or [q.key for q in rubric.questions if q.type in judgeable])
        for key in keys:
            q = rubric.question(key)
            if q is None:
                raise ValueError(f"the rubric has no question {key!r} ({', '.join(rubric.keys)})")
            if q.type not in judgeable:
                raise ValueError(
                    f"question {key!r} is free text; judges answer {', '.join(judgeable)}"
                )
        if not keys:
            raise ValueError("the rubric has no question a judge can answer")
        return keys

    def progress(self):
        """Done, failed and remaining requests, tokens and cost so far."""
        totals = self.verdicts.aggregate(
            done=Count("id", filter=Q(error="")),
            failed=Count("id", filter=~Q(error="")),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
        )
        planned = self.planned_requests()
        prompt, completion = totals["prompt_tokens"] or 0, totals["completion_tokens"] or 0
        cost = (
            prompt * self.judge.price_per_1k_input + completion * self.judge.price_per_1k_output
        ) / 1000
        return {
            "status": self.status,
            "planned": planned,
            "done": totals["done"],
            "failed": totals["failed"],
            "remaining": max(planned - totals["done"] - totals["failed"], 0),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": float(cost),
        }

    def planned_requests(self):
        """Requests of the whole run, counted per kind of item (its checklist and how many
        responses it has), as the database groups them: no item's text is read."""
        kinds = (
            self.study.items.order_by()
            .values("checklist", n_responses=JSONArrayLength("responses"))
            .annotate(items=Count("pk"))
        )
        return sum(
            kind["items"] * len(cells)
            for kind in kinds
            for _, cells in self._requests(kind["checklist"], kind["n_responses"])
        )

    def requests_for(self, item):
        """[(order, question cells)] to ask about an item.

        Pairwise questions are asked in each order of the run; the others once, about the
        item's first response, with no order.
        """
        return self._requests(item.checklist, len(item.responses))

    def _requests(self, checklist, responses):
        rubric = self.study.rubric_version.parsed
        pairwise = {q.key for q in rubric.questions if q.type == "pairwise"}
        cells = list(rubric.cells(checklist, keys=self.questions))
        paired = [c for c in cells if c in pairwise and responses == 2]
        single = [c for c in cells if c not in paired]
        asks = [(order, paired) for order in self.orders if paired]
        return [*asks, ("", single)] if single else asks


class Verdict(models.Model):
    """One reply of a judge: what it said, what that means in rubric terms, what it cost."""

    INVALID = "invalid"

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="verdicts")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="verdicts")
    question = models.CharField(max_length=100, help_text="The label CSV question cell.")
    order = models.CharField(max_length=2, blank=True)
    value = models.CharField(max_length=500, blank=True, help_text="'invalid' if unparseable.")
    raw = models.TextField(blank=True)
    rationale = models.TextField(blank=True, help_text="The reply's reasoning before its verdict.")
    confidence = models.FloatField(null=True, blank=True)
    latency = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=1)
    error = models.TextField(blank=True, help_text="Why no reply came, after every retry.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "item", "question", "order"], name="one_verdict_per_request"
            )
        ]

    def __str__(self):
        return f"{self.run.judge} on {self.item} {self.question} {self.order}: {self.value}"


class PromptTemplate(models.Model):
    """A study's own prompt for one question type, replacing the default of judging.prompts.

    Stored complete (both parts), so that an empty system text means "no system message"
    rather than "the default"; always valid for `prompts.messages_for`.
    """

    TYPES = [(t, t) for t in prompts.DEFAULT_TEMPLATES]

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prompt_templates")
    question_type = models.CharField(max_length=20, choices=TYPES)
    system = models.TextField(blank=True, help_text="Empty: the judge gets no system message.")
    user = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "question_type"], name="one_prompt_template_per_question_type"
            )
        ]

    def __str__(self):
        return f"{self.question_type} prompt of {self.study}"

    def clean(self):
        try:
            prompts.check_template(self.question_type, {"system": self.system, "user": self.user})
        except ValueError as e:
            raise ValidationError(str(e)) from None

    @classmethod
    def study_templates(cls, study):
        """The study's templates in the shape `prompts.messages_for(..., templates=)` takes:
        {question_type: {"system": ..., "user": ...}}; types not listed keep the default."""
        rows = cls.objects.filter(study=study).values_list("question_type", "system", "user")
        return {qtype: {"system": system, "user": user} for qtype, system, user in rows}
