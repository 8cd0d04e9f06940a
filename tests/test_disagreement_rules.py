"""Disagreement rules: which (item, rule, question) fire on constructed label sets.

Each rule is checked on both sides of its condition (fires / does not), thresholds at the
boundary, and the vectorised majority and judge verdicts against calibration.agreement's own
functions on random tables, so that routing and the report never disagree on what a
majority or a verdict is.
"""

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotation.queue_rules import DEFAULT_RULES, RULES, check_rules
from calibration.agreement import judge_verdicts, unique_majority
from calibration.disagreement import reasons, rule_counts

COLUMNS = ["item", "rater", "kind", "question", "value", "order", "confidence"]
ALL_ON = {
    "no_majority": True,
    "low_agreement": 0.7,
    "judge_conflict": True,
    "judge_inconsistent": True,
    "low_confidence": 0.6,
    "unable": True,
    "gold_miss": True,
}


# Builders -----------------------------------------------------------------------------------


def human(item, rater, value, question="pref", confidence=None):
    return (item, rater, "human", question, value, "", confidence)


def judge(item, rater, value, order="", question="pref", confidence=None):
    return (item, rater, "llm", question, value, order, confidence)


def humans(item, *values, question="pref"):
    """One human label per value, from raters h0, h1, ..."""
    return [human(item, f"h{k}", v, question) for k, v in enumerate(values)]


def table(*groups):
    rows = [row for group in groups for row in (group if isinstance(group, list) else [group])]
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def fired(labels, rules, gold=None):
    """The (item, rule, question) triples, in the order `reasons` lists them."""
    return list(reasons(labels, rules, gold).itertuples(index=False, name=None))


def items_for(labels, rule, gold=None, threshold=True):
    return {item for item, _, _ in fired(labels, {rule: threshold}, gold)}


# no_majority --------------------------------------------------------------------------------


def test_it_routes_an_item_where_two_values_share_the_top_count():
    labels = table(humans("tied", "A", "A", "B", "B"), humans("decided", "A", "A", "B"))
    assert fired(labels, {"no_majority": True}) == [("tied", "no_majority", "pref")]


def test_it_needs_two_human_labels_before_there_can_be_no_majority():
    labels = table(humans("one", "A"), humans("one_left", "A", "unable", ""))
    assert items_for(labels, "no_majority") == set()


def test_it_leaves_unable_and_empty_values_out_of_the_majority():
    # Counted, two `unable` (or two empties) would be a unique majority over one A and one B.
    labels = table(
        humans("with_unable", "A", "B", "unable", "unable"),
        humans("with_empty", "A", "B", "", ""),
        humans("with_nan", "A", "B", math.nan, math.nan),
    )
    assert items_for(labels, "no_majority") == {"with_unable", "with_empty", "with_nan"}


def test_it_ignores_judges_when_looking_for_a_human_majority():
    labels = table(humans("x", "A", "B"), judge("x", "j", "A"), judge("x", "k", "A"))
    assert items_for(labels, "no_majority") == {"x"}


# low_agreement ------------------------------------------------------------------------------


def test_it_routes_an_item_whose_majority_share_is_below_the_threshold_not_at_it():
    labels = table(humans("three_of_four", "A", "A", "A", "B"))
    assert items_for(labels, "low_agreement", threshold=0.75) == set()
    assert items_for(labels, "low_agreement", threshold=0.76) == {"three_of_four"}


def test_it_counts_the_share_among_human_labels_without_unable_and_empty_ones():
    labels = table(humans("x", "A", "A", "unable", "", "B"))  # 2 of 3: 0.667
    assert items_for(labels, "low_agreement", threshold=0.66) == set()
    assert items_for(labels, "low_agreement", threshold=0.67) == {"x"}


def test_it_never_finds_low_agreement_in_unanimity_or_a_single_label():
    labels = table(humans("unanimous", "B", "B"), humans("single", "A"))
    assert items_for(labels, "low_agreement", threshold=1) == set()


def test_it_leaves_an_item_without_a_majority_to_no_majority_not_low_agreement():
    labels = table(humans("tied", "A", "B"))
    assert fired(labels, {"low_agreement": 1, "no_majority": True}) == [
        ("tied", "no_majority", "pref")
    ]


# judge_conflict -----------------------------------------------------------------------------


def test_it_routes_an_item_where_a_judge_differs_from_the_human_majority():
    labels = table(
        humans("differs", "A", "A", "B"),
        judge("differs", "j", "B", "AB"),
        judge("differs", "j", "B", "BA"),
        humans("agrees", "A", "A", "B"),
        judge("agrees", "j", "A", "AB"),
        judge("agrees", "j", "A", "BA"),
    )
    assert fired(labels, {"judge_conflict": True}) == [("differs", "judge_conflict", "pref")]


def test_it_takes_a_judge_seen_in_one_order_only_at_that_verdict():
    labels = table(
        humans("differs", "A", "A"),
        judge("differs", "j", "B", "BA"),
        humans("agrees", "A", "A"),
        judge("agrees", "j", "A", "AB"),
    )
    assert items_for(labels, "judge_conflict") == {"differs"}


def test_it_treats_inconsistent_orders_as_a_tie_which_differs_from_an_a_or_b_majority():
    labels = table(
        humans("majority_a", "A", "A"),
        judge("majority_a", "j", "A", "AB"),
        judge("majority_a", "j", "B", "BA"),
        humans("majority_tie", "tie", "tie", "A"),
        judge("majority_tie", "j", "A", "AB"),
        judge("majority_tie", "j", "B", "BA"),
    )
    assert items_for(labels, "judge_conflict") == {"majority_a"}


def test_it_counts_a_tie_between_a_b_majority_as_a_conflict_even_with_no_tie_anywhere_else():
    # No label says "tie": the combined tie must still differ from the majority.
    labels = table(humans("x", "B"), judge("x", "j", "B", "AB"), judge("x", "j", "A", "BA"))
    assert items_for(labels, "judge_conflict") == {"x"}


def test_it_takes_one_human_label_as_its_own_majority_for_judge_conflict():
    labels = table(humans("single", "A"), judge("single", "j", "B"))
    assert items_for(labels, "judge_conflict") == {"single"}


def test_it_does_not_find_judge_conflict_where_humans_have_no_majority():
    labels = table(humans("tied", "A", "B"), judge("tied", "j", "B"))
    assert items_for(labels, "judge_conflict") == set()


def test_it_lists_a_conflict_once_however_many_judges_differ():
    labels = table(
        humans("x", "A", "A"),
        judge("x", "j1", "B"),
        judge("x", "j2", "tie"),
        judge("x", "j3", "A"),
    )
    assert fired(labels, {"judge_conflict": True}) == [("x", "judge_conflict", "pref")]


def test_it_routes_on_any_of_several_judges():
    labels = table(
        humans("x", "A", "A"),
        judge("x", "agrees", "A", "AB"),
        judge("x", "agrees", "A", "BA"),
        judge("x", "differs", "B", "AB"),
        judge("x", "differs", "B", "BA"),
        humans("y", "A", "A"),
        judge("y", "agrees", "A", "AB"),
        judge("y", "agrees", "A", "BA"),
    )
    assert items_for(labels, "judge_conflict") == {"x"}


# judge_inconsistent -------------------------------------------------------------------------


def test_it_routes_an_item_where_a_judges_two_orders_disagree():
    labels = table(
        judge("flips", "j", "A", "AB"),
        judge("flips", "j", "B", "BA"),
        judge("steady", "j", "A", "AB"),
        judge("steady", "j", "A", "BA"),
        judge("one_order", "j", "A", "AB"),
    )
    assert fired(labels, {"judge_inconsistent": True}) == [("flips", "judge_inconsistent", "pref")]


def test_it_compares_each_judge_only_with_itself_across_orders():
    labels = table(
        judge("x", "j1", "A", "AB"),
        judge("x", "j1", "A", "BA"),
        judge("x", "j2", "B", "AB"),
        judge("x", "j2", "B", "BA"),
    )
    assert items_for(labels, "judge_inconsistent") == set()


# invalid verdicts ---------------------------------------------------------------------------


def test_it_never_fires_a_rule_on_an_invalid_verdict():
    labels = table(
        humans("x", "A", "A"),
        judge("x", "j", "A", "AB", confidence=0.9),
        judge("x", "j", "invalid", "BA", confidence=0.1),
        humans("only_invalid", "A"),
        judge("only_invalid", "j", "invalid", "AB", confidence=0.1),
    )
    assert fired(labels, ALL_ON) == []


def test_it_ignores_judges_answering_unable_or_nothing_as_calibration_does():
    labels = table(
        humans("x", "A", "A"),
        judge("x", "j", "A", "AB"),
        judge("x", "j", "unable", "BA", confidence=0.1),
        judge("x", "k", "", "AB"),
    )
    assert fired(labels, ALL_ON) == []


# low_confidence -----------------------------------------------------------------------------


def test_it_routes_a_judge_verdict_with_confidence_below_the_threshold_not_at_it():
    labels = table(
        judge("at", "j", "A", "AB", confidence=0.6),
        judge("at", "j", "A", "BA", confidence=0.9),
        judge("below", "j", "A", "AB", confidence=0.9),
        judge("below", "j", "A", "BA", confidence=0.59),
        judge("none_given", "j", "A", "AB"),
    )
    assert fired(labels, {"low_confidence": 0.6}) == [("below", "low_confidence", "pref")]


def test_it_takes_low_confidence_from_judges_only():
    labels = table(human("x", "h", "A", confidence=0.1), judge("x", "j", "A", confidence=0.8))
    assert items_for(labels, "low_confidence", threshold=0.6) == set()


# unable -------------------------------------------------------------------------------------


def test_it_routes_an_item_any_human_was_unable_to_assess():
    labels = table(
        humans("one_unable", "A", "A", "unable"),
        humans("all_able", "A", "B"),
        humans("judge_unable", "A"),
        judge("judge_unable", "j", "unable"),
    )
    assert fired(labels, {"unable": True}) == [("one_unable", "unable", "pref")]


# gold_miss ----------------------------------------------------------------------------------


def test_it_routes_a_gold_item_whose_human_majority_misses_the_gold_answer():
    labels = table(
        humans("missed", "A", "A", "B"),
        humans("hit", "B", "B", "A"),
        humans("not_gold", "A", "A"),
        humans("tied", "A", "B"),
    )
    gold = {"missed": {"pref": "B"}, "hit": {"pref": "B"}, "tied": {"pref": "B"}}
    assert fired(labels, {"gold_miss": True}, gold) == [("missed", "gold_miss", "pref")]


def test_it_checks_gold_per_question_and_only_the_questions_with_gold_answers():
    labels = table(
        humans("g", "yes", "yes", question="check[0]"),
        humans("g", "no", "no", question="check[1]"),
        humans("g", "A", "A"),
    )
    gold = {"g": {"check[0]": "yes", "check[1]": "yes"}, "unlabelled": {"pref": "A"}}
    assert fired(labels, {"gold_miss": True}, gold) == [("g", "gold_miss", "check[1]")]


def test_it_compares_gold_with_humans_and_not_judges():
    labels = table(humans("g", "A"), judge("g", "j", "B"))
    assert items_for(labels, "gold_miss", gold={"g": {"pref": "A"}}) == set()
    assert items_for(labels, "gold_miss", gold={"g": {"pref": "B"}}) == {"g"}


# checklists, order, rules off, counts -------------------------------------------------------


def test_it_evaluates_each_checklist_row_as_its_own_question():
    labels = table(
        humans("x", "yes", "no", question="check[0]"),
        humans("x", "yes", "yes", question="check[1]"),
        humans("x", "no", "yes", question="check[2]"),
        humans("x", "no", "yes", "unable", question="check[10]"),
    )
    assert fired(labels, {"no_majority": True, "unable": True}) == [
        ("x", "no_majority", "check[0]"),
        ("x", "no_majority", "check[2]"),
        ("x", "no_majority", "check[10]"),
        ("x", "unable", "check[10]"),
    ]


def test_it_lists_reasons_by_item_then_rule_order_then_question():
    labels = table(
        humans("b", "A", "B", "unable"),
        human("a", "h0", "x", question="q2"),
        human("a", "h1", "unable", question="q2"),
        human("a", "h2", "y", question="q2"),
        humans("a", "x", "y", question="q1"),
        judge("a", "j", "A", "AB"),
        judge("a", "j", "B", "BA"),
    )
    assert fired(labels, ALL_ON) == [
        ("a", "no_majority", "q1"),
        ("a", "no_majority", "q2"),
        ("a", "judge_inconsistent", "pref"),
        ("a", "unable", "q2"),
        ("b", "no_majority", "pref"),
        ("b", "unable", "pref"),
    ]


def test_it_fires_no_rule_that_is_off():
    labels = table(
        humans("x", "A", "B", "unable"),
        judge("x", "j", "A", "AB", confidence=0.1),
        judge("x", "j", "B", "BA"),
        humans("y", "A", "A", "B"),
        judge("y", "j", "B"),
    )
    gold = {"y": {"pref": "B"}}
    assert {rule for _, rule, _ in fired(labels, ALL_ON, gold)} == set(RULES)
    assert fired(labels, {}, gold) == []
    assert fired(labels, {rule: False for rule in RULES}, gold) == []
    assert {rule for _, rule, _ in fired(labels, DEFAULT_RULES, gold)} == {
        "no_majority",
        "judge_inconsistent",
        "unable",
        "gold_miss",
    }


def test_it_counts_distinct_items_per_rule_and_routed_with_zero_for_rules_off():
    labels = table(
        humans("x", "A", "B", question="check[0]"),
        humans("x", "A", "B", question="check[1]"),
        humans("y", "A", "B", "unable"),
        humans("z", "A", "A"),
    )
    counts = rule_counts(reasons(labels, DEFAULT_RULES))
    assert counts == {
        "routed": 2,
        "rules": {
            "no_majority": 2,
            "low_agreement": 0,
            "judge_conflict": 0,
            "judge_inconsistent": 0,
            "low_confidence": 0,
            "unable": 1,
            "gold_miss": 0,
        },
    }
    assert list(counts["rules"]) == list(RULES)


def test_it_finds_nothing_in_an_empty_table():
    found = reasons(table(), ALL_ON, {"g": {"pref": "A"}})
    assert list(found.columns) == ["item", "rule", "question"]
    assert rule_counts(found) == {"routed": 0, "rules": dict.fromkeys(RULES, 0)}


# check_rules --------------------------------------------------------------------------------


def test_it_normalises_rules_to_every_rule_with_off_as_false():
    assert check_rules({"no_majority": True, "low_agreement": 1}) == {
        "no_majority": True,
        "low_agreement": 1.0,
        "judge_conflict": False,
        "judge_inconsistent": False,
        "low_confidence": False,
        "unable": False,
        "gold_miss": False,
    }
    assert check_rules(ALL_ON) == ALL_ON
    assert list(check_rules({})) == list(RULES)
    assert check_rules(DEFAULT_RULES)["judge_conflict"] is False


@pytest.mark.parametrize(
    "rules, message",
    [
        ({"no_majoritty": True}, "unknown rule 'no_majoritty'; expected one of no_majority,"),
        ({"no_majority": 1}, "'no_majority' must be true or false, not 1"),
        ({"gold_miss": "true"}, "'gold_miss' must be true or false, not 'true'"),
        ({"unable": None}, "'unable' must be true or false, not None"),
        ({"low_agreement": True}, "'low_agreement' needs a threshold: a number in (0, 1]"),
        ({"low_confidence": 0}, "'low_confidence' must be false or a number in (0, 1], not 0"),
        ({"low_confidence": 1.5}, "'low_confidence' must be false or a number in (0, 1], not 1.5"),
        ({"low_agreement": -0.1}, "'low_agreement' must be false or a number in (0, 1], not -0.1"),
        (
            {"low_agreement": "0.7"},
            "'low_agreement' must be false or a number in (0, 1], not '0.7'",
        ),
        ({"low_agreement": math.nan}, "'low_agreement' must be false or a number in (0, 1]"),
        (["no_majority"], "the rules must be a JSON object of rule names"),
    ],
)
def test_it_refuses_rules_naming_the_key_and_what_it_expects(rules, message):
    with pytest.raises(ValueError) as error:
        check_rules(rules)
    assert str(error.value).startswith(message)


def test_it_refuses_bad_rules_before_looking_at_labels():
    with pytest.raises(ValueError, match="needs a threshold"):
        reasons(table(humans("x", "A", "B")), {"no_majority": True, "low_confidence": True})


# Agreement with calibration.agreement on random tables ----------------------------------------

HUMAN_VALUES = ["A", "B", "tie", "unable", "", math.nan]
JUDGE_VALUES = ["A", "B", "tie", "invalid", "unable", ""]
NOT_LABELS = ("unable", "invalid", "")

random_labels = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["i1", "i2", "i3", "i4"]),
            st.sampled_from(["h1", "h2", "h3", "h4", "h5"]),
            st.just("human"),
            st.sampled_from(["pref", "check[0]"]),
            st.sampled_from(HUMAN_VALUES),
            st.just(""),
            st.none(),
        ),
        st.tuples(
            st.sampled_from(["i1", "i2", "i3", "i4"]),
            st.sampled_from(["j1", "j2"]),
            st.just("llm"),
            st.sampled_from(["pref", "check[0]"]),
            st.sampled_from(JUDGE_VALUES),
            st.sampled_from(["AB", "BA"]),
            st.none(),
        ),
    ),
    max_size=40,
)
random_gold = st.dictionaries(
    st.sampled_from(["i1", "i2", "i3", "i4"]),
    st.dictionaries(st.sampled_from(["pref", "check[0]"]), st.sampled_from(["A", "B", "tie"])),
)


@settings(max_examples=300, deadline=None)
@given(rows=random_labels, gold=random_gold, threshold=st.sampled_from([0.5, 0.6, 0.7, 1.0]))
def test_it_agrees_with_calibrations_majority_and_judge_verdicts(rows, gold, threshold):
    labels = pd.DataFrame.from_records(rows, columns=COLUMNS).drop_duplicates(
        ["item", "rater", "question", "order"]
    )
    rules = {**ALL_ON, "low_agreement": threshold}
    found = {(rule, item, question) for item, rule, question in fired(labels, rules, gold)}
    expected = set()
    cleaned = labels[labels["value"].notna() & ~labels["value"].isin(NOT_LABELS)]
    for (item, question), rows in cleaned.groupby(["item", "question"]):
        votes = rows.loc[rows["kind"] == "human", "value"]
        majority = unique_majority(votes) if len(votes) else None
        if len(votes) >= 2 and majority is None:
            expected.add(("no_majority", item, question))
        if majority is not None and (votes == majority).mean() < threshold:
            expected.add(("low_agreement", item, question))
        if majority is not None and gold.get(item, {}).get(question, majority) != majority:
            expected.add(("gold_miss", item, question))
        for _, verdicts in rows[rows["kind"] == "llm"].groupby("rater"):
            if majority is not None and judge_verdicts(verdicts).iloc[0] != majority:
                expected.add(("judge_conflict", item, question))
            if verdicts["value"].nunique() > 1:
                expected.add(("judge_inconsistent", item, question))
    for item, question in labels.loc[labels["value"].eq("unable") & labels["kind"].eq("human")][
        ["item", "question"]
    ].itertuples(index=False):
        expected.add(("unable", item, question))
    assert found == expected
