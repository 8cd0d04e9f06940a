"""Disagreement rules: which items go to the expert queue, and why.

Pure pandas on one study's long label table, no Django: the routing code turns a study's
labels into the table, stores the reasons this module finds and queues the items. The API:

- `RULES`, `check_rules` (from `annotation.queue_rules`, where a study's rules JSON is
  defined): the rule names, in the order reasons are listed, and the rules JSON validated and
  normalised to every rule present.
- `reasons(labels, rules, gold=None)`: one row (item, rule, question) per rule that fires on
  a question of an item; an item is routed when it has any row.
- `rule_counts(found)`: the `route` command's counts of those rows, per rule and routed.
- `lowest_agreement(labels)`: per item, the lowest share of its human labels on a question
  that give the most frequent value.

`labels` has the columns item, rater, kind (`human` or `llm`), question, value, order and
confidence (NaN or None when not given), already restricted to the analysed questions (no
free text, no strength rows; each checklist row its own question `key[i]`), one row per item,
rater, question and order (as the current labels are). An empty or NaN value is no label.
`order` itself is not read: a judge's rows for one item and question are its orders.
`gold` maps a gold item to its answers, {question: value}, in the same terms as the values
(the label CSV's, `annotation.rubrics.render_value`).

The rules, per item and question (`agreement`'s conventions, from MT-Bench):

- the human labels are the kind `human` values other than `unable` and empty; their majority
  is the one most frequent value, and there is none when two values share the top count (as
  `agreement.unique_majority`). One human label is its own majority.
- a judge's verdicts are its kind `llm` values other than `invalid` (a reply that could not be
  read), `unable` and empty, one per presentation order; its combined verdict is the common
  value when its orders agree and `tie` when they do not (as `agreement.judge_verdicts`); one
  order alone is the verdict. A judge with no verdict left fires no rule.

- `no_majority`: at least 2 human labels and no majority.
- `low_agreement` (threshold t): the share of the human labels equal to the majority is < t.
  An item without a majority has no such share and is left to `no_majority`; one label is a
  share of 1, so it never fires on a single label.
- `judge_conflict`: some judge's combined verdict differs from the human majority, on items
  that have one; a `tie` from inconsistent orders differs from an `A` or `B` majority.
- `judge_inconsistent`: some judge's verdicts for the two orders differ.
- `low_confidence` (threshold t): some judge's verdict carries a confidence < t.
- `unable`: some human answered `unable`.
- `gold_miss`: the item is gold for the question, and its human majority differs from the
  gold answer; as with `low_agreement`, an item without a majority is left to `no_majority`.

All of it is vectorised (groupby with built-in aggregations on integer codes), so a study of
100,000 items is decided in a fraction of a second: tests/bench/bench_disagreement.py.
"""

import math
import re

import numpy as np
import pandas as pd

from annotation.queue_rules import RULES, check_rules
from calibration.agreement import HUMAN, LLM, TIE, UNABLE

# A judge reply that could not be read (judging.parsing's INVALID; calibration does not import
# judging). Runs store no label for one, but a label table from elsewhere may carry it.
INVALID = "invalid"

REASON_COLUMNS = ["item", "rule", "question"]
_CHECKLIST_ROW = re.compile(r"^(?P<key>.*)\[(?P<index>\d+)\]$")


def reasons(labels, rules, gold=None):
    """Every (item, rule, question) that fires, by item, then rule order, then question.

    Checklist rows sort by their index (`check[2]` before `check[10]`).
    """
    rules = check_rules(rules)
    table = _Codes(labels)
    majorities = _human_majorities(table)
    fired = {}
    if rules["no_majority"]:
        # A single label is a majority, so an item without one has 2 labels or more.
        fired["no_majority"] = majorities.index[~majorities["has"]]
    if rules["low_agreement"]:
        share = majorities["top"] / majorities["labels"]
        fired["low_agreement"] = majorities.index[
            majorities["has"] & (share < rules["low_agreement"])
        ]
    majority = majorities.loc[majorities["has"], "value"]
    if rules["judge_conflict"] or rules["judge_inconsistent"]:
        verdicts = _judge_verdicts(table)
        judged = verdicts.index.get_level_values("cell")
        expected = majority.reindex(judged).to_numpy()
        differs = ~np.isnan(expected) & (verdicts["combined"].to_numpy() != expected)
        if rules["judge_conflict"]:
            fired["judge_conflict"] = judged[differs]
        if rules["judge_inconsistent"]:
            fired["judge_inconsistent"] = judged[verdicts["inconsistent"].to_numpy()]
    if rules["low_confidence"]:
        fired["low_confidence"] = table.cell[
            table.verdict & (table.confidence < rules["low_confidence"])
        ]
    if rules["unable"]:
        fired["unable"] = table.cell[table.unable]
    if rules["gold_miss"] and gold:
        fired["gold_miss"] = _gold_misses(table, majority, gold)
    return table.reason_frame(fired)


def rule_counts(found):
    """Items per rule (an item counts once per rule, under every rule that fired) and routed.

    The `route` command's "routed" and "rules" keys; a rule that is off counts 0.
    """
    per_rule = found.groupby("rule")["item"].nunique()
    return {
        "routed": int(found["item"].nunique()),
        "rules": {rule: int(per_rule.get(rule, 0)) for rule in RULES},
    }


def lowest_agreement(labels):
    """Per item with human labels, the lowest share, over its questions, of the human labels
    that give the question's most frequent value (the expert queue serves the lowest first)."""
    table = _Codes(labels)
    majorities = _human_majorities(table)
    share = (
        (majorities["top"] / majorities["labels"])
        .groupby(majorities.index.to_numpy() // table.n_questions)
        .min()
    )
    return pd.Series(share.to_numpy(), index=table.items.take(share.index.to_numpy()))


class _Codes:
    """The label table as integer codes: one `cell` per (item, question), one code per value.

    Grouping integers is what makes 100,000 items fast; `reason_frame` turns the cells that
    fired back into items and questions.
    """

    def __init__(self, labels):
        item_codes, self.items = pd.factorize(labels["item"])
        question_codes, self.questions = pd.factorize(labels["question"])
        self.n_questions = max(len(self.questions), 1)
        self.cell = item_codes.astype(np.int64) * self.n_questions + question_codes
        self.value, self.values = pd.factorize(labels["value"])  # NaN is -1
        self.rater, _ = pd.factorize(labels["rater"])
        self.confidence = pd.to_numeric(labels["confidence"], errors="coerce").to_numpy(float)
        value = labels["value"]
        given = (self.value >= 0) & (value != "").to_numpy()
        kind = labels["kind"]
        human = (kind == HUMAN).to_numpy()
        self.unable = human & (value == UNABLE).to_numpy()
        self.human_label = human & given & ~self.unable
        self.verdict = (
            (kind == LLM).to_numpy() & given & (~value.isin([UNABLE, INVALID])).to_numpy()
        )
        self.tie = self.values.get_indexer([TIE])[0]  # -1, unlike any majority, without a tie

    def cells(self, items, questions):
        """The cells of (item, question) pairs; -1 where the labels have no such pair."""
        item_codes = self.items.get_indexer(items)
        question_codes = self.questions.get_indexer(questions)
        cells = item_codes.astype(np.int64) * self.n_questions + question_codes
        return np.where((item_codes >= 0) & (question_codes >= 0), cells, -1)

    def reason_frame(self, fired):
        rank = {rule: i for i, rule in enumerate(RULES)}
        parts = [(rule, np.unique(np.asarray(cells))) for rule, cells in fired.items()]
        cells = np.concatenate([c for _, c in parts] + [np.empty(0, np.int64)]).astype(np.int64)
        rules = np.concatenate([np.full(len(c), rank[r]) for r, c in parts] + [np.empty(0, int)])
        item_codes, question_codes = cells // self.n_questions, cells % self.n_questions
        item_rank = _ranks(self.items.argsort(kind="stable"))
        question_rank = _ranks(
            sorted(range(len(self.questions)), key=lambda k: _question_key(self.questions[k]))
        )
        order = np.lexsort((question_rank[question_codes], rules, item_rank[item_codes]))
        return pd.DataFrame(
            {
                "item": self.items.take(item_codes[order]),
                "rule": np.asarray(RULES, dtype=object)[rules[order]],
                "question": self.questions.take(question_codes[order]),
            },
            columns=REASON_COLUMNS,
        )


def _ranks(order):
    """The inverse of a sorting permutation: each position's place in the sorted order."""
    order = np.asarray(order, dtype=np.int64)
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def _question_key(question):
    match = _CHECKLIST_ROW.match(str(question))
    if match:
        return match["key"], int(match["index"])
    return str(question), -1


def _human_majorities(table):
    """Per cell with human labels: how many (`labels`), the top count (`top`), whether one
    value alone has it (`has`) and that value's code (`value`, meaningful where `has`)."""
    counts = (
        pd.DataFrame(
            {"cell": table.cell[table.human_label], "value": table.value[table.human_label]}
        )
        .groupby(["cell", "value"], sort=False)
        .size()
        .rename("n")
        .reset_index()
    )
    by_cell = counts.groupby("cell")["n"]
    counts["top"] = counts["n"] == by_cell.transform("max")
    tops = counts[counts["top"]].groupby("cell")
    return pd.DataFrame(
        {
            "labels": by_cell.sum(),
            "top": by_cell.max(),
            "has": tops.size() == 1,
            "value": tops["value"].first(),
        }
    )


def _judge_verdicts(table):
    """Per (cell, judge) with a verdict: the combined one and whether the orders disagree."""
    rows = pd.DataFrame(
        {
            "cell": table.cell[table.verdict],
            "rater": table.rater[table.verdict],
            "value": table.value[table.verdict],
        }
    )
    verdicts = rows.groupby(["cell", "rater"], sort=False)["value"].agg(["first", "nunique"])
    inconsistent = verdicts["nunique"] > 1
    return pd.DataFrame(
        {
            "combined": np.where(inconsistent, table.tie, verdicts["first"]),
            "inconsistent": inconsistent,
        },
        index=verdicts.index,
    )


def _gold_misses(table, majority, gold):
    """Cells of gold answers that the item's human majority does not give."""
    answers = [
        (item, question, value)
        for item, by_question in gold.items()
        for question, value in by_question.items()
        if not _is_empty(value)
    ]
    if not answers:
        return np.empty(0, np.int64)
    items, questions, values = zip(*answers, strict=True)
    cells = table.cells(list(items), list(questions))
    codes = majority.reindex(cells).to_numpy()
    decided = ~np.isnan(codes)
    given = np.asarray(table.values.take(codes[decided].astype(np.int64)), dtype=object)
    expected = np.asarray(values, dtype=object)[decided]
    return cells[decided][given != expected]


def _is_empty(value):
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))
