"""The data browser: a study's items searched, filtered and paged by keyset; an item's whole
record; a judge run's page with its verdicts and failures."""

import re
from decimal import Decimal
from html import unescape

import pytest
from conftest import make_study, make_user
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone

from annotation.assignment import rater_for
from annotation.browsing import PAGE_SIZE
from annotation.models import Annotation, Item, Rater, StudyMembership
from judging.models import Judge, JudgeRun, Verdict
from judging.work import plan_run

pytestmark = pytest.mark.django_db
RUBRIC = {
    "name": "Pairwise and topics",
    "questions": [
        {"key": "pref", "type": "pairwise", "prompt": "Which is better?", "allow_tie": True},
        {
            "key": "topics",
            "type": "categorical",
            "choices": ["maths", "code", "prose"],
            "multiple": True,
        },
    ],
}


def add_item(study, ext, position, **fields):
    return Item.objects.create(
        study=study,
        external_id=ext,
        position=position,
        prompt=fields.pop("prompt", f"Prompt of {ext}"),
        responses=fields.pop(
            "responses",
            [
                {"key": "A", "text": f"First answer to {ext}", "model": "model-a"},
                {"key": "B", "text": f"Second answer to {ext}", "model": "model-b"},
            ],
        ),
        **fields,
    )


def add_items(study, n):
    Item.objects.bulk_create(
        Item(
            study=study,
            external_id=f"b{i}",
            position=i,
            prompt=f"Bulk prompt {i}",
            responses=[{"key": "A", "text": "a"}, {"key": "B", "text": "b"}],
        )
        for i in range(1, n + 1)
    )


@pytest.fixture
def study(db):
    return make_study(slug="s1", rubric=RUBRIC, overlap=3)


@pytest.fixture
def dan(study):
    return make_user("dan", StudyMembership.Role.RESEARCHER, study)


@pytest.fixture
def researcher(client, dan):
    client.force_login(dan)
    return client


def listed(client, query=""):
    """The external ids a page of the items list shows, in order, and the page."""
    response = client.get(f"/studies/s1/items/{query}")
    assert response.status_code == 200, response.content.decode()[:2000]
    return [item.external_id for item in response.context["page"].rows], response


@pytest.fixture
def varied(study):
    """Items differing in each thing the filters look at."""
    now = timezone.now()
    return [
        add_item(study, "alpha/1", 1, prompt="What is a monad?", metadata={"category": "maths"}),
        add_item(
            study,
            "beta",
            2,
            prompt="Sort a list",
            metadata={"category": "code", "difficulty": 3},
            human_labels=3,
            routing_agreement=0.34,
            routed_at=now,
            routed_reason="routing rules",
        ),
        add_item(
            study,
            "gamma",
            3,
            prompt="A poem about MONADS",
            metadata={"category": "mathematics", "difficulty": "3"},
            human_labels=2,
            routing_agreement=1.0,
        ),
        add_item(study, "delta", 4, is_gold=True, gold_answers={"pref": "A"}, human_labels=5),
    ]


def test_it_finds_items_by_external_id_or_prompt_text(researcher, varied):
    assert listed(researcher, "?q=monad")[0] == ["alpha/1", "gamma"]
    assert listed(researcher, "?q=ALPHA")[0] == ["alpha/1"]
    assert listed(researcher, "?q=nothing-like-it")[0] == []


def test_it_matches_a_metadata_field_exactly(researcher, varied):
    assert listed(researcher, "?meta=category:maths")[0] == ["alpha/1"]
    assert listed(researcher, "?meta=category:code")[0] == ["beta"]
    # A number typed in matches it stored as a number or as text.
    assert listed(researcher, "?meta=difficulty:3")[0] == ["beta", "gamma"]
    assert listed(researcher, "?meta=missing:x")[0] == []


def test_it_filters_on_the_human_label_count(researcher, varied):
    assert listed(researcher, "?min_labels=3")[0] == ["beta", "delta"]
    assert listed(researcher, "?max_labels=2")[0] == ["alpha/1", "gamma"]
    assert listed(researcher, "?min_labels=2&max_labels=3")[0] == ["beta", "gamma"]


def test_it_filters_on_agreement_leaving_out_items_the_rules_never_decided(researcher, varied):
    assert listed(researcher, "?agreement_max=0.5")[0] == ["beta"]
    assert listed(researcher, "?agreement_max=1")[0] == ["beta", "gamma"]
    page = listed(researcher)[1].content.decode()
    assert "items the routing rules never decided have no agreement" in page


def test_it_filters_gold_and_routed_items(researcher, varied):
    assert listed(researcher, "?gold=yes")[0] == ["delta"]
    assert listed(researcher, "?gold=no")[0] == ["alpha/1", "beta", "gamma"]
    assert listed(researcher, "?routed=yes")[0] == ["beta"]
    assert listed(researcher, "?routed=no&gold=no")[0] == ["alpha/1", "gamma"]


def test_it_shows_each_rows_labels_against_what_the_item_needs(researcher, study, varied):
    Item.objects.filter(external_id="gamma").update(extra_labels=2)
    page = listed(researcher, "?q=gamma")[1].content.decode()
    row = re.search(r'<tr data-position="3">.*?</tr>', page, re.DOTALL)[0]
    assert 'href="/studies/s1/items/gamma/"' in row
    assert "A poem about MONADS" in row
    assert "<td>2 / 5</td>" in row  # overlap 3 and 2 more asked for by an expert
    assert "<td>1.00</td>" in row


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("min_labels=many", "min_labels", "Enter a whole number."),
        ("max_labels=-1", "max_labels", "greater than or equal to 0"),
        ("min_labels=5&max_labels=2", "max_labels", "no item could match"),
        ("agreement_max=1.5", "agreement_max", "less than or equal to 1"),
        ("agreement_max=nan", "agreement_max", "Enter a number."),
        ("meta=category", "meta", "key:value"),
        ("gold=maybe", "gold", "Select a valid choice."),
        ("routed=1", "routed", "Select a valid choice."),
        ("min_labels=99999999999999999999999", "min_labels", "less than or equal to"),
    ],
)
def test_it_refuses_a_bad_filter_with_a_message_beside_its_field(
    researcher, varied, query, field, message
):
    response = researcher.get(f"/studies/s1/items/?{query}")
    assert response.status_code == 400
    page = unescape(response.content.decode())
    error = re.search(rf'<span class="field-error" id="id_{field}-error"[^>]*>(.*?)</span>', page)
    assert error is not None, page
    assert message in error[1]
    assert '<table id="items">' not in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("after=soon", "Enter a whole number."),
        ("after=-3", "greater than or equal to 0"),
        ("before=99999999999999999999", "less than or equal to"),
        ("after=1&before=9", "not both"),
    ],
)
def test_it_refuses_a_bad_cursor_with_a_message(researcher, varied, query, message):
    response = researcher.get(f"/studies/s1/items/?{query}")
    assert response.status_code == 400
    alert = re.search(r'id="filter-errors">(.*?)</p>', response.content.decode(), re.DOTALL)
    assert message in unescape(alert[1])


def follow(client, link, direction):
    """The external ids of every page from `link` on, following its `direction` link."""
    pages = []
    while link is not None:
        ids, response = listed(client, unescape(link))
        pages.append(ids)
        found = re.search(rf'href="([^"]*)" rel="{direction}"', response.content.decode())
        link = found[1] if found else None
    return pages


def test_it_pages_forward_through_every_item_once_and_back_again(researcher, study):
    add_items(study, 2 * PAGE_SIZE + 7)
    forward = follow(researcher, "", "next")
    assert [len(ids) for ids in forward] == [PAGE_SIZE, PAGE_SIZE, 7]
    every = [ext for ids in forward for ext in ids]
    assert every == [f"b{i}" for i in range(1, 2 * PAGE_SIZE + 8)]
    # From the last page, the previous links lead back through the same pages.
    last = f"?after={2 * PAGE_SIZE}"
    backward = follow(researcher, last, "prev")
    assert backward == forward[::-1]
    assert "First page" in listed(researcher, last)[1].content.decode()


def test_it_keeps_the_filters_from_page_to_page(researcher, study):
    add_items(study, 3 * PAGE_SIZE)
    Item.objects.filter(position__gt=PAGE_SIZE).update(is_gold=True)
    pages = follow(researcher, "?gold=no", "next")
    assert [len(ids) for ids in pages] == [PAGE_SIZE]
    pages = follow(researcher, "?gold=yes", "next")
    assert [ext for ids in pages for ext in ids] == [
        f"b{i}" for i in range(PAGE_SIZE + 1, 3 * PAGE_SIZE + 1)
    ]


def test_it_reads_a_late_page_with_the_same_queries_as_the_first(researcher, study):
    add_items(study, 5 * PAGE_SIZE)
    with CaptureQueriesContext(connection) as first:
        assert len(listed(researcher)[0]) == PAGE_SIZE
    with CaptureQueriesContext(connection) as late:
        ids, _ = listed(researcher, f"?after={4 * PAGE_SIZE - 1}&gold=no")
    assert ids[0] == f"b{4 * PAGE_SIZE}"
    assert len(late) == len(first)
    sql = [q["sql"] for q in late if '"annotation_item"' in q["sql"]]
    assert len(sql) == 1
    assert f"LIMIT {PAGE_SIZE + 1}" in sql[0]
    assert "OFFSET" not in sql[0]
    assert "COUNT(" not in sql[0].upper()
    # A row reads the prompt's excerpt, not the whole prompt nor the responses.
    assert 'AS "excerpt"' in sql[0]
    assert '"annotation_item"."responses"' not in sql[0]


@pytest.fixture
def record(study):
    """An item with a revised label, an imported one, and three verdicts: a good one, an
    invalid reply and a failed request."""
    bob = make_user("bob", StudyMembership.Role.ANNOTATOR, study)
    item = add_item(
        study,
        "batch 7/item 3",
        1,
        responses=[
            {"key": "A", "text": "Try <script>alert('xss')</script> now", "model": "gpt-x"},
            {"key": "B", "text": "Plain **bold** reply", "model": "llama-y"},
        ],
        reference="The reference answer",
        checklist=["Mentions the risk"],
        metadata={"source": "<b>web</b>", "items": ["a", "b"]},
        is_gold=True,
        gold_answers={"pref": "B"},
    )
    version = study.rubric_version
    common = {"item": item, "rubric_version": version, "source": Annotation.Source.UI}
    Annotation.objects.create(
        **common,
        rater=rater_for(bob),
        answers={"pref": "A"},
        order="BA",
        is_current=False,
        submitted_at=timezone.now(),
        active_seconds=12.5,
    )
    Annotation.objects.create(
        **common,
        rater=rater_for(bob),
        answers={"pref": "B", "topics": ["maths", "code"]},
        confidences={"pref": 0.9},
        rationales={"pref": "B cites its sources"},
        order="BA",
        submitted_at=timezone.now(),
        active_seconds=30.25,
    )
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    run = plan_run(study, judge, ["pref"], both_orders=True)
    Verdict.objects.create(
        run=run,
        item=item,
        question="pref",
        order="AB",
        value="invalid",
        raw="I cannot decide <script>x</script>",
        prompt_tokens=120,
        completion_tokens=7,
        latency=1.5,
    )
    Verdict.objects.create(
        run=run,
        item=item,
        question="pref",
        order="BA",
        error="connection refused (127.0.0.1:9)",
        attempts=3,
    )
    return item, run


def test_it_shows_an_items_labels_in_every_version(researcher, record):
    page = researcher.get("/studies/s1/items/batch%207/item%203/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = re.findall(
        r'<tr data-label="\d+" data-current="(yes|no)">(.*?)</table></td>', html, re.S
    )
    assert [current for current, _ in rows] == ["no", "yes"]
    earlier, current = rows[0][1], rows[1][1]
    assert "earlier version" in earlier and "bob" in earlier and "<td>BA</td>" in earlier
    assert "<td>12.5</td>" in earlier and "<td>A</td>" in earlier
    assert "current" in current and "<td>30.3</td>" in current
    # Answers as the label CSV writes them: several categories joined by ";".
    assert "<td>maths;code</td>" in current
    assert "confidence 0.9" in current and "B cites its sources" in current
    assert 'href="/s/s1/items/batch%207/item%203/history/"' in html


def test_it_shows_an_items_verdicts_invalid_and_failed_ones_too(researcher, record):
    _, run = record
    html = researcher.get("/studies/s1/items/batch%207/item%203/").content.decode()
    verdicts = re.search(r'<table id="verdicts">.*?</table>', html, re.S)[0]
    assert f'href="/studies/s1/judge-runs/{run.pk}/"' in verdicts
    assert "<strong>invalid</strong>" in verdicts
    assert "I cannot decide &lt;script&gt;x&lt;/script&gt;" in verdicts
    assert "120 + 7" in verdicts and "1.50 s" in verdicts
    assert "connection refused (127.0.0.1:9)" in verdicts
    assert "after 3 attempts" in verdicts


def test_it_shows_an_items_content_with_untrusted_text_escaped(researcher, record):
    html = researcher.get("/studies/s1/items/batch%207/item%203/").content.decode()
    assert "<script>" not in html  # the page has no script of its own either
    assert "Try &lt;script&gt;alert" in html
    assert "<strong>bold</strong>" in html  # Markdown, as annotators see it
    assert "gpt-x" in html and "llama-y" in html
    assert "The reference answer" in html and "Mentions the risk" in html
    assert "&lt;b&gt;web&lt;/b&gt;" in html
    # A metadata field named "items" is shown as a field, not taken for the dict's method.
    assert re.search(r"<code>items</code></th><td>\[&quot;a&quot;, &quot;b&quot;\]", html)
    gold = re.search(r'<table id="gold">.*?</table>', html, re.S)[0]
    assert "<code>pref</code></th><td>B</td>" in gold


def test_its_item_address_leaves_the_history_and_gold_addresses_alone(researcher, study):
    add_item(study, "x/history", 1)
    assert resolve("/s/s1/items/x/history/").url_name == "history"
    assert resolve("/s/s1/items/x/gold/").url_name == "promote"
    assert resolve("/studies/s1/items/x/history/").url_name == "item"
    page = researcher.get("/studies/s1/items/x/history/")
    assert page.status_code == 200 and page.context["item"].external_id == "x/history"
    assert researcher.get("/studies/s1/items/no-such-item/").status_code == 404


@pytest.mark.parametrize("role", [StudyMembership.Role.ANNOTATOR, StudyMembership.Role.EXPERT])
def test_it_hides_the_browser_from_roles_below_researcher(client, study, record, role):
    _, run = record
    client.force_login(make_user("eve", role, study))
    assert client.get("/studies/s1/items/").status_code == 404
    assert client.get("/studies/s1/items/batch%207/item%203/").status_code == 404
    assert client.get(f"/studies/s1/judge-runs/{run.pk}/").status_code == 404


@pytest.fixture
def failing_run(study):
    """A finished run on 60 items: 50 answered, 7 refused connections, 3 timed out."""
    add_items(study, 60)
    judge = Judge.objects.create(
        name="priced",
        base_url="http://127.0.0.1:9/v1",
        model="m",
        price_per_1k_input=Decimal("1"),
        price_per_1k_output=Decimal("2"),
    )
    run = plan_run(study, judge, ["pref"])
    for n, item in enumerate(study.items.order_by("position")):
        if n < 50:
            fields = {"value": "A", "prompt_tokens": 100, "completion_tokens": 10}
        elif n < 57:
            fields = {"error": "connection refused (127.0.0.1:9)", "attempts": 3}
        else:
            fields = {"error": "timed out after 30 s", "attempts": 3}
        Verdict.objects.create(run=run, item=item, question="pref", order="AB", **fields)
    JudgeRun.objects.filter(pk=run.pk).update(
        status=JudgeRun.Status.FAILED, error="10 requests failed after every retry"
    )
    return run


def test_it_shows_a_runs_failures_with_their_reasons_counted(researcher, failing_run):
    response = researcher.get(f"/studies/s1/judge-runs/{failing_run.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    reasons = re.search(r'<table id="failure-reasons">.*?</table>', html, re.S)[0]
    assert re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", reasons) == [
        ("7", "connection refused (127.0.0.1:9)"),
        ("3", "timed out after 30 s"),
    ]
    assert "10 requests failed after every retry" in html
    assert '<dd data-counter="failed">10</dd>' in html
    assert '<dd data-counter="prompt_tokens">5000</dd>' in html
    assert '<dd data-counter="cost">$6.0000</dd>' in html  # $1 and $2 per 1,000 tokens


def test_it_pages_a_runs_verdicts_and_lists_the_failed_only(researcher, failing_run):
    first = researcher.get(f"/studies/s1/judge-runs/{failing_run.pk}/")
    assert len(first.context["page"].rows) == PAGE_SIZE
    after = first.context["page"].after
    second = researcher.get(f"/studies/s1/judge-runs/{failing_run.pk}/?after={after}")
    rows = second.context["page"].rows
    assert len(rows) == 10 and all(v.error for v in rows)
    assert second.context["page"].after is None
    failed = researcher.get(f"/studies/s1/judge-runs/{failing_run.pk}/?failed=yes")
    html = failed.content.decode()
    assert len(failed.context["page"].rows) == 10
    assert html.count('<span class="error">connection refused (127.0.0.1:9)</span>') == 7
    assert 'href="/studies/s1/items/b51/"' in html
    bad = researcher.get(f"/studies/s1/judge-runs/{failing_run.pk}/?after=x")
    assert bad.status_code == 400


def test_it_answers_404_for_another_studys_run(researcher, study):
    other = make_study(slug="other")
    add_item(other, "o1", 1)
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    theirs = plan_run(other, judge, ["pref"])
    assert researcher.get(f"/studies/s1/judge-runs/{theirs.pk}/").status_code == 404
    assert researcher.get("/studies/s1/judge-runs/999999/").status_code == 404


def test_the_judges_panel_links_each_run_to_its_page(researcher, failing_run):
    page = researcher.get("/studies/s1/").content.decode()
    assert f'href="/studies/s1/judge-runs/{failing_run.pk}/"' in page


def test_it_names_judges_and_humans_apart_on_the_item_page(researcher, study):
    item = add_item(study, "mixed", 1)
    judge = Rater.objects.create(kind=Rater.Kind.LLM, name="imported-llm")
    Annotation.objects.create(
        item=item,
        rater=judge,
        rubric_version=study.rubric_version,
        answers={"pref": "tie"},
        source=Annotation.Source.IMPORT,
    )
    html = researcher.get("/studies/s1/items/mixed/").content.decode()
    assert "imported-llm <small>(llm, import)</small>" in html
