import itertools
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from annotation import queue_rules
from annotation.rubrics import parse_rubric


def _new_token():
    return secrets.token_urlsafe(24)


def _new_completion_code():
    return secrets.token_hex(4).upper()


class StudyQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Studies the user holds any role in (all of them for site superusers)."""
        if user.is_superuser:
            return self
        return self.filter(memberships__user=user)

    def where_role(self, user, role):
        """Studies in which the user holds `role` or one that may do more (all of them for
        site superusers), as has_role decides for one study."""
        if user.is_superuser:
            return self
        least = StudyMembership.RANK[role]
        ranked = [r for r, rank in StudyMembership.RANK.items() if rank >= least]
        return self.filter(memberships__user=user, memberships__role__in=ranked)

    def get_for(self, slug, user):
        """The study, with its rubric and the user's membership read in the same query for
        a member (see Study.membership_of); DoesNotExist when there is no such study."""
        if user.is_authenticated:
            membership = (
                StudyMembership.objects.select_related("study__rubric")
                .filter(study__slug=slug, user=user)
                .first()
            )
            if membership:
                membership.study.__dict__["_memberships"] = {user.pk: membership}
                return membership.study
        return self.select_related("rubric").get(slug=slug)

    def create_with_rubric(self, *, slug, name, rubric, **fields):
        """Create a study with a new rubric from its JSON definition (both validated first)."""
        Study(slug=slug).clean_fields(
            exclude=[f.name for f in Study._meta.fields if f.name != "slug"]
        )
        parsed = parse_rubric(rubric)
        with transaction.atomic():
            new_rubric = Rubric.objects.create(name=parsed.name, definition=rubric)
            return self.create(slug=slug, name=name or parsed.name, rubric=new_rubric, **fields)


class StudyStatusError(Exception):
    """A change of a study's status that its lifecycle does not allow; the message says why."""


ITEM_COUNT_SECONDS = 60  # how long a study's item count is kept; items deleted show after it


def forget_item_count(sender, study, **kwargs):
    """signals.labels_written by an items import: the count is asked again, now (for this
    transaction) and once it commits (for everyone)."""
    key = _item_count_key(study)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _item_count_key(study):
    return f"quorum:item-count:{study.pk}:{study.created_at.timestamp()}"


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        PAUSED = "paused"
        CLOSED = "closed"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown, shown to annotators.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    rubric = models.ForeignKey("Rubric", on_delete=models.PROTECT, related_name="studies")
    overlap = models.PositiveSmallIntegerField(
        default=3, help_text="Distinct human labels each item needs."
    )
    randomise_order = models.BooleanField(default=True)
    hide_model_names = models.BooleanField(default=True)
    gold_rate = models.FloatField(default=0.0, help_text="Share of gold items (0 to 1).")
    reservation_minutes = models.PositiveSmallIntegerField(default=30)
    items_per_annotator = models.PositiveIntegerField(
        default=0,
        help_text="Items each annotator labels, then gets the completion code (0: all they can).",
    )
    join_token = models.CharField(
        max_length=64, default=_new_token, help_text="The secret in the study's join link."
    )
    worker_id_param = models.CharField(
        max_length=64,
        default="worker_id",
        help_text="Query parameter of the join link that carries the worker id "
        "(e.g. PROLIFIC_PID).",
    )
    completion_code = models.CharField(max_length=32, default=_new_completion_code)
    qualification_gold_items = models.PositiveSmallIntegerField(
        default=0, help_text="Gold items an annotator answers first, to qualify (0: none)."
    )
    qualification_accuracy = models.FloatField(
        default=0.8, help_text="Share of the qualification gold items to answer right."
    )
    gold_pause_below = models.FloatField(
        default=0.0,
        help_text="Pause an annotator whose gold accuracy falls below this (0: never).",
    )
    speeder_share = models.FloatField(
        default=0.3,
        help_text="Flag an annotator whose median time per item is under this share of the "
        "study's median (0: never).",
    )
    straight_line_share = models.FloatField(
        default=0.9,
        help_text="Flag an annotator who gives the same answer this share of the time or more "
        "(1: only always).",
    )
    routing_rules = models.JSONField(
        default=queue_rules.default_rules,
        blank=True,
        help_text='Disagreements that send an item to the expert queue, e.g. {"no_majority": '
        'true, "low_agreement": 0.7}; false or absent is off, a number is the threshold.',
    )
    return_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="Where the done page sends a worker who finished, e.g. Prolific's "
        "https://app.prolific.com/submissions/complete?cc=CODE (empty: the page shows the "
        "completion code only).",
    )
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="Archived: listed apart on the studies home."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = StudyQuerySet.as_manager()

    # What a researcher sets, as the settings page edits and a clone copies it.
    SETTINGS = (
        "name",
        "instructions",
        "overlap",
        "items_per_annotator",
        "randomise_order",
        "hide_model_names",
        "reservation_minutes",
        "gold_rate",
        "qualification_gold_items",
        "qualification_accuracy",
        "gold_pause_below",
        "speeder_share",
        "straight_line_share",
        "completion_code",
        "return_url",
        "worker_id_param",
        "routing_rules",
    )
    NOT_CLONED = ("name", "completion_code", "return_url")
    NEXT_STATUSES = {
        Status.DRAFT: {Status.OPEN},
        Status.OPEN: {Status.PAUSED, Status.CLOSED},
        Status.PAUSED: {Status.OPEN, Status.CLOSED},
        Status.CLOSED: set(),
    }

    class Meta:
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="gold_rate_0_1"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="overlap_at_least_1"),
        ]

    def __str__(self):
        return self.slug

    def clean(self):
        try:
            queue_rules.check_rules(self.routing_rules)
        except ValueError as e:
            raise ValidationError({"routing_rules": str(e)}) from None

    @cached_property
    def rubric_version(self):
        """The version new labels are written against: the rubric's latest."""
        return self.rubric.versions.order_by("-number").first()

    def item_count(self):
        """How many items the study has, kept in the cache for ITEM_COUNT_SECONDS: counting
        100,000 items took 70 ms, too long for every label page. An items import drops it
        at once (`forget_item_count`)."""
        return cache.get_or_set(_item_count_key(self), self.items.count, ITEM_COUNT_SECONDS)

    def progress(self):
        """Counts a researcher watches: items, how many have all their human labels, labels."""
        items = self.items.aggregate(
            items=Count("pk"),
            gold_items=Count("pk", filter=Q(is_gold=True)),
            complete_items=Count(
                "pk", filter=Q(human_labels__gte=self.overlap + models.F("extra_labels"))
            ),
            human_labels=Coalesce(Sum("human_labels"), 0),
        )
        labels = Annotation.objects.of_study(self).current()
        return {
            **items,
            "judge_labels": labels.filter(rater__kind=Rater.Kind.LLM).count(),
            "annotators": labels.filter(rater__kind=Rater.Kind.HUMAN)
            .values("rater")
            .distinct()
            .count(),
            "judges": labels.filter(rater__kind=Rater.Kind.LLM).values("rater").distinct().count(),
        }

    def labels_per_day(self):
        """Human labels submitted through Quorum per day, oldest first."""
        return list(
            Annotation.objects.of_study(self)
            .filter(source=Annotation.Source.UI, submitted_at__isnull=False)
            .annotate(day=TruncDate("submitted_at"))
            .values("day")
            .annotate(n=Count("id"))
            .order_by("day")
            .values_list("day", "n")
        )

    def join_path(self):
        """The crowd link, with a placeholder where the platform puts the worker id."""
        return (
            reverse("annotation:join", args=[self.slug])
            + f"?token={self.join_token}&{self.worker_id_param}={{WORKER_ID}}"
        )

    def participant(self, worker_id):
        """The user behind a crowd worker id: made on the first visit, the same ever after.

        Only a password-less annotator made this way enters by the link: a worker id set on
        anyone else (by hand, in the admin) must not open their account to every holder of
        the study's token.
        """
        for _ in range(3):
            membership = self.memberships.filter(worker_id=worker_id).select_related("user")
            if membership := membership.first():
                user = membership.user
                if (
                    membership.role != StudyMembership.Role.ANNOTATOR
                    or user.is_staff
                    or user.is_superuser
                    or user.has_usable_password()
                ):
                    raise PermissionDenied("This worker id belongs to an account with a login.")
                return user
            try:
                with transaction.atomic():
                    return self._new_participant(worker_id)
            except IntegrityError:
                continue  # the same worker's other request made them at this instant
        raise IntegrityError(f"could not make a participant for worker {worker_id!r}")

    def _new_participant(self, worker_id):
        User = get_user_model()
        # A user of that name may exist already (an earlier study of the same slug, staff).
        base = username = f"{worker_id}@{self.slug}"
        taken = set(
            User.objects.filter(username__startswith=base).values_list("username", flat=True)
        )
        for n in itertools.count(2):
            if username not in taken:
                break
            username = f"{base}~{n}"
        user = User(username=username)
        user.set_unusable_password()
        user.save()
        StudyMembership.objects.create(
            study=self, user=user, role=StudyMembership.Role.ANNOTATOR, worker_id=worker_id
        )
        return user

    def clone(self, user):
        """A new draft study with this one's settings and a copy of its questions (no items,
        labels or people but the user, its admin; a new join token and completion code, and
        no return URL, which carries the old code)."""
        base = f"{self.slug[:55]}-copy"
        copied = {n: getattr(self, n) for n in self.SETTINGS if n not in self.NOT_CLONED}
        for n in itertools.count(1):
            slug = base if n == 1 else f"{base}-{n}"
            if Study.objects.filter(slug=slug).exists():
                continue
            try:
                with transaction.atomic():
                    copy = Study.objects.create(
                        slug=slug, rubric=self.rubric.copy(), name=f"{self.name} (copy)", **copied
                    )
                    StudyMembership.objects.create(
                        study=copy, user=user, role=StudyMembership.Role.ADMIN
                    )
                    copy.record(user, "created", "", f"a copy of {self.slug}")
                return copy
            except IntegrityError:
                continue  # another clone took the slug at this instant

    def change_status(self, status, user):
        """Move the study along its lifecycle, draft → open ⇄ paused → closed, and log it.

        Refused (StudyStatusError, saying why) for a move the lifecycle has no arrow for, for
        opening a study without items, and when someone else changed the status meanwhile.
        """
        if status not in self.NEXT_STATUSES[self.status]:
            raise StudyStatusError(
                f"a {self.get_status_display().lower()} study cannot become {status!r}"
            )
        if status == self.Status.OPEN and not self.items.exists():
            raise StudyStatusError("upload its items before opening the study")
        with transaction.atomic():
            if not Study.objects.filter(pk=self.pk, status=self.status).update(status=status):
                raise StudyStatusError("someone else changed the study's status; reload")
            self.record(user, "status", self.status, status)
        self.status = status

    @property
    def read_only(self):
        """A closed study takes no more labels nor changes to its setup."""
        return self.status == self.Status.CLOSED

    def role_of(self, user):
        """The user's role in this study, or None; site superusers act as study admins."""
        if not user.is_authenticated:
            return None
        if user.is_superuser:
            return StudyMembership.Role.ADMIN
        membership = self.membership_of(user)
        return membership.role if membership else None

    def record(self, user, what, before="", after=""):
        """Write one change of the study's setup to its audit log."""
        return StudyChange.objects.create(
            study=self, user=user, what=what, before=str(before), after=str(after)
        )

    def labels_by(self, user):
        """The user's current labels in the study."""
        return Annotation.objects.of_study(self).current().filter(rater__user=user)

    def membership_of(self, user):
        """The user's membership of the study, or None; read once per Study object (a
        request's), since the role check and the pause check both need it."""
        known = self.__dict__.setdefault("_memberships", {})
        if user.pk not in known:
            known[user.pk] = self.memberships.filter(user=user).first()
        return known[user.pk]


class Rubric(models.Model):
    """A named, versioned set of questions. Its versions are immutable once labelled.

    A rubric never exists without questions: it is created with its first definition,
    `Rubric.objects.create(name=..., definition={...})`, which becomes version 1 in the same
    transaction, and saving a new rubric without one is refused.
    """

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self._state.adding:
            return super().save(*args, **kwargs)
        definition = getattr(self, "_first_definition", None)
        if definition is None:
            raise ValidationError(
                "A rubric needs its questions: create it with a definition, "
                "Rubric.objects.create(name=..., definition={...})."
            )
        parse_rubric(definition)
        with transaction.atomic():
            super().save(*args, **kwargs)
            self.revise(definition)
        del self._first_definition

    @property
    def definition(self):
        """The latest version's definition (or the one a new rubric will be created with)."""
        if self.pk is None:
            return getattr(self, "_first_definition", None)
        latest = self.versions.order_by("-number").first()
        return latest.definition if latest else None

    @definition.setter
    def definition(self, value):
        self._first_definition = value

    def edit(self, definition):
        """The version that holds `definition` after an edit: the latest one changed in place
        while nothing may have used it (no label and no reservation against it, every study
        on the rubric still a draft), else a new version, so that what anyone was shown or
        answered keeps its questions."""
        with transaction.atomic():
            latest = self.versions.select_for_update().order_by("-number").first()
            if latest.definition == definition:
                return latest
            used = (
                latest.annotations.exists()
                or Reservation.objects.filter(rubric_version=latest).exists()
                or self.studies.exclude(status=Study.Status.DRAFT).exists()
            )
            if used:
                return self.revise(definition)
            latest.definition = definition
            latest.__dict__.pop("parsed", None)
            latest.save()
            return latest

    def copy(self):
        """A new rubric with this one's latest questions, for a cloned study: editing one
        study's questions never changes another's."""
        return Rubric.objects.create(name=self.name, definition=self.definition)

    def revise(self, definition):
        """Record a new version; earlier versions, and the labels against them, stay as they are."""
        latest = self.versions.order_by("-number").first()
        number = latest.number + 1 if latest else 1
        return RubricVersion.objects.create(rubric=self, number=number, definition=definition)


class RubricVersionLocked(Exception):
    """Raised on an attempt to change a rubric version that labels were written against."""


class RubricVersion(models.Model):
    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(help_text="The rubric JSON, as validated by parse_rubric.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rubric", "number"], name="one_rubric_version_number")
        ]

    def __str__(self):
        return f"{self.rubric.name} v{self.number}"

    def save(self, *args, **kwargs):
        parse_rubric(self.definition)  # never store a definition that does not validate
        if self.pk and self.annotations.exists():
            raise RubricVersionLocked(
                f"{self} has labels; change the rubric with Rubric.revise() instead"
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.annotations.exists():
            raise RubricVersionLocked(f"{self} has labels and cannot be deleted")
        return super().delete(*args, **kwargs)

    @cached_property
    def parsed(self):
        return parse_rubric(self.definition)


class ItemQuerySet(models.QuerySet):
    def recount_labels(self):
        """Set `human_labels` of these items from their labels, after a change in bulk."""
        labels = (
            Annotation.objects.current()
            .filter(item=OuterRef("pk"), rater__kind=Rater.Kind.HUMAN)
            .order_by()
            .values("item")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return self.update(human_labels=Coalesce(Subquery(labels), 0))


class ResponseKeys(models.Func):
    """The keys of an item's responses, in order, as a list worked out by the database: a
    query that needs only the keys does not fetch the texts, most of an item's bytes."""

    output_field = models.JSONField()

    def as_postgresql(self, compiler, connection):
        template = "jsonb_path_query_array(%(expressions)s, '$[*].key')"
        return self.as_sql(compiler, connection, template=template)

    def as_sqlite(self, compiler, connection):
        template = (
            "(SELECT json_group_array(json_extract(value, '$.key'))"
            " FROM json_each(%(expressions)s))"
        )
        return self.as_sql(compiler, connection, template=template)


class Item(models.Model):
    """One thing to label: a prompt with two or more model responses."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255)
    position = models.PositiveIntegerField(help_text="Import order; exports keep it.")
    prompt = models.TextField()
    responses = models.JSONField(help_text='[{"key": "A", "text": "…", "model": "…"}, …]')
    reference = models.TextField(blank=True)
    checklist = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_answers = models.JSONField(default=dict, blank=True)
    routed_at = models.DateTimeField(
        null=True, blank=True, help_text="Sent to the expert queue: no longer handed out."
    )
    routed_reason = models.CharField(max_length=200, blank=True)
    routing_reasons = models.JSONField(
        default=list,
        blank=True,
        help_text='The routing rules that fired on it at its latest routing, as "rule:question".',
    )
    routing_agreement = models.FloatField(
        null=True,
        blank=True,
        help_text="At its latest routing, the lowest share of an analysed question's human "
        "labels that give its most frequent value (the queue serves the lowest first).",
    )
    reason_count = models.PositiveSmallIntegerField(
        default=0, help_text="len(routing_reasons): the queue serves the most reasons first."
    )
    extra_labels = models.PositiveSmallIntegerField(
        default=0,
        help_text="Human labels asked for beyond the study's overlap, by experts sending the "
        "item back.",
    )
    human_labels = models.PositiveIntegerField(
        default=0,
        help_text="Current human labels, counted as they arrive so that choosing the next "
        "item reads no label; the assignment engine recounts under the item's lock.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "external_id"], name="one_external_id_per_study"
            )
        ]
        indexes = [
            models.Index(fields=["study", "position"]),
            # the next-item query: fullest first, then import order
            models.Index(
                fields=["study", "is_gold", "-human_labels", "position"], name="next_item_order"
            ),
            # the few items sent back for more labels: the next-item query's upper bound
            models.Index(
                fields=["study", "extra_labels"],
                condition=Q(extra_labels__gt=0),
                name="items_sent_back",
            ),
        ]

    def __str__(self):
        return self.external_id

    @property
    def response_keys(self):
        return [r["key"] for r in self.responses]

    def labels_needed(self, study):
        """Distinct human labels the item needs: the study's overlap and what experts added."""
        return study.overlap + self.extra_labels


class StudyMembership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        RESEARCHER = "researcher"
        EXPERT = "expert"
        ANNOTATOR = "annotator"

    # Each role may do what the roles after it in this list may do.
    RANK = {Role.ADMIN: 4, Role.RESEARCHER: 3, Role.EXPERT: 2, Role.ANNOTATOR: 1}

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=12, choices=Role.choices)
    worker_id = models.CharField(
        max_length=128, blank=True, help_text="The crowd platform's id of a participant."
    )
    paused_at = models.DateTimeField(
        null=True, blank=True, help_text="Set by quality control; a paused annotator gets no items."
    )
    paused_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="one_membership_per_user"),
            models.UniqueConstraint(
                fields=["study", "worker_id"],
                condition=~Q(worker_id=""),
                name="one_membership_per_worker_id",
            ),
        ]
        indexes = [models.Index(fields=["study", "role"])]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.study}"

    def clean(self):
        if self.worker_id and self.role != self.Role.ANNOTATOR:
            raise ValidationError({"worker_id": "Only annotators join by a worker id."})


class Rater(models.Model):
    """Whoever gives labels: a human (a user account) or an LLM judge (by name)."""

    class Kind(models.TextChoices):
        HUMAN = "human"
        LLM = "llm"

    kind = models.CharField(max_length=5, choices=Kind.choices)
    name = models.CharField(max_length=150)
    family = models.CharField(
        max_length=100, blank=True, help_text="An LLM's model family, for self-preference."
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rater",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="one_rater_per_kind_and_name"),
            models.CheckConstraint(
                condition=Q(kind="human", user__isnull=False) | Q(kind="llm", user__isnull=True),
                name="humans_have_a_user_judges_do_not",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.kind})"


class AnnotationQuerySet(models.QuerySet):
    def current(self):
        """Labels in force: a revised label keeps its earlier versions as history."""
        return self.filter(is_current=True)

    def of_study(self, study):
        return self.filter(item__study=study)


class Annotation(models.Model):
    """One rater's answers to the rubric for one item, as shown in one order.

    `answers` maps each label CSV question cell (`pref`, `check[0]`) to its stored value;
    `confidences` and `rationales` map the same cells to what the rater gave with it.
    """

    class Source(models.TextChoices):
        UI = "ui"
        IMPORT = "import"
        JUDGE = "judge"
        ADJUDICATION = "adjudication"

    class Order(models.TextChoices):
        NONE = "", "not pairwise"
        AB = "AB"
        BA = "BA"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    rater = models.ForeignKey(Rater, on_delete=models.PROTECT, related_name="annotations")
    rubric_version = models.ForeignKey(
        RubricVersion, on_delete=models.PROTECT, related_name="annotations"
    )
    answers = models.JSONField(default=dict)
    confidences = models.JSONField(default=dict, blank=True)
    rationales = models.JSONField(default=dict, blank=True)
    order = models.CharField(max_length=2, choices=Order.choices, blank=True, default="")
    source = models.CharField(max_length=12, choices=Source.choices)
    is_current = models.BooleanField(default=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(
        null=True, blank=True, help_text="Time the labelling page was in use, as the client saw it."
    )
    submission_id = models.UUIDField(
        null=True,
        blank=True,
        unique=True,
        help_text="Client-made, so a retried submit stores one label.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "rater", "order"],
                condition=Q(is_current=True),
                name="one_current_label_per_item_rater_order",
            )
        ]
        indexes = [
            models.Index(fields=["item", "is_current"]),
            models.Index(fields=["rater", "submitted_at"]),
        ]

    def __str__(self):
        return f"{self.rater} on {self.item}"


class Reservation(models.Model):
    """An item handed to an annotator: it counts toward the item's overlap until it expires."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="reservations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations"
    )
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT)
    order = models.CharField(max_length=2, choices=Annotation.Order.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="one_reservation_per_item_user")
        ]
        indexes = [models.Index(fields=["item", "expires_at"])]

    def __str__(self):
        return f"{self.item} for {self.user} until {self.expires_at:%H:%M}"


class Skip(models.Model):
    """An annotator passed on an item; it is never handed to them again."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="one_skip_per_item_user")
        ]

    def __str__(self):
        return f"{self.item} skipped by {self.user}"


class QueueReservation(models.Model):
    """A routed item held by the one expert adjudicating it, until it expires."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="queue_reservation")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="queue_reservations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.item} for expert {self.user} until {self.expires_at:%H:%M}"


class Adjudication(models.Model):
    """An expert's decision on a routed item. Its own record: no label is changed by it.

    `decided`: `answers` are the final values of the questions it answers (stored form, keyed
    by label CSV cell, as Annotation.answers); `sent_back`: the item needs `extra_labels` more
    human labels and returns to the annotators; `unresolved`: the expert could not decide.
    `reasons` are the item's routing reasons when it was decided.
    """

    class Outcome(models.TextChoices):
        DECIDED = "decided"
        SENT_BACK = "sent_back", "sent back"
        UNRESOLVED = "unresolved", "cannot be resolved"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="adjudications")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    answers = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    extra_labels = models.PositiveSmallIntegerField(default=0)
    reasons = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["item", "decided_at"])]

    def __str__(self):
        return f"{self.item}: {self.outcome} by {self.expert}"


class RoutingDecision(models.Model):
    """A change in whether an item is in the expert queue, or why: its routing history."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="routing_decisions")
    routed = models.BooleanField()
    reasons = models.JSONField(default=list, blank=True)
    by = models.CharField(max_length=200, help_text='"routing rules", or who sent it by hand.')
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["item", "created_at"])]

    def __str__(self):
        return f"{self.item} {'routed' if self.routed else 'let go'} by {self.by}"


class StudyChange(models.Model):
    """One change to a study's setup (a setting, its status, its questions, its data, its
    people), by whom and when: the audit log on the study page."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="changes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    what = models.CharField(max_length=100, help_text='A setting\'s name, or "status", "items"…')
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["study", "at"])]

    def __str__(self):
        return f"{self.study}: {self.what} {self.before!r} → {self.after!r}"


class Invitation(models.Model):
    """A single-use, expiring link that makes a named person a member of a study with a role:
    they choose a password on first use (or sign in, if the name is already an account)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    name = models.CharField(max_length=150, help_text="The user name or e-mail invited.")
    role = models.CharField(max_length=12, choices=StudyMembership.Role.choices)
    token = models.CharField(max_length=64, unique=True, default=_new_token)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self):
        return f"{self.name} as {self.role} in {self.study}"

    @property
    def state(self):
        """ "pending", "used", "revoked" or "expired". Revoking closes an invitation as using it
        does, with no user: both go through the same conditional update, so of a revoke and an
        acceptance at the same instant exactly one wins."""
        if self.used_at is None:
            return "pending" if self.expires_at > timezone.now() else "expired"
        return "used" if self.used_by_id else "revoked"

    def use(self, user):
        """Close the invitation for `user`: True for the one request that did it, False when
        it was used, revoked or expired already (or by another request at this instant)."""
        now = timezone.now()
        pending = Invitation.objects.filter(pk=self.pk, used_at=None, expires_at__gt=now)
        if not pending.update(used_at=now, used_by=user):
            return False
        self.used_at, self.used_by = now, user
        return True

    def revoke(self):
        """Close the invitation unused: True unless it was closed already."""
        now = timezone.now()
        if not Invitation.objects.filter(pk=self.pk, used_at=None).update(used_at=now):
            return False
        self.used_at = now
        return True

    def path(self):
        return reverse("annotation:invitation", args=[self.token])


class Upload(models.Model):
    """An items or labels file uploaded in the browser, checked and imported by the worker
    (all or nothing, as the import commands): its state, progress and errors for the page."""

    class Kind(models.TextChoices):
        ITEMS = "items"
        LABELS = "labels"

    class State(models.TextChoices):
        AWAITING = "awaiting", "awaiting confirmation"  # its first rows shown, not imported
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="uploads")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    filename = models.CharField(max_length=255, help_text="The name the file was uploaded as.")
    path = models.CharField(max_length=500, help_text="Where it waits for the worker.")
    update = models.BooleanField(default=False, help_text="Replace what has the same ids.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.AWAITING)
    total_bytes = models.PositiveBigIntegerField(default=0)
    done_bytes = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="file:line messages.")
    summary = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.kind} {self.filename} ({self.state})"
