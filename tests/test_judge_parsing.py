"""Judge replies into rubric values: the last verdict wins, doubt is `invalid`, never a guess."""

import itertools
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from judge_stub import JudgeStub, StubConfig

from annotation.rubrics import Question
from judging.parsing import INVALID, Parsed, confidence_from_logprobs, parse_reply
from judging.prompts import messages_for

REPO = Path(__file__).resolve().parent.parent
CODES = ["math", "code", "open chat", "Q&A, general"]

MULTIPLE = {"choices": CODES, "multiple": True}
# (question type, reading options, rationale, final statement, value)
WELL_FORMED = [
    ("pairwise", {}, "A is more accurate.", "[[A]]", "A"),
    ("pairwise", {}, "B explains more clearly.", "[[B]]", "B"),
    ("pairwise", {}, "Both are equally good.", "[[C]]", "tie"),
    ("likert", {"scale": 5}, "Clear and correct.", "Rating: [[4]]", "4"),
    ("likert", {"scale": 10}, "Flawless.", "Rating: [[10]]", "10"),
    ("checklist", {}, "It gives a number.", "[[YES]]", "yes"),
    ("checklist", {}, "There is no citation.", "[[NO]]", "no"),
    ("checklist", {}, "The question does not apply.", "[[N/A]]", "na"),
    ("binary", {}, "It agrees with the reference.", "[[YES]]", "yes"),
    ("binary", {}, "It says 5, the reference 4.", "[[NO]]", "no"),
    ("categorical", {"choices": CODES}, "An arithmetic question.", "[[math]]", "math"),
    ("categorical", MULTIPLE, "Both.", "[[code; math]]", "math;code"),
]


def reply(qtype, text, **options):
    return parse_reply(qtype, text, **options)


def value(qtype, text, **options):
    return reply(qtype, text, **options).value


def rubric_question(qtype, **options):
    """The rubric question the reading options describe, to check values fit the rubric."""
    kwargs = {"scale": options.get("scale", 0)}
    if qtype == "categorical":
        kwargs.update(choices=tuple(options["choices"]), multiple=options.get("multiple", False))
    return Question(key="q", type=qtype, **kwargs)


# Well-formed replies --------------------------------------------------------------------------


@pytest.mark.parametrize(("qtype", "options", "rationale", "statement", "expected"), WELL_FORMED)
def test_it_reads_a_well_formed_reply_of_every_type(qtype, options, rationale, statement, expected):
    text = f"{rationale}\n\n{statement}"
    parsed = reply(qtype, text, **options)
    assert (parsed.value, parsed.rationale, parsed.raw) == (expected, rationale, text)
    assert parsed.is_valid
    rubric_question(qtype, **options).clean(parsed.value)  # a value the rubric accepts


@pytest.mark.parametrize(
    ("qtype", "expected"),
    [("pairwise", "A"), ("likert", "3"), ("checklist", "no"), ("binary", "no")],
)
def test_it_reads_what_the_judge_stub_says_to_the_default_prompts(qtype, expected):
    """End to end without HTTP: default prompt, stub reply and logprobs, parsed value."""
    fields = {
        "prompt": "P",
        "response": "R",
        "response_a": "a",
        "response_b": "bb",
        "scale": 5,
        "checklist_item": "Is it short?",
        "reference": "ref",
    }
    config = StubConfig(bias="longer", rating_verdict="3", yes_no_verdict="NO")
    body = {"messages": messages_for(qtype, fields), "logprobs": True, "top_logprobs": 5}
    completion = JudgeStub(config).completion(body, "digest")["choices"][0]
    parsed = parse_reply(qtype, completion["message"]["content"], order="BA", scale=5)
    assert parsed.value == expected  # the longer response, shown second, is the original A
    confidence = confidence_from_logprobs(completion["logprobs"]["content"], parsed)
    assert confidence == pytest.approx(config.verdict_confidence)


# Messy replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**Final verdict:** **[[A]]**", "A"),
        ("Final verdict: `[[B]]`", "B"),
        ("My final verdict is [[ a ]].", "A"),
        ("[[b]]\n\nExplanation: B is right, A is off by one.", "B"),
        ("A is better. [[A]]\n\nFinal verdict: [[A]]", "A"),
        ("I first leaned to [[A]], but [[B]] handles the edge case.\n\nFinal verdict: [[B]]", "B"),
        ("Both have merits ([[A]] style, [[B]] substance). Overall: [[C]]", "tie"),
        ("[[Tie]]", "tie"),
        ("Verdict: [[Assistant B]]", "B"),
        ("[[A]] [[A]]", "A"),
        ("[[[A]]]", "A"),
        ("Final verdict: [[A]]. Wait, on reflection B is right: [[B]]", "B"),
    ],
)
def test_it_reads_messy_pairwise_replies_by_their_last_verdict(text, expected):
    assert value("pairwise", text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Assistant A is better.",
        "Final verdict: A",
        "[[A]] or [[B]]",
        "[[A]]/[[B]]",
        "[[A]]\n[[B]]",
        "Hard to say: [[A]], [[C]].",
        "[[D]]",
        "[[A is better]]",
        "I prefer A. [[A]]\n\nOutput format: [[rating]]",
        "[[A]] [[ ]]",
        "[A]",
        "[[A\n]]",
    ],
)
def test_an_unreadable_pairwise_reply_is_invalid_with_its_raw_text(text):
    parsed = reply("pairwise", text)
    assert parsed == Parsed(INVALID, "", text)
    assert not parsed.is_valid


@pytest.mark.parametrize(
    ("order", "judge_says", "expected"),
    [
        ("AB", "A", "A"),
        ("AB", "B", "B"),
        ("BA", "A", "B"),
        ("BA", "B", "A"),
        ("BA", "C", "tie"),
        (None, "A", "A"),
        ("", "B", "B"),
    ],
)
def test_it_maps_the_judges_slot_back_to_the_original_response(order, judge_says, expected):
    parsed = reply("pairwise", f"Reasons. [[{judge_says}]]", order=order)
    assert (parsed.value, parsed.verdict) == (expected, judge_says)


@pytest.mark.parametrize("order", ["A", "AA", "ABC", 3])
def test_a_malformed_order_is_an_error(order):
    with pytest.raises(ValueError, match="order"):
        parse_reply("pairwise", "[[A]]", order=order)


@pytest.mark.parametrize(
    ("text", "scale", "expected"),
    [
        ("Rating: [[5]]", 5, "5"),
        ("Rating: [[ 3 ]]", 5, "3"),
        ("**Rating: [[2]]**", 5, "2"),
        ("Rating: [[4/5]]", 5, "4"),
        ("Rating: [[4.0]]", 5, "4"),
        ("Solid.\nRating: 4", 5, "4"),
        ("rating = 4/5. Thanks!", 5, "4"),
        ("I would say Rating: 2 at first... Rating: [[3]]", 5, "3"),
        ("Rating: 3\nRating: [[3]]", 5, "3"),
        ("Rating: [[1]]", 2, "1"),
        ("Rating: [[6]]", 5, INVALID),
        ("Rating: [[0]]", 5, INVALID),
        ("Rating: [[4.5]]", 5, INVALID),
        ("Rating: [[4/10]]", 5, INVALID),
        ("Rating: [[four]]", 5, INVALID),
        ("Rating: [[N]]", 5, INVALID),
        ("[[4]]\nRating: 3", 5, INVALID),
        ("It deserves a 4.", 5, INVALID),
        ("Score: 4", 5, INVALID),
    ],
)
def test_it_reads_a_likert_rating_only_inside_the_scale(text, scale, expected):
    assert value("likert", text, scale=scale) == expected


@pytest.mark.parametrize(
    ("qtype", "text", "expected"),
    [
        ("checklist", "Yes, it does. [[yes]]", "yes"),
        ("checklist", "[[ No. ]]", "no"),
        ("checklist", "**[[YES]]**\n\nIt lists three items.", "yes"),
        ("checklist", "[[NA]]", "na"),
        ("binary", "[[N/A]]", INVALID),
        ("binary", "Yes, no doubt. [[NO]]", "no"),
        ("binary", "[[YES]] or [[NO]], hard to say", INVALID),
        ("binary", "[[YES]]\n[[NO]]", INVALID),
        ("binary", "[[maybe]]", INVALID),
        ("binary", "[[correct]]", INVALID),
        # Without any marker, a last line that is nothing but the answer counts...
        ("checklist", "It lists three items.\n\nYES", "yes"),
        ("checklist", "It lists three items.\n**Answer: NO**", "no"),
        ("binary", "The totals differ.\nFinal verdict: no.", "no"),
        ("checklist", "Not applicable here.\nN/A", "na"),
        # ...and nothing else does.
        ("binary", "The answer is yes.", INVALID),
        ("binary", "It agrees with the reference, so yes", INVALID),
        ("binary", "YES\nThough the units are missing.", INVALID),
        ("binary", "[[maybe]]\nYES", INVALID),
        ("binary", "Yes or no?", INVALID),
    ],
)
def test_it_reads_yes_no_answers_and_refuses_to_guess(qtype, text, expected):
    assert value(qtype, text) == expected


@pytest.mark.parametrize(
    ("text", "multiple", "expected"),
    [
        ("[[math]]", False, "math"),
        ("[[ MATH ]]", False, "math"),
        ("[[Open  Chat]]", False, "open chat"),
        ("[[Q&A, general]]", False, "Q&A, general"),
        ("[[physics]]", False, INVALID),
        ("[[math; code]]", False, INVALID),
        ("[[math]] or [[code]]", False, INVALID),
        ("[[code; math]]", True, "math;code"),
        ("[[Code;MATH;code]]", True, "math;code"),
        ("[[code, math]]", True, "math;code"),
        ("[[Q&A, general; code]]", True, "code;Q&A, general"),
        ("[[open chat]]", True, "open chat"),
        ("[[math; physics]]", True, INVALID),
        ("[[]]", True, INVALID),
        ("[[ ; ]]", True, INVALID),
    ],
)
def test_it_reads_categorical_codes_in_the_rubrics_terms(text, multiple, expected):
    assert value("categorical", text, choices=CODES, multiple=multiple) == expected


def test_exact_spelling_decides_between_codes_that_differ_only_in_case():
    assert value("categorical", "[[Math]]", choices=["math", "Math"]) == "Math"
    assert value("categorical", "[[MATH]]", choices=["math", "Math"]) == INVALID


@pytest.mark.parametrize(
    ("text", "rationale"),
    [
        ("A is right.\n\nFinal verdict: [[A]]", "A is right."),
        ("A is right. **Final Verdict:** [[A]]", "A is right."),
        ("A is right. My verdict is [[A]]", "A is right."),
        ("B gives the better answer [[B]]", "B gives the better answer"),
        ("Both tie. [[C]] [[C]]", "Both tie."),
        ("[[A]]", ""),
        ("A wins.\n[[A]]\n\nMore notes after the verdict.", "A wins."),
    ],
)
def test_the_rationale_is_the_text_before_the_verdict(text, rationale):
    assert reply("pairwise", text).rationale == rationale


def test_it_needs_the_scale_and_choices_it_reads_against():
    with pytest.raises(ValueError, match="scale"):
        parse_reply("likert", "[[3]]")
    with pytest.raises(ValueError, match="choices"):
        parse_reply("categorical", "[[math]]")
    with pytest.raises(ValueError, match="'text'"):
        parse_reply("text", "anything")


# Properties -----------------------------------------------------------------------------------

no_brackets = st.text(st.characters(blacklist_characters="[]"))
WORDS = [
    "A",
    "B",
    "tie",
    "is",
    "better",
    "my",
    "verdict",
    "answer",
    "rating",
    "final",
    "yes",
    "no",
    "{prompt}",
    "**",
    "\n",
    ":",
    "1",
    "or",
]


@given(no_brackets, st.sampled_from("ABC"), st.sampled_from(["AB", "BA"]))
def test_any_rationale_then_a_verdict_reads_as_that_verdict(rationale, verdict, order):
    parsed = parse_reply("pairwise", f"{rationale}\n\nFinal verdict: [[{verdict}]]", order=order)
    assert parsed.verdict == verdict
    assert parsed.value == {"A": order[0], "B": order[1], "C": "tie"}[verdict]


@given(st.lists(st.sampled_from(WORDS)), st.sampled_from(["yes", "no"]))
def test_the_rationale_comes_back_as_written(words, verdict):
    rationale = " ".join(words) + " end."
    parsed = parse_reply("binary", f"{rationale}\n\nFinal answer: [[{verdict.upper()}]]")
    assert (parsed.value, parsed.rationale) == (verdict, rationale.strip())


@given(st.lists(st.sampled_from([*WORDS, "[[A]]", "[[B]]", "[[C]]"])), st.sampled_from("ABC"))
def test_earlier_mentions_of_other_verdicts_do_not_matter(words, verdict):
    text = " ".join(words) + f".\n\nMy final verdict is [[{verdict}]]. Thanks."
    assert parse_reply("pairwise", text).verdict == verdict


@given(st.integers(2, 100), st.integers(-5, 105))
def test_a_likert_rating_reads_exactly_when_on_the_scale(scale, rating):
    parsed = parse_reply("likert", f"Fine.\nRating: [[{rating}]]", scale=scale)
    assert parsed.value == (str(rating) if 1 <= rating <= scale else INVALID)


# Each code up to three times: the answer stays within the 300 characters a [[...]] marker
# may hold (a longer one is no verdict, by design).
@given(
    st.lists(st.sampled_from(CODES), min_size=1, max_size=3 * len(CODES)),
    st.sampled_from(["; ", ";", " ;  "]),
)
def test_chosen_codes_come_back_once_each_in_rubric_order(chosen, separator):
    parsed = parse_reply(
        "categorical", f"[[{separator.join(chosen)}]]", choices=CODES, multiple=True
    )
    assert parsed.value == ";".join(c for c in CODES if c in chosen)


@given(
    st.sampled_from(["pairwise", "likert", "checklist", "binary", "categorical"]),
    st.text(st.sampled_from(list("[]ABCabcYESNOyesno12345;:/ \n*tie"))),
)
def test_any_reply_reads_as_a_value_the_rubric_accepts_or_as_invalid(qtype, text):
    options = {"scale": 5} if qtype == "likert" else {}
    if qtype == "categorical":
        options = {"choices": ["a", "b", "c"], "multiple": True}
    parsed = parse_reply(qtype, text, order="BA", **options)
    assert parsed.raw == text
    if parsed.value != INVALID:
        rubric_question(qtype, **options).clean(parsed.value)


# Confidence from logprobs ---------------------------------------------------------------------


def token(text, p=1.0, *alternatives):
    """A logprobs entry: the token, its probability, and alternatives (token, probability)."""
    top = [(text, p), *alternatives]
    return {
        "token": text,
        "logprob": math.log(p),
        "top_logprobs": [{"token": t, "logprob": math.log(q)} for t, q in top],
    }


def tokens_reply(qtype, entries, **options):
    text = "".join(e["token"] for e in entries)
    parsed = parse_reply(qtype, text, **options)
    return parsed, confidence_from_logprobs(entries, parsed)


@pytest.mark.parametrize(
    "entries",
    [
        # "[[", "A", "]]": the usual split
        [token("A is better. "), token("[["), token("A", 0.6, ("B", 0.3), ("C", 0.1)), token("]]")],
        # "[[A" in one token; alternatives carry the brackets too
        [token("A is better. "), token("[[A", 0.6, ("[[B", 0.3), ("[[C", 0.1)), token("]]")],
        # "[[ A ]]" with a leading space on the verdict token; one alternative without it
        [
            token("A is better. [["),
            token(" A", 0.6, (" B", 0.2), ("B", 0.1), (" C", 0.1)),
            token(" ]]"),
        ],
        # "A]]" together; alternatives that are no verdict ("**", " ") are left out
        [
            token("A is better.\n\n[["),
            token("A]]", 0.6, ("B]]", 0.3), ("**", 0.05), (" ", 0.04), ("C]]", 0.1)),
        ],
        # "Assistant", " A": the decision is at the second token
        [
            token("A is better. [["),
            token("Assistant", 0.9, ("A", 0.1)),
            token(" A", 0.6, (" B", 0.4 * 3 / 4), (" C", 0.4 / 4)),
            token("]]"),
        ],
    ],
)
def test_confidence_is_the_verdicts_share_among_the_verdicts_at_its_token(entries):
    parsed, confidence = tokens_reply("pairwise", entries)
    assert parsed.value == "A"
    assert confidence == pytest.approx(0.6)


SPLITTABLE = [
    ("pairwise", {}, "Reasons. **Final verdict:** [[ Assistant B ]]"),
    ("pairwise", {}, "Even. [[tie]] [[C]]"),
    ("likert", {"scale": 10}, "Good.\nRating: [[10]]"),
    ("likert", {"scale": 10}, "Good. Rating: 1"),
    ("likert", {"scale": 10}, "Good. Rating: [[ 7/10 ]]."),
    ("checklist", {}, "Fine.\n**Answer: N/A**"),
    ("binary", {}, "Fine. [[no.]] More notes."),
    ("categorical", {"choices": ["open chat", "open", "math"]}, "Chatty. [[ Open chat ]]"),
    ("categorical", {"choices": ["open chat", "open", "math"]}, "Short. [[open]]"),
]


@given(st.sampled_from(SPLITTABLE), st.data())
def test_a_certain_verdict_has_confidence_one_however_the_reply_is_tokenised(case, data):
    qtype, options, text = case
    cuts = data.draw(st.sets(st.integers(1, len(text) - 1), max_size=12))
    bounds = [0, *sorted(cuts), len(text)]
    entries = [token(text[a:b]) for a, b in itertools.pairwise(bounds)]
    parsed, confidence = tokens_reply(qtype, entries, **options)
    assert parsed.is_valid
    assert confidence == pytest.approx(1.0)


def test_confidence_is_about_the_judges_own_verdict_whatever_the_order():
    entries = [token("A is better. [["), token("A", 0.7, ("B", 0.2), ("C", 0.1)), token("]]")]
    text = "".join(e["token"] for e in entries)
    for order in ("AB", "BA"):
        parsed = parse_reply("pairwise", text, order=order)
        assert confidence_from_logprobs(entries, parsed) == pytest.approx(0.7)


def test_confidence_counts_spellings_of_the_same_verdict_together():
    entries = [token("It matches. [["), token("YES", 0.5, ("Yes", 0.2), ("NO", 0.3)), token("]]")]
    parsed, confidence = tokens_reply("binary", entries)
    assert (parsed.value, confidence) == ("yes", pytest.approx(0.7))


def test_confidence_leaves_out_ratings_off_the_scale():
    entries = [
        token("Rating: [["),
        token("5", 0.6, ("4", 0.2), ("6", 0.15), ("3", 0.05)),
        token("]]"),
    ]
    parsed, confidence = tokens_reply("likert", entries, scale=5)
    assert (parsed.value, confidence) == ("5", pytest.approx(0.6 / 0.85))


def test_a_two_digit_rating_is_decided_at_its_second_digit():
    entries = [
        token("Rating: [["),
        token("1", 0.5, ("9", 0.5)),
        token("0", 0.8, ("]]", 0.2)),
        token("]]"),
    ]
    parsed, confidence = tokens_reply("likert", entries, scale=10)
    assert (parsed.value, confidence) == ("10", pytest.approx(0.8))


def test_a_one_digit_rating_that_could_go_on_is_decided_at_the_bracket():
    entries = [token("Rating: [["), token("1", 0.5, ("9", 0.5)), token("]]", 0.75, ("0", 0.25))]
    parsed, confidence = tokens_reply("likert", entries, scale=10)
    assert (parsed.value, confidence) == ("1", pytest.approx(0.75))


def test_a_split_yes_is_decided_at_its_first_piece():
    entries = [token("Fine. [["), token("Y", 0.8, ("N", 0.2)), token("ES"), token("]]")]
    assert tokens_reply("binary", entries)[1] == pytest.approx(0.8)
    # On a checklist "N" could still become NO or N/A: it counts against YES but for neither.
    assert tokens_reply("checklist", entries)[1] == pytest.approx(0.8)
    entries = [token("Fine. [["), token("N", 0.8, ("Y", 0.2)), token("O"), token("]]")]
    assert tokens_reply("binary", entries)[1] == pytest.approx(0.8)
    # ...is decided at "O" for the checklist, conditional on the "N": here a certain "O"
    assert tokens_reply("checklist", entries)[1] == pytest.approx(1.0)
    entries[2] = token("O", 0.9, ("/A", 0.1))
    assert tokens_reply("checklist", entries)[1] == pytest.approx(0.9)


def test_confidence_for_a_last_line_answer_and_a_rating_without_brackets():
    entries = [token("The totals differ.\n"), token("NO", 0.9, ("YES", 0.1))]
    assert tokens_reply("binary", entries) == (
        Parsed("no", "The totals differ.", "The totals differ.\nNO", "no"),
        pytest.approx(0.9),
    )
    entries = [token("Fine.\nRating:"), token(" 4", 0.5, (" 3", 0.5)), token("\n")]
    assert tokens_reply("likert", entries, scale=5)[1] == pytest.approx(0.5)


def test_confidence_for_a_categorical_code_split_over_tokens():
    entries = [
        token("Chatty. [["),
        token("open", 0.6, ("math", 0.3), ("code", 0.1)),
        token(" chat"),
        token("]]"),
    ]
    parsed, confidence = tokens_reply("categorical", entries, choices=CODES)
    assert (parsed.value, confidence) == ("open chat", pytest.approx(0.6))


def test_confidence_is_taken_at_the_final_verdict_when_it_is_repeated():
    entries = [
        token("[["),
        token("A", 0.5, ("B", 0.5)),
        token("]] so.\n\nFinal verdict: [["),
        token("A", 0.99, ("B", 0.01)),
        token("]]"),
    ]
    assert tokens_reply("pairwise", entries)[1] == pytest.approx(0.99)


def test_the_chosen_token_counts_even_when_top_logprobs_leave_it_out():
    entry = token("B", 0.5, ("A", 0.25))
    entry["top_logprobs"] = entry["top_logprobs"][1:]
    entries = [token("Close. [["), entry, token("]]")]
    assert tokens_reply("pairwise", entries)[1] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("entries", "qtype", "options"),
    [
        (None, "pairwise", {}),
        ([], "pairwise", {}),
        ([token("No verdict here.")], "pairwise", {}),
        (
            [token("[["), token("code", 0.9), token("; math]]")],
            "categorical",
            {"choices": CODES, "multiple": True},
        ),
        ([{"token": "[[A]]"}], "pairwise", {}),  # no logprob
        ([{"logprob": 0.0}], "pairwise", {}),
    ],
)
def test_no_confidence_without_usable_logprobs_or_a_single_verdict(entries, qtype, options):
    text = "".join(e.get("token", "") for e in entries or [])
    parsed = parse_reply(qtype, text or "x [[A]]", **options)
    assert confidence_from_logprobs(entries, parsed) is None


def test_no_confidence_when_the_tokens_say_something_else_than_the_reply():
    parsed = parse_reply("pairwise", "Better. [[A]]")
    other = [token("Better. [["), token("B", 0.9, ("A", 0.1)), token("]]")]
    assert confidence_from_logprobs(other, parsed) is None


def test_confidence_needs_the_parsed_reply_not_its_value():
    with pytest.raises(TypeError, match="Parsed"):
        confidence_from_logprobs([token("[[A]]")], "A")


def test_it_imports_no_django():
    code = "import sys, judging.parsing; sys.exit('django' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
