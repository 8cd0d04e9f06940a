"""Routing: a study's rules send items whose labels disagree to the expert queue, by the
`route` command and on their own when labels complete, are imported or a judge run ends."""

import csv
import io
import json
import uuid
from collections import Counter, defaultdict

import pytest
from conftest import DEMO_DIR, make_study, make_user
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from judge_stub import StubConfig, running_stub

from annotation.assignment import next_item, submit
from annotation.models import Item, Study, StudyMembership
from annotation.queue_rules import DEFAULT_RULES
from calibration.queueing import BY_RULES, route
from judging.models import Judge
from judging.work import execute, plan_run

pytestmark = pytest.mark.django_db
ALL_RULES = {
    "no_majority": True,
    "low_agreement": 0.7,
    "judge_conflict": True,
    "judge_inconsistent": True,
    "low_confidence": 0.6,
    "unable": True,
    "gold_miss": True,
}


def run_route(*args):
    out = io.StringIO()
    call_command("route", *args, stdout=out)
    return out.getvalue()


def add_items(study, n):
    for i in range(n):
        Item.objects.create(
            study=study,
            external_id=f"q{i}",
            position=i,
            prompt=f"Question {i}",
            responses=[{"key": "A", "text": "short"}, {"key": "B", "text": "a longer answer"}],
        )


def labels_file(write, rows):
    header = "item,rater,kind,question,value,order,confidence,rationale\n"
    return write("labels.csv", header + "".join(",".join(r) + ",,\n" for r in rows))


def demo_counts_by_hand():
    """Each rule's items on the demo label file, counted the plain way."""
    humans, judge = defaultdict(list), {}
    with open(DEMO_DIR / "labels.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["kind"] == "human":
                humans[row["item"]].append(row["value"])
            else:
                judge[row["item"]] = row["value"]
    low, conflict, none = set(), set(), set()
    for item, values in humans.items():
        (top, n), *rest = Counter(values).most_common()
        if rest and rest[0][1] == n:
            none.add(item)
            continue
        if n / len(values) < 0.7:
            low.add(item)
        if item in judge and judge[item] != top:
            conflict.add(item)
    return {"no_majority": none, "low_agreement": low, "judge_conflict": conflict}


def test_it_counts_what_each_rule_routes_on_the_demo_study(write):
    call_command("load_demo", stdout=io.StringIO())
    by_hand = demo_counts_by_hand()
    assert by_hand["judge_conflict"] and by_hand["low_agreement"]  # the check has teeth

    rules = write("rules.json", json.dumps(ALL_RULES))
    dry = json.loads(run_route("demo", "--dry-run", "--format", "json", "--rules", str(rules)))

    assert list(dry) == ["study", "dry_run", "routed", "rules"]
    assert list(dry["rules"]) == list(ALL_RULES)
    assert (dry["study"], dry["dry_run"]) == ("demo", True)
    assert dry["rules"] == {
        **dict.fromkeys(ALL_RULES, 0),
        **{rule: len(items) for rule, items in by_hand.items()},
    }
    assert dry["routed"] == len(set().union(*by_hand.values()))
    assert not Item.objects.filter(routed_at__isnull=False).exists()  # a what-if only


def test_a_new_study_has_the_default_rules_and_refuses_bad_ones():
    study = make_study()
    assert study.routing_rules == DEFAULT_RULES
    study.routing_rules = {"low_agreement": True}
    with pytest.raises(ValidationError, match="'low_agreement' needs a threshold"):
        study.full_clean()


def test_routing_queues_once_keeps_the_reasons_and_lets_calm_items_go(write):
    study = make_study(overlap=3, routing_rules={**DEFAULT_RULES, "low_agreement": 0.7})
    add_items(study, 3)
    call_command(
        "import_labels",
        study.slug,
        labels_file(
            write,
            [
                ("q0", "h1", "human", "pref", "A", "AB"),
                ("q0", "h2", "human", "pref", "B", "AB"),  # no majority
                ("q1", "h1", "human", "pref", "A", "AB"),
                ("q1", "h2", "human", "pref", "A", "AB"),
                ("q1", "h3", "human", "pref", "B", "AB"),  # 2 of 3 agree: < 0.7
                ("q2", "h1", "human", "pref", "A", "AB"),
                ("q2", "h2", "human", "pref", "A", "AB"),
            ],
        ),
        stdout=io.StringIO(),
    )
    Item.objects.update(routed_at=None, routed_reason="", routing_reasons=[])  # start over

    first = route(study)
    q0, q1, q2 = study.items.order_by("position")
    assert (first["routed"], first["rules"]["no_majority"], first["rules"]["low_agreement"]) == (
        2,
        1,
        1,
    )
    assert (q0.routing_reasons, q1.routing_reasons) == (
        ["no_majority:pref"],
        ["low_agreement:pref"],
    )
    assert q0.routed_reason == BY_RULES and q2.routed_at is None
    queued_at = q0.routed_at

    route(study)
    q0.refresh_from_db()
    assert q0.routed_at == queued_at  # queued once, not again

    q2.routed_at, q2.routed_reason = queued_at, "sent by alice"  # the admin's action
    q2.save()
    study.routing_rules = {"no_majority": True}
    study.save()
    route(study)
    q0, q1, q2 = study.items.order_by("position")
    assert q1.routed_at is None and q1.routing_reasons == []  # no rule routes it any more
    assert q2.routed_reason == "sent by alice"  # a person's decision stays
    assert q0.routing_reasons == ["no_majority:pref"]


@pytest.mark.django_db(transaction=True)
def test_an_item_is_routed_when_its_last_label_arrives(eager_tasks):
    study = make_study(status=Study.Status.OPEN, overlap=2, randomise_order=False)
    add_items(study, 1)
    bob, dora = (make_user(n, StudyMembership.Role.ANNOTATOR, study, None) for n in "bd")
    item = Item.objects.get()

    submit(study, bob, next_item(study, bob).item, {"pref": "A"}, submission_id=uuid.uuid4())
    item.refresh_from_db()
    assert item.routed_at is None  # one of two labels: still being labelled

    submit(study, dora, next_item(study, dora).item, {"pref": "B"}, submission_id=uuid.uuid4())
    item.refresh_from_db()
    assert item.routed_at is not None and item.routing_reasons == ["no_majority:pref"]


@pytest.mark.django_db(transaction=True)
def test_items_are_routed_when_a_judge_run_ends(eager_tasks, write):
    study = make_study(routing_rules={"judge_inconsistent": True})
    add_items(study, 2)
    rows = [(f"q{i}", f"h{n}", "human", "pref", "A", "AB") for i in range(2) for n in (1, 2)]
    call_command("import_labels", study.slug, labels_file(write, rows), stdout=io.StringIO())
    assert not Item.objects.filter(routed_at__isnull=False).exists()

    with running_stub(StubConfig(bias="first")) as base_url:  # A in AB, B in BA: inconsistent
        judge = Judge.objects.create(name="stub", base_url=base_url, model="stub-judge")
        execute(plan_run(study, judge, ["pref"], both_orders=True).pk)

    assert sorted(Item.objects.values_list("routing_reasons", flat=True)) == [
        ["judge_inconsistent:pref"],
        ["judge_inconsistent:pref"],
    ]


def test_a_label_import_routes_the_study(write, eager_tasks, django_capture_on_commit_callbacks):
    study = make_study(routing_rules={"unable": True})
    Study.objects.filter(pk=study.pk).update(
        rubric=make_study(
            slug="with-unable",
            rubric={
                "name": "r",
                "questions": [{"key": "pref", "type": "pairwise", "allow_unable": True}],
            },
        ).rubric
    )
    study.refresh_from_db()
    add_items(study, 1)
    rows = [("q0", "h1", "human", "pref", "unable", "AB")]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_labels", study.slug, labels_file(write, rows), stdout=io.StringIO())
    assert Item.objects.get().routing_reasons == ["unable:pref"]


def test_the_command_refuses_bad_rules_and_unknown_studies(write):
    make_study()
    bad = write("rules.json", '{"loud": true}')
    with pytest.raises(CommandError, match="unknown rule 'loud'") as raised:
        run_route("s1", "--rules", str(bad))
    assert raised.value.returncode == 2
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run_route("nope")
    text = run_route("s1", "--dry-run")
    assert text.startswith("s1: 0 items would be routed (dry run)")
    assert "no_majority          0" in text
