"""Before a judge run: what it would ask and cost, and starting it in a worker.

The API and the study page both come here, so they show the same numbers and start runs the
same way.
"""

from django.db import transaction
from django.db.models import Avg

from judging.models import Verdict
from judging.tasks import run_judge
from judging.work import plan_run, request_messages, unsaved_run

# The usual rule of thumb for English text with GPT-style tokenizers, used until the judge has
# replied to requests of ours and so told us how it counts.
CHARS_PER_TOKEN = 4
MEASURED_VERDICTS = 200


def start(study, judge, questions=None, *, both_orders=False):
    """Plan a run and hand it to a Celery worker once the plan is committed."""
    with transaction.atomic():
        run = plan_run(study, judge, questions, both_orders=both_orders)
        transaction.on_commit(lambda: run_judge.delay(run.pk))
    return run


def estimate(study, judge, questions=None, *, both_orders=False):
    """Requests, tokens and cost of a run before it starts.

    Prompt tokens: every prompt of the run is rendered, as the worker would send it, and its
    characters converted to tokens at the rate this judge's provider reported for our earlier
    prompts (CHARS_PER_TOKEN until there are some). Completion tokens: at most max_tokens per
    request; expected, the mean of the judge's earlier replies, when there are any.
    """
    run = unsaved_run(study, judge, questions, both_orders=both_orders)
    rubric = study.rubric_version.parsed
    planned = chars = 0
    for item in study.items.order_by("position"):
        for order, cells in run.requests_for(item):
            for cell in cells:
                planned += 1
                chars += prompt_chars(rubric, run.templates, item, order, cell)
    tokens_per_char, measured_on = _tokens_per_char(judge)
    prompt_tokens = round(chars * tokens_per_char)
    mean_completion = Verdict.objects.filter(run__judge=judge, error="").aggregate(
        mean=Avg("completion_tokens")
    )["mean"]
    completion_max = planned * judge.max_tokens
    completion_expected = None if mean_completion is None else round(planned * mean_completion)
    return {
        "planned": planned,
        "prompt_chars": chars,
        "prompt_tokens": prompt_tokens,
        "tokens_per_char": tokens_per_char,
        "tokens_per_char_measured_on": measured_on,
        "completion_tokens_max": completion_max,
        "completion_tokens_expected": completion_expected,
        "cost_max": _cost(judge, prompt_tokens, completion_max),
        "cost_expected": (
            None
            if completion_expected is None
            else _cost(judge, prompt_tokens, completion_expected)
        ),
    }


def prompt_chars(rubric, templates, item, order, cell):
    """Characters of the messages that ask one question cell of an item in one order."""
    _, messages = request_messages(rubric, templates, item, order, cell)
    return sum(len(m["content"]) for m in messages)


def _tokens_per_char(judge):
    """(prompt tokens per character, verdicts measured): the provider's own counts of the
    judge's latest prompts against their re-rendered text, or the rule of thumb."""
    verdicts = (
        Verdict.objects.filter(run__judge=judge, error="", prompt_tokens__gt=0)
        .select_related("item", "run__study__rubric")
        .order_by("-id")[:MEASURED_VERDICTS]
    )
    rubrics, tokens, chars, measured = {}, 0, 0, 0
    for v in verdicts:
        study = v.run.study
        if study.pk not in rubrics:
            rubrics[study.pk] = study.rubric_version.parsed
        try:
            text = prompt_chars(rubrics[study.pk], v.run.templates, v.item, v.order, v.question)
        except (AttributeError, IndexError, KeyError, ValueError):
            continue  # the rubric or the item changed since: that prompt cannot be rebuilt
        tokens, chars, measured = tokens + v.prompt_tokens, chars + text, measured + 1
    if not chars:
        return 1 / CHARS_PER_TOKEN, 0
    return tokens / chars, measured


def _cost(judge, prompt_tokens, completion_tokens):
    cost = prompt_tokens * judge.price_per_1k_input + completion_tokens * judge.price_per_1k_output
    return float(cost / 1000)
