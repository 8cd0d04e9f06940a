"""Agreement of one rubric question: human-human (the ceiling) and each judge against humans.

Pure pandas on the long label table (columns item, rater, kind, value, optional order), no
Django: the `agreement` command feeds it a CSV, study reports feed it database rows. The
metrics themselves are in `calibration.metrics`; this module decides which labels are
compared with which, following MT-Bench (Zheng et al. 2023, "Judging LLM-as-a-judge"):

- a judge's verdict on a pairwise item judged in both orders is its answer when the two
  orders agree and `tie` when they do not;
- the human majority of an item is the one value most of its human labels give; an item
  where two values share the top count has no majority and is left out (and counted);
- "without ties" drops the items where the majority or the judge says `tie`.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from calibration import metrics

HUMAN, LLM = "human", "llm"
TIE = "tie"
UNABLE = "unable"  # "unable to assess" is no judgement: left out like a missing label
FIRST_SHOWN = {"AB": "A", "BA": "B"}


class LabelsError(ValueError):
    """Labels that cannot be analysed as asked; the message says why."""


class DuplicateLabels(LabelsError):
    """A rater labelled an item more than once (a judge: in the same order)."""

    def __init__(self, who, item):
        super().__init__(f"{who} labelled item {item!r} more than once")
        self.who, self.item = who, item


@dataclass(frozen=True)
class Options:
    level: str = "nominal"  # Krippendorff alpha's level of measurement
    weights: str | None = None  # Cohen's kappa: None, "linear" or "quadratic"
    bootstrap: int = 1000  # resamples for the confidence intervals; 0 for none
    seed: int = 0


def question_agreement(labels, question, options=Options(), reference=None):
    """The agreement object of one question (the `agreement` command's JSON shape).

    Judges are scored against the human majority, or against `reference` (values by item,
    None where an item has none: final labels, say) when it is given."""
    labels = _prepared(labels, options)
    humans = labels[labels["kind"] == HUMAN]
    judges = labels[labels["kind"] == LLM]
    if reference is not None and (options.level != "nominal" or options.weights):
        reference = pd.to_numeric(reference, errors="coerce")
    return {
        "question": question,
        "level": options.level,
        "humans": human_agreement(humans, options),
        "judges": [
            judge_agreement(rows, humans, name, options, reference)
            for name, rows in sorted(judges.groupby("rater"), key=lambda g: g[0])
        ],
    }


def group_agreement(labels, fields, options=Options()):
    """The breakdown's figures for the values of item fields: `fields` maps each field to
    its disjoint groups of items, (name, item ids) in order, and the answer maps it to
    (name, figures) for each group with labels, the figures being what `question_agreement`
    of the group's labels gives as the humans' `n_items` and `krippendorff_alpha` and each
    judge's `accuracy_vs_majority` (judges with labels in the group only). An item's
    majority and a judge's verdict are the item's own, so they are found once for all the
    fields and groups."""
    item_of_label, items = pd.factorize(labels["item"])
    labels = _prepared(labels.assign(_item=item_of_label), options)
    humans = labels[labels["kind"] == HUMAN]
    majority = majorities(humans).dropna()
    judges = []
    for name, rows in sorted(labels[labels["kind"] == LLM].groupby("rater"), key=lambda g: g[0]):
        verdicts = judge_verdicts(rows)
        both = verdicts.index.intersection(majority.index)
        right = verdicts.loc[both].to_numpy() == majority.loc[both].to_numpy()
        judges.append((name, rows["_item"].to_numpy(), items.get_indexer(both), right))
    human_item = humans["_item"].to_numpy()
    out = {}
    for field, groups in fields.items():
        group_of_item = _group_codes(items, groups)
        labelled = set(np.unique(group_of_item[item_of_label]))
        human_group = group_of_item[human_item]
        judged = [
            (name, set(np.unique(group_of_item[rows])), group_of_item[both], right)
            for name, rows, both, right in judges
        ]
        out[field] = []
        for n, (name, _) in enumerate(groups):
            if n not in labelled:
                continue
            group_humans = humans[human_group == n]
            accuracy = {
                judge: _mean(pd.Series(right[group == n]))
                for judge, judged_groups, group, right in judged
                if n in judged_groups
            }
            alpha = metrics.krippendorff_alpha(group_humans, level=options.level)
            figures = {
                "n_items": len(np.unique(human_item[human_group == n])),
                "krippendorff_alpha": _number(alpha),
                "judges": accuracy,
            }
            out[field].append((name, figures))
    return out


def _group_codes(items, groups):
    """The number of each item's group among `groups` ((name, item ids) each), -1 for none."""
    members = [pd.Index(ids) for _, ids in groups]
    every = members[0].append(members[1:]) if members else pd.Index([])
    number = np.repeat(np.arange(len(members)), [len(m) for m in members])
    position = every.get_indexer(items)
    return np.where(position >= 0, number[position], -1)


def human_agreement(humans, options=Options()):
    """Human-human agreement, overall and per pair of annotators."""
    _refuse_duplicates(humans[["item", "rater"]], "a human rater")
    raters = sorted(humans["rater"].unique())
    pairwise = [
        {
            "a": pair.a,
            "b": pair.b,
            "n": int(pair.n),
            "percent_agreement": _number(pair.percent_agreement),
            "cohen_kappa": _number(pair.cohen_kappa),
        }
        for pair in metrics.rater_pairs(humans, weights=options.weights).itertuples()
    ]
    cohen = None
    if len(raters) == 2:
        cohen = pairwise[0]["cohen_kappa"]
    alpha_options = {"level": options.level}
    return {
        "n_items": int(humans["item"].nunique()),
        "n_raters": len(raters),
        "n_labels": len(humans),
        "percent_agreement": _number(metrics.percent_agreement(humans)),
        "cohen_kappa": cohen,
        "fleiss_kappa": _number(metrics.fleiss_kappa(humans)),
        "krippendorff_alpha": _number(metrics.krippendorff_alpha(humans, **alpha_options)),
        "gwet_ac1": _number(metrics.gwet_ac1(humans)),
        "pairwise": pairwise,
        "ci95": {
            "krippendorff_alpha": _ci(metrics.krippendorff_alpha, humans, options, **alpha_options),
            "fleiss_kappa": _ci(metrics.fleiss_kappa, humans, options),
        },
    }


def judge_agreement(judge, humans, name, options=Options(), reference=None):
    """One judge against the human majority (or `reference`, values by item, in its place:
    the `*_vs_majority` figures then compare with it) and against each human label."""
    verdicts = judge_verdicts(judge)
    majority = majorities(humans) if reference is None else reference
    judged = verdicts.index.intersection(majority.index)
    with_majority = majority.loc[judged].dropna()
    judge_vs_majority = verdicts.loc[with_majority.index]
    no_ties = (with_majority != TIE) & (judge_vs_majority != TIE)
    per_human = metrics.against_each(verdicts, humans, weights=options.weights)
    return {
        "rater": name,
        "n_items": len(judged),
        "n_no_majority": int(len(judged) - len(with_majority)),
        "accuracy_vs_majority": _mean(judge_vs_majority == with_majority),
        "cohen_kappa_vs_majority": _number(_kappa(judge_vs_majority, with_majority, options)),
        "accuracy_vs_majority_without_ties": _mean(
            judge_vs_majority[no_ties] == with_majority[no_ties]
        ),
        "accuracy_vs_humans": _mean_of(per_human["percent_agreement"]),
        "position": position_bias(judge),
        "cohen_kappa_vs_humans": _mean_of(per_human["cohen_kappa"]),
        "ci95": {
            "accuracy_vs_majority": _ci(
                metrics.pairwise_accuracy, judge_vs_majority, with_majority, options
            ),
            "cohen_kappa_vs_majority": _ci(
                metrics.cohen_kappa,
                judge_vs_majority,
                with_majority,
                options,
                weights=options.weights,
            ),
        },
        "confusion": _confusion(with_majority, judge_vs_majority),
    }


def _confusion(majority, verdicts):
    """Counts of (human majority, judge verdict) pairs, rows the majority's answers."""
    values = sorted(set(majority.unique()) | set(verdicts.unique()), key=str)
    table = pd.crosstab(majority, verdicts).reindex(index=values, columns=values, fill_value=0)
    return {"values": [str(v) for v in values], "counts": table.to_numpy().tolist()}


def judge_verdicts(judge):
    """A judge's one verdict per item: both orders combined as MT-Bench does."""
    _refuse_duplicates(judge[["item", "order"]], f"judge {judge['rater'].iloc[0]!r}")
    by_item = judge.groupby("item")["value"]
    first, distinct = by_item.first(), by_item.nunique()
    return first.where(distinct == 1, TIE)


def position_bias(rater_labels):
    """Consistency across orders and the share of verdicts for the response shown first.

    None when no item was labelled in both orders. `first_slot_rate` counts the non-tie
    verdicts of both orders; 0.5 is unbiased.
    """
    shown = rater_labels[rater_labels["order"].isin(FIRST_SHOWN)]
    both = shown.groupby("item")["order"].nunique()
    pairs = shown[shown["item"].isin(both[both == 2].index)]
    if pairs.empty:
        return None
    consistent = pairs.groupby("item")["value"].nunique() == 1
    return {
        "n_pairs": len(consistent),
        "consistency": _mean(consistent),
        "first_slot_rate": _first_slot_picks(pairs)[1],
    }


def first_slot(labels):
    """Position bias of raters who each saw one order (humans): the first-slot share.

    None when no label records the order shown.
    """
    n, rate = _first_slot_picks(labels)
    return None if n == 0 else {"n_labels": n, "first_slot_rate": rate}


def _first_slot_picks(labels):
    decided = labels[labels["order"].isin(FIRST_SHOWN) & (labels["value"] != TIE)]
    return len(decided), _mean(decided["value"] == decided["order"].map(FIRST_SHOWN))


def _prepared(labels, options):
    missing = [c for c in ("item", "rater", "value") if c not in labels.columns]
    if missing:
        raise LabelsError(f"the labels need a column {missing[0]!r}")
    labels = labels.copy()
    if "kind" not in labels:
        labels["kind"] = HUMAN
    labels["kind"] = labels["kind"].replace("", HUMAN)
    unknown = set(labels["kind"].unique()) - {HUMAN, LLM}
    if unknown:
        raise LabelsError(f"kind must be 'human' or 'llm', not {sorted(unknown)[0]!r}")
    if "order" not in labels:
        labels["order"] = ""
    labels = labels[(labels["value"] != "") & (labels["value"] != UNABLE)]
    labels = labels.dropna(subset=["value"])
    if options.level != "nominal" or options.weights:
        numbers = pd.to_numeric(labels["value"], errors="coerce")
        if numbers.isna().any():
            bad = labels.loc[numbers.isna(), "value"].iloc[0]
            raise LabelsError(
                f"{options.level if options.level != 'nominal' else options.weights} "
                f"agreement needs numeric values, not {bad!r}"
            )
        labels["value"] = numbers
    return labels


def _refuse_duplicates(keys, who):
    dup = keys.duplicated()
    if dup.any():
        raise DuplicateLabels(who, keys.loc[dup, "item"].iloc[0])


def unique_majority(values):
    """The value most labels give, or None when two values share the top count."""
    counts = values.value_counts()
    if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
        return None
    return counts.index[0]


def majorities(labels):
    """Each item's `unique_majority` of its labels' values, by item (sorted), None where two
    values share the top count (missing, as `agg(unique_majority)` gives it): one grouping
    for the whole table, not one per item."""
    counts = labels.groupby(["item", "value"], sort=False).size().rename("n").reset_index()
    top = counts["n"] == counts.groupby("item")["n"].transform("max")
    best = counts[top]
    alone = best.groupby("item")["value"].transform("size") == 1
    items = pd.Index(labels["item"].unique()).sort_values()
    return best.loc[alone, ["item", "value"]].set_index("item")["value"].reindex(items)


def _kappa(a, b, options):
    return metrics.cohen_kappa(a, b, weights=options.weights)


def _ci(metric, *args, **kwargs):
    *data, options = args
    if options.bootstrap <= 0 or not len(data[0]):
        return None
    low, high = metrics.bootstrap_ci(
        metric, *data, resamples=options.bootstrap, seed=options.seed, **kwargs
    )
    return [_number(low), _number(high)]


def _mean_of(values):
    """Mean of the defined values (a judge vs each human), None when there are none."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else None


def _mean(series):
    return _number(series.mean()) if len(series) else None


def _number(x):
    """A JSON-ready float: NaN (undefined) becomes None."""
    x = float(x)
    return None if math.isnan(x) else x
