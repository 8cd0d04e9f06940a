"""Agreement metrics: published worked examples reproduced, invariances kept, degenerate cases NaN.

Every pinned number names its source next to it. Values are pinned to the precision the
source prints (R prints 7 significant digits; Krippendorff's paper 3 decimals).
"""

import itertools
import subprocess
import sys
import warnings
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.metrics import (
    LEVELS,
    against_each,
    bootstrap_ci,
    bootstrap_distribution,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    gwet_ac2,
    kendall_tau,
    krippendorff_alpha,
    paired_labels,
    pairwise_accuracy,
    percent_agreement,
    rater_pairs,
    spearman,
)

nan = np.nan
REPO = Path(__file__).resolve().parent.parent


# Builders -----------------------------------------------------------------------------------


def long_table(units):
    """A units x raters matrix (None/NaN = not labelled) as a long table, missing rows kept."""
    rows = [
        (f"item{i}", f"rater{j}", value)
        for i, row in enumerate(units)
        for j, value in enumerate(row)
    ]
    return pd.DataFrame(rows, columns=["item", "rater", "value"])


def from_distribution(counts, categories):
    """A long table from the number of raters who chose each category, item by item."""
    rows = []
    for i, row in enumerate(counts):
        choices = [c for c, k in zip(categories, row, strict=True) for _ in range(k)]
        rows += [(f"item{i}", f"rater{j}", c) for j, c in enumerate(choices)]
    return pd.DataFrame(rows, columns=["item", "rater", "value"])


def from_contingency(table, categories):
    """Two raters' aligned labels from their contingency table (rows: first rater)."""
    pairs = [
        (categories[i], categories[j])
        for i, row in enumerate(table)
        for j, count in enumerate(row)
        for _ in range(count)
    ]
    first, second = zip(*pairs, strict=True)
    return list(first), list(second)


def two_rater_table(a, b):
    rows = [(f"item{i}", "first", v) for i, v in enumerate(a)]
    rows += [(f"item{i}", "second", v) for i, v in enumerate(b)]
    return pd.DataFrame(rows, columns=["item", "rater", "value"])


# Published data ---------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", worked example with
# missing data: 4 observers (rows) x 12 units, values 1..5. Published: nominal .743,
# ordinal .815, interval .849, ratio .797 (the `krippendorff` package's docstring quotes the
# same data and values).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]
KRIPPENDORFF_2011_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}

# Gwet's irrCAC R package, dataset cac.raw4raters: 12 subjects (rows) x 4 raters, values 1..5.
# Outputs published in the package README (github.com/kgwet/irrCAC) and its vignette
# "Weighted Chance-corrected Agreement Coefficients".
CAC_RAW4RATERS = [
    [1, 1, nan, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [nan, 5, 5, 5],
    [nan, nan, 1, 1],
    [nan, nan, 3, nan],
]

# irrCAC dataset distrib.6raters: 15 psychiatric patients, how many of 6 psychiatrists chose
# each diagnosis (README of github.com/kgwet/irrCAC).
DISTRIB_6RATERS_CATEGORIES = [
    "Depression",
    "Personality Disorder",
    "Schizophrenia",
    "Neurosis",
    "Other",
]
DISTRIB_6RATERS = [
    [0, 0, 0, 6, 0],
    [0, 3, 0, 0, 3],
    [0, 1, 4, 0, 1],
    [0, 0, 0, 0, 6],
    [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0],
    [0, 0, 4, 0, 2],
    [2, 0, 3, 1, 0],
    [2, 0, 0, 4, 0],
    [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0],
    [1, 1, 0, 4, 0],
    [0, 3, 3, 0, 0],
    [1, 0, 0, 5, 0],
    [0, 2, 0, 3, 1],
]

# irrCAC dataset cont3x3abstractors: 2 abstractors' classification of 100 pregnancies.
ABSTRACTORS_CATEGORIES = ["Ectopic", "AIU", "NIU"]
ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]

# Fleiss (1971), "Measuring nominal scale agreement among many raters", Table 1: 30 patients,
# 6 psychiatrists each, 5 diagnoses; the `diagnoses` dataset of the R package irr.
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4],
    [2, 2, 2, 5, 5, 5],
    [2, 3, 3, 3, 3, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3],
    [3, 3, 3, 3, 5, 5],
    [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4],
    [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4],
    [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3],
    [1, 4, 4, 4, 4, 4],
    [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5],
    [1, 1, 1, 1, 1, 2],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5],
    [2, 4, 4, 4, 4, 4],
    [2, 2, 4, 5, 5, 5],
    [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4],
    [1, 1, 1, 1, 5, 5],
    [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3],
    [5, 5, 5, 5, 5, 5],
]

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories (counts).
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# R package irr, dataset `anxiety`, raters 2 and 3 (20 subjects, scale 1..6; 5 unused).
ANXIETY_RATER2 = [3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4]
ANXIETY_RATER3 = [2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2]


# Krippendorff's alpha ------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_it_reproduces_krippendorffs_published_alphas(level):
    labels = long_table(np.array(KRIPPENDORFF_2011).T)

    # Krippendorff (2011): .743 / .815 / .849 / .797.
    assert round(krippendorff_alpha(labels, level), 3) == KRIPPENDORFF_2011_ALPHA[level]


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_it_orders_text_categories_by_the_list_it_is_given(level):
    names = ["very low", "low", "mid", "high", "very high"]
    words = [[None if np.isnan(v) else names[int(v) - 1] for v in row] for row in KRIPPENDORFF_2011]
    labels = long_table(np.array(words, dtype=object).T)

    # The same Krippendorff (2011) data with the values as words, in order: positions 1..5
    # are the original values, so .815 / .849 again (the ordinal case is also the
    # `krippendorff` package's docstring example).
    alpha = krippendorff_alpha(labels, level, categories=names)
    assert round(alpha, 3) == KRIPPENDORFF_2011_ALPHA[level]


def test_it_reproduces_the_krippendorff_package_docstring_example():
    # krippendorff.alpha docstring (v0.9): 3 coders x 15 units -> nominal 0.691358,
    # interval 0.810845 (the Wikipedia "Krippendorff's alpha" example data).
    coders = [
        [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
        [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
    ]
    labels = long_table(np.array(coders).T)

    assert round(krippendorff_alpha(labels, "nominal"), 6) == 0.691358
    assert round(krippendorff_alpha(labels, "interval"), 6) == 0.810845


def test_it_reproduces_irrcac_alphas():
    raw4 = long_table(CAC_RAW4RATERS)
    six = from_distribution(DISTRIB_6RATERS, DISTRIB_6RATERS_CATEGORIES)
    first, second = from_contingency(ABSTRACTORS, ABSTRACTORS_CATEGORIES)
    abstractors = two_rater_table(first, second)

    # irrCAC README: krippen.alpha.raw(cac.raw4raters) 0.74342; krippen.alpha.dist(
    # distrib.6raters) 0.4204384; krippen2.table(cont3x3abstractors) 0.7972585.
    assert round(krippendorff_alpha(raw4), 5) == 0.74342
    assert round(krippendorff_alpha(six), 7) == 0.4204384
    assert round(krippendorff_alpha(abstractors), 7) == 0.7972585
    # irrCAC weighting vignette, quadratic weights (= the interval metric on positions
    # 1..q): krippen2.table(cont3x3abstractors) 0.8926487, krippen.alpha.dist(
    # distrib.6raters) 0.259511, krippen.alpha.raw(cac.raw4raters) 0.84911.
    interval = krippendorff_alpha(abstractors, "interval", ABSTRACTORS_CATEGORIES)
    assert round(interval, 7) == 0.8926487
    assert round(krippendorff_alpha(six, "interval", DISTRIB_6RATERS_CATEGORIES), 6) == 0.259511
    assert round(krippendorff_alpha(raw4, "interval"), 5) == 0.84911


def reliability_data():
    """Units x raters lists of ratings 1..5 with holes (None)."""
    cell = st.one_of(st.none(), st.integers(1, 5))
    return st.integers(2, 5).flatmap(
        lambda raters: st.lists(
            st.lists(cell, min_size=raters, max_size=raters), min_size=1, max_size=20
        )
    )


@settings(max_examples=200, deadline=None)
@given(units=reliability_data(), level=st.sampled_from(LEVELS))
def test_it_agrees_with_the_krippendorff_package(units, level):
    matrix = np.array(units, dtype=float).T
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    except ValueError:
        # The package refuses a single value or no pairable unit; we say NaN.
        expected = nan

    ours = krippendorff_alpha(long_table(units), level)

    if np.isnan(expected):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(expected, abs=1e-9)


# Percent agreement, Fleiss' kappa, Gwet's AC1/AC2 --------------------------------------------


def test_it_reproduces_irrcac_on_raw_ratings_with_missing_values():
    labels = long_table(CAC_RAW4RATERS)

    # irrCAC README: pa.coeff.raw 0.8181818; fleiss.kappa.raw 0.76117; gwet.ac1.raw 0.77544.
    assert round(percent_agreement(labels), 7) == 0.8181818
    assert round(fleiss_kappa(labels), 5) == 0.76117
    assert round(gwet_ac1(labels), 5) == 0.77544
    # irrCAC weighting vignette: gwet.ac1.raw(weights = "quadratic") 0.914 (pa 0.9753788,
    # pe 0.7137044).
    assert round(gwet_ac2(labels, "quadratic"), 3) == 0.914
    # irrCAC's Python port (github.com/afergadis/irrCAC, test/unit/irrCAC/raw/test_gwet.py,
    # checked against the R package): linear weights 0.859.
    assert round(gwet_ac2(labels, "linear"), 3) == 0.859


def test_it_reproduces_irrcac_on_a_distribution_of_raters():
    labels = from_distribution(DISTRIB_6RATERS, DISTRIB_6RATERS_CATEGORIES)

    # irrCAC README: gwet.ac1.dist(distrib.6raters) 0.4448007 (pa 0.5511111),
    # fleiss.kappa.dist 0.4139265.
    assert round(gwet_ac1(labels), 7) == 0.4448007
    assert round(fleiss_kappa(labels), 7) == 0.4139265
    assert round(percent_agreement(labels), 7) == 0.5511111
    # irrCAC weighting vignette: gwet.ac1.dist(distrib.6raters, quadratic.weights(1:q))
    # 0.4837438, the categories weighted by their position in the table.
    assert round(gwet_ac2(labels, "quadratic", DISTRIB_6RATERS_CATEGORIES), 7) == 0.4837438


def test_it_reproduces_irrcac_on_two_raters():
    first, second = from_contingency(ABSTRACTORS, ABSTRACTORS_CATEGORIES)
    labels = two_rater_table(first, second)

    # irrCAC README: gwet.ac1.table(cont3x3abstractors) 0.8493305, pa2.table 0.89; AC1 is
    # above Cohen's 0.796 because the categories are unevenly used.
    assert round(gwet_ac1(labels), 7) == 0.8493305
    assert round(percent_agreement(labels), 7) == 0.89
    # irrCAC weighting vignette: gwet.ac1.table(..., weights = quadratic.weights(1:q)) 0.9402369.
    assert round(gwet_ac2(labels, "quadratic", ABSTRACTORS_CATEGORIES), 7) == 0.9402369


def test_it_reproduces_fleiss_1971():
    labels = long_table(FLEISS_1971)

    # R irr's kappam.fleiss(diagnoses) 0.4302445, recorded in statsmodels'
    # stats/tests/test_inter_rater.py.
    assert round(fleiss_kappa(labels), 7) == 0.4302445


def test_it_reproduces_wikipedias_fleiss_example():
    labels = from_distribution(WIKIPEDIA_FLEISS, [1, 2, 3, 4, 5])

    # Wikipedia, "Fleiss' kappa", worked example: kappa = 0.210.
    assert round(fleiss_kappa(labels), 3) == 0.210


def rating_counts():
    """Items x categories counts with the same number of raters on every item."""
    return st.tuples(st.integers(2, 6), st.integers(2, 4), st.integers(1, 12)).flatmap(
        lambda shape: st.lists(
            st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0]),
            min_size=shape[2],
            max_size=shape[2],
        ).map(lambda rows, q=shape[1]: np.array([np.bincount(r, minlength=q) for r in rows]))
    )


@settings(max_examples=100, deadline=None)
@given(counts=rating_counts())
def test_it_is_the_classic_fleiss_kappa_when_every_item_has_as_many_raters(counts):
    n_items, raters = len(counts), counts.sum(axis=1)[0]
    # Fleiss (1971), equations (2)-(5), straight from the count table.
    p_j = counts.sum(axis=0) / (n_items * raters)
    p_i = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    p_e = (p_j**2).sum()
    classic = (p_i.mean() - p_e) / (1 - p_e) if p_e < 1 else nan

    ours = fleiss_kappa(from_distribution(counts, list(range(counts.shape[1]))))

    assert ours == pytest.approx(classic, abs=1e-12, nan_ok=True)


def test_it_counts_unused_categories_in_ac1_chance_agreement():
    labels = long_table([["yes", "yes"], ["yes", "yes"], ["yes", "no"]])

    # By hand, Gwet (2008): p_a = 2/3; pi_yes = (1 + 1 + 1/2)/3 = 5/6, so
    # sum pi (1 - pi) = 2 * 5/36 = 5/18 and p_e = (5/18) / (q - 1).
    # q = 2: p_e = 5/18, AC1 = (2/3 - 5/18) / (13/18) = 7/13.
    assert gwet_ac1(labels) == pytest.approx(7 / 13)
    # q = 3 ("na" offered, never used): p_e = 5/36, AC1 = (2/3 - 5/36) / (31/36) = 19/31.
    assert gwet_ac1(labels, categories=["yes", "no", "na"]) == pytest.approx(19 / 31)


# Cohen's kappa and pairwise accuracy ----------------------------------------------------------


def test_it_reproduces_wikipedias_cohen_example():
    # Wikipedia, "Cohen's kappa", simple example: 50 proposals, yes/yes 20, yes/no 5,
    # no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4.
    first, second = from_contingency([[20, 5], [10, 15]], ["yes", "no"])

    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert pairwise_accuracy(first, second) == pytest.approx(0.7)


def test_it_reproduces_sklearns_documented_kappa():
    # scikit-learn, cohen_kappa_score docstring example: 0.6875.
    first = ["negative", "positive", "negative", "neutral", "positive"]
    second = ["negative", "positive", "negative", "neutral", "negative"]

    assert cohen_kappa(first, second) == pytest.approx(0.6875)


def test_it_reproduces_sas_weighted_kappa():
    # SAS PROC FREQ AGREE printout recorded in statsmodels' stats/tests/test_inter_rater.py
    # (table10, scores 0, 1, 2): simple kappa 0.4842, weighted (Cicchetti-Allison, i.e.
    # linear) kappa 0.4701.
    first, second = from_contingency([[0, 4, 1], [0, 8, 0], [0, 1, 5]], [0, 1, 2])

    assert round(cohen_kappa(first, second), 4) == 0.4842
    assert round(cohen_kappa(first, second, "linear"), 4) == 0.4701


def test_it_reproduces_irrs_weighted_kappas():
    # R irr: kappa2(anxiety[,2:3]) -0.006289308, kappa2(..., "equal") 0.1459075,
    # kappa2(..., "squared") 0.2520325 (recorded in statsmodels' test_inter_rater.py). irr
    # weighs by position among the levels used, 1 2 3 4 6; so do we, given them in order.
    levels = ["1", "2", "3", "4", "6"]
    first, second = [str(v) for v in ANXIETY_RATER2], [str(v) for v in ANXIETY_RATER3]

    assert round(cohen_kappa(first, second), 9) == -0.006289308
    assert round(cohen_kappa(first, second, "linear", levels), 7) == 0.1459075
    assert round(cohen_kappa(first, second, "quadratic", levels), 7) == 0.2520325


def test_it_weighs_numeric_categories_by_their_value():
    # The same anxiety ratings as numbers: 6 is two steps from 4, not one, so linear kappa
    # differs from irr's positional 0.1459075.
    assert cohen_kappa(ANXIETY_RATER2, ANXIETY_RATER3, "linear") != pytest.approx(0.1459075)
    assert cohen_kappa(ANXIETY_RATER2, ANXIETY_RATER3, "linear") == pytest.approx(
        cohen_kappa(ANXIETY_RATER2, ANXIETY_RATER3, "linear", categories=[1, 2, 3, 4, 5, 6])
    )


def test_it_reproduces_irrcac_cohen_kappas():
    first, second = from_contingency(ABSTRACTORS, ABSTRACTORS_CATEGORIES)

    # irrCAC README: kappa2.table(cont3x3abstractors) 0.7964094; weighting vignette,
    # quadratic.weights(1:3): 0.8921569.
    assert round(cohen_kappa(first, second), 7) == 0.7964094
    quadratic = cohen_kappa(first, second, "quadratic", ABSTRACTORS_CATEGORIES)
    assert round(quadratic, 7) == 0.8921569


# Rank correlations ------------------------------------------------------------------------------


def test_it_reproduces_scipys_documented_correlations():
    # scipy.stats.spearmanr docstring: spearmanr([1,2,3,4,5], [5,6,7,8,7]) 0.8207826816681233.
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    # scipy.stats.kendalltau docstring (tau-b): -0.47140452079103173.
    assert kendall_tau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) == pytest.approx(-0.47140452079103173)


def brute_force_tau_b(x, y):
    """Kendall's tau-b by counting every pair."""
    concordant = discordant = tied_x = tied_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        concordant += dx * dy > 0
        discordant += dx * dy < 0
        tied_x += dx == 0
        tied_y += dy == 0
    pairs = len(x) * (len(x) - 1) / 2
    denominator = np.sqrt((pairs - tied_x) * (pairs - tied_y))
    return (concordant - discordant) / denominator if denominator else nan


def brute_force_rho(x, y):
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return nan
    return np.corrcoef(rx, ry)[0, 1]


paired_scores = st.integers(2, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 5), min_size=n, max_size=n),
        st.lists(
            st.floats(0, 10, allow_nan=False).map(lambda v: round(v, 1)), min_size=n, max_size=n
        ),
    )
)


@settings(max_examples=150, deadline=None)
@given(scores=paired_scores)
def test_it_ranks_like_the_textbook_definitions(scores):
    x, y = scores

    assert spearman(x, y) == pytest.approx(brute_force_rho(x, y), abs=1e-9, nan_ok=True)
    assert kendall_tau(x, y) == pytest.approx(brute_force_tau_b(x, y), abs=1e-9, nan_ok=True)


# Invariances --------------------------------------------------------------------------------------


def long_table_metrics(labels):
    return [
        percent_agreement(labels),
        fleiss_kappa(labels),
        gwet_ac1(labels),
        gwet_ac2(labels, "linear"),
        gwet_ac2(labels, "quadratic"),
        *(krippendorff_alpha(labels, level) for level in LEVELS),
    ]


def two_rater_metrics(a, b):
    return [
        cohen_kappa(a, b),
        cohen_kappa(a, b, "linear"),
        cohen_kappa(a, b, "quadratic"),
        pairwise_accuracy(a, b),
        spearman(a, b),
        kendall_tau(a, b),
    ]


@settings(max_examples=100, deadline=None)
@given(units=reliability_data(), seed=st.integers(0, 2**32 - 1))
def test_it_ignores_row_order_and_the_names_of_items_and_raters(units, seed):
    labels = long_table(units)
    rng = np.random.default_rng(seed)
    shuffled = labels.sample(frac=1, random_state=rng).reset_index(drop=True)
    for column in ("item", "rater"):
        names = labels[column].unique()
        renamed = dict(zip(names, rng.permutation(names), strict=True))
        shuffled[column] = shuffled[column].map(renamed)

    assert long_table_metrics(shuffled) == pytest.approx(
        long_table_metrics(labels), abs=1e-12, nan_ok=True
    )


pairs_of_ratings = st.integers(1, 25).flatmap(
    lambda n: st.tuples(
        st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=n, max_size=n),
        st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=n, max_size=n),
    )
)


@settings(max_examples=100, deadline=None)
@given(ratings=pairs_of_ratings, seed=st.integers(0, 2**32 - 1))
def test_it_ignores_which_rater_comes_first_and_the_order_of_items(ratings, seed):
    a, b = ratings
    order = np.random.default_rng(seed).permutation(len(a))
    a2, b2 = [a[i] for i in order], [b[i] for i in order]

    assert two_rater_metrics(b2, a2) == pytest.approx(
        two_rater_metrics(a, b), abs=1e-12, nan_ok=True
    )


@st.composite
def unanimous_labels(draw):
    """Items whose raters (at least two each) all agree, on at least two different values."""
    values = draw(st.lists(st.integers(1, 5), min_size=2, max_size=12))
    if len(set(values)) < 2:
        values = [*values, values[0] % 5 + 1]
    raters = draw(st.lists(st.integers(2, 5), min_size=len(values), max_size=len(values)))
    return pd.DataFrame(
        [(f"item{i}", f"rater{j}", v) for i, v in enumerate(values) for j in range(raters[i])],
        columns=["item", "rater", "value"],
    )


@settings(max_examples=100, deadline=None)
@given(labels=unanimous_labels())
def test_it_gives_one_for_perfect_agreement(labels):
    first, second = paired_labels(labels, "rater0", "rater1")

    assert long_table_metrics(labels) == pytest.approx([1.0] * 9)
    assert two_rater_metrics(first, second) == pytest.approx([1.0] * 6)


@settings(max_examples=100, deadline=None)
@given(units=reliability_data(), names=st.permutations(["p", "q", "r", "s", "t"]))
def test_it_ignores_category_names_in_nominal_metrics(units, names):
    renamed_units = [[None if v is None else names[v - 1] for v in row] for row in units]

    def nominal(units):
        labels = long_table(units)
        a, b = [row[0] for row in units], [row[1] for row in units]
        return [
            percent_agreement(labels),
            fleiss_kappa(labels),
            gwet_ac1(labels),
            krippendorff_alpha(labels, "nominal"),
            cohen_kappa(a, b),
            pairwise_accuracy(a, b),
        ]

    assert nominal(renamed_units) == pytest.approx(nominal(units), abs=1e-12, nan_ok=True)


# Missing and degenerate input ---------------------------------------------------------------------


def test_it_treats_missing_values_as_absent_labels():
    with_holes = long_table(KRIPPENDORFF_2011)
    without = with_holes.dropna(subset=["value"])
    as_none = with_holes.astype({"value": object}).where(with_holes.notna(), None)

    assert with_holes["value"].isna().any()
    assert long_table_metrics(with_holes) == pytest.approx(long_table_metrics(without))
    assert long_table_metrics(as_none) == pytest.approx(long_table_metrics(without))


def test_it_skips_items_only_one_rater_labelled_in_two_rater_metrics():
    a = [1, 2, None, 3, 2, nan, 1]
    b = [1, 3, 2, 3, None, 1, 2]
    both = [0, 1, 3, 6]

    assert two_rater_metrics(a, b) == pytest.approx(
        two_rater_metrics([a[i] for i in both], [b[i] for i in both])
    )


def test_it_returns_nan_where_a_metric_is_undefined():
    one_category = long_table([["yes", "yes"], ["yes", "yes", "yes"]])
    one_label_each = long_table([[1, nan], [nan, 2], [3, nan]])
    empty = pd.DataFrame({"item": [], "rater": [], "value": []})

    # The krippendorff package refuses a single value; we return NaN.
    with pytest.raises(ValueError):
        krippendorff.alpha(reliability_data=[[1, 1], [1, 1]], level_of_measurement="nominal")
    assert np.isnan(krippendorff_alpha(one_category))
    assert np.isnan(fleiss_kappa(one_category))
    assert np.isnan(gwet_ac1(one_category))
    assert percent_agreement(one_category) == 1.0
    for labels in (one_label_each, empty):
        assert np.isnan(percent_agreement(labels))
        assert np.isnan(fleiss_kappa(labels))
        assert np.isnan(gwet_ac1(labels))
        assert np.isnan(krippendorff_alpha(labels, "interval"))
    assert np.isnan(cohen_kappa(["a", "a"], ["a", "a"]))
    assert np.isnan(cohen_kappa([], []))
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(kendall_tau([1, 2, 3], [2, 2, 2]))
    assert np.isnan(pairwise_accuracy([None], [1]))


def test_it_gives_ac1_one_for_unanimity_on_one_of_several_offered_categories():
    one_category = long_table([["yes", "yes"], ["yes", "yes", "yes"]])

    # pi_yes = 1 so p_e = 0 and AC1 = p_a = 1, once q counts the offered "no".
    assert gwet_ac1(one_category, categories=["yes", "no"]) == 1.0


def test_it_refuses_two_labels_from_one_rater_on_one_item():
    labels = pd.DataFrame(
        {"item": ["q1", "q1", "q1"], "rater": ["bob", "bob", "carol"], "value": [1, 2, 1]}
    )

    with pytest.raises(ValueError, match="more than once"):
        krippendorff_alpha(labels)
    with pytest.raises(ValueError):
        paired_labels(labels, "bob", "carol")


def test_it_refuses_values_outside_the_given_categories():
    labels = long_table([["yes", "no"], ["maybe", "yes"]])

    with pytest.raises(ValueError, match="'maybe'"):
        gwet_ac1(labels, categories=["yes", "no"])
    with pytest.raises(ValueError, match="'maybe'"):
        cohen_kappa(["yes", "maybe"], ["no", "yes"], categories=["yes", "no"])


def test_it_needs_an_order_for_ordered_metrics_on_text():
    labels = long_table([["low", "high"], ["mid", "mid"], ["high", "high"]])
    order = ["low", "mid", "high"]

    for call in (
        lambda: krippendorff_alpha(labels, "ordinal"),
        lambda: gwet_ac2(labels, "linear"),
        lambda: cohen_kappa(["low", "mid"], ["mid", "mid"], "quadratic"),
        lambda: spearman(["low", "mid"], ["mid", "high"]),
    ):
        with pytest.raises(ValueError, match="ordered categories"):
            call()
    assert krippendorff_alpha(labels, "ordinal", order) == pytest.approx(
        krippendorff_alpha(labels.replace({"low": 1, "mid": 2, "high": 3}), "ordinal")
    )
    assert spearman(["low", "mid", "high"], ["mid", "mid", "high"], order) == pytest.approx(
        spearman([1, 2, 3], [2, 2, 3])
    )


def test_it_refuses_labels_without_an_item_or_a_rater():
    labels = pd.DataFrame({"item": ["q1", None], "rater": ["bob", "carol"], "value": [1, 2]})

    with pytest.raises(ValueError, match="item and a rater"):
        percent_agreement(labels)


def test_it_refuses_two_continuous_measurements():
    x = np.arange(10_000) / 7

    # A 10,000 x 10,000 contingency table: rank correlations here are for rating scales.
    with pytest.raises(ValueError, match="rating scales"):
        spearman(x, np.sqrt(x))
    assert spearman(x, np.round(x) % 5) == pytest.approx(brute_force_rho(x, np.round(x) % 5))


def test_it_refuses_unknown_levels_and_weights():
    labels = long_table(CAC_RAW4RATERS)

    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(labels, "cardinal")
    with pytest.raises(ValueError, match="weights"):
        gwet_ac2(labels, "cubic")


def test_it_refuses_vectors_that_are_not_aligned():
    a = pd.Series([1, 2, 3], index=["q1", "q2", "q3"])
    b = pd.Series([1, 2, 3], index=["q3", "q2", "q1"])

    with pytest.raises(ValueError, match="align"):
        cohen_kappa(a, b)
    with pytest.raises(ValueError, match="length"):
        spearman([1, 2, 3], [1, 2])


def test_it_pairs_two_raters_labels_by_item():
    labels = pd.DataFrame(
        {
            "item": ["q1", "q2", "q3", "q2", "q1", "q4", "q3"],
            "rater": ["bob", "bob", "bob", "carol", "carol", "carol", "dave"],
            "value": ["A", "B", "tie", "B", "B", "A", "A"],
        }
    )

    bob, carol = paired_labels(labels, "bob", "carol")

    pairs = pd.DataFrame({"bob": bob, "carol": carol}).fillna("-")
    assert pairs.to_dict("index") == {
        "q1": {"bob": "A", "carol": "B"},
        "q2": {"bob": "B", "carol": "B"},
        "q3": {"bob": "tie", "carol": "-"},
        "q4": {"bob": "-", "carol": "A"},
    }
    assert pairwise_accuracy(bob, carol) == 0.5


def test_it_imports_no_django():
    code = "import sys, calibration.metrics; sys.exit('django' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# Bootstrap ------------------------------------------------------------------------------------


def resampled_long_table(labels, picks):
    """The long table of the items `picks` (with repeats), each copy its own item."""
    items = labels["item"].unique()
    return pd.concat(
        [labels[labels["item"] == items[p]].assign(item=f"copy{k}") for k, p in enumerate(picks)],
        ignore_index=True,
    )


SMALL = long_table([[1, 1, 2], [2, 2, nan], [1, 3, 3], [3, 3, 3]])
SMALL_A, SMALL_B = [1, 2, 2, 3], [1, 2, 3, 3]

LONG_CASES = [
    (percent_agreement, {}),
    (fleiss_kappa, {}),
    # AC1/AC2 depend on the number of categories q: a resample keeps the table's q.
    (gwet_ac1, {"categories": [1, 2, 3]}),
    (gwet_ac2, {"weights": "linear", "categories": [1, 2, 3]}),
    *((krippendorff_alpha, {"level": level}) for level in LEVELS),
]
PAIR_CASES = [
    (cohen_kappa, {}),
    (cohen_kappa, {"weights": "quadratic"}),
    (pairwise_accuracy, {}),
    (spearman, {}),
    (kendall_tau, {}),
]


def rounded(values):
    return {"nan" if np.isnan(v) else round(float(v), 9) for v in values}


@pytest.mark.parametrize(("metric", "options"), LONG_CASES)
def test_it_computes_each_long_table_resample_as_the_metric_of_the_items_drawn(metric, options):
    every_resample = {
        metric(resampled_long_table(SMALL, picks), **options)
        for picks in itertools.combinations_with_replacement(range(4), 4)
    }

    drawn = bootstrap_distribution(metric, SMALL, resamples=4000, seed=1, **options)

    # 35 distinct resamples of 4 items, each drawn with probability at least 1/256, so 4000
    # draws show them all: the vectorised values are exactly the brute-force ones.
    assert rounded(drawn) == rounded(every_resample)


@pytest.mark.parametrize(("metric", "options"), PAIR_CASES)
def test_it_computes_each_two_rater_resample_as_the_metric_of_the_items_drawn(metric, options):
    every_resample = {
        metric([SMALL_A[p] for p in picks], [SMALL_B[p] for p in picks], **options)
        for picks in itertools.combinations_with_replacement(range(4), 4)
    }

    drawn = bootstrap_distribution(metric, SMALL_A, SMALL_B, resamples=4000, seed=1, **options)

    assert rounded(drawn) == rounded(every_resample)


def test_it_bootstraps_the_same_interval_for_the_same_seed():
    labels = long_table(CAC_RAW4RATERS)

    same = bootstrap_ci(krippendorff_alpha, labels, level="ordinal", seed=7)
    again = bootstrap_ci(krippendorff_alpha, labels, level="ordinal", seed=7)
    other = bootstrap_ci(krippendorff_alpha, labels, level="ordinal", seed=8)

    assert same == again
    assert same != other
    assert same[0] < krippendorff_alpha(labels, "ordinal") <= same[1]


def test_it_matches_the_normal_interval_of_a_proportion():
    rng = np.random.default_rng(3)
    n, p = 5000, 0.7
    first = rng.integers(0, 3, n)
    second = np.where(rng.random(n) < p, first, (first + 1) % 3)
    observed = pairwise_accuracy(first, second)
    half_width = 1.96 * np.sqrt(observed * (1 - observed) / n)

    low, high = bootstrap_ci(pairwise_accuracy, first, second, resamples=2000, seed=0)

    # Several chunks of resamples (5000 items each); the percentile interval of a mean is
    # close to the normal one, observed ± 1.96 √(p(1 - p)/n) ≈ ± 0.0127.
    assert low == pytest.approx(observed - half_width, abs=0.002)
    assert high == pytest.approx(observed + half_width, abs=0.002)


def test_it_leaves_undefined_resamples_out_of_the_interval():
    labels = long_table([["a", "a"], ["b", "b"]])

    values = bootstrap_distribution(krippendorff_alpha, labels, resamples=200)

    # Half the resamples draw one item twice: a single category, alpha undefined.
    assert np.isnan(values).any() and (values[~np.isnan(values)] == 1.0).all()
    assert bootstrap_ci(krippendorff_alpha, labels, resamples=200) == (1.0, 1.0)
    assert np.isnan(bootstrap_ci(fleiss_kappa, long_table([[1, 1]]))).all()


def test_it_bootstraps_only_this_modules_metrics():
    with pytest.raises(TypeError, match="no bootstrap"):
        bootstrap_ci(np.mean, long_table(CAC_RAW4RATERS))


# Every pair at once ---------------------------------------------------------------------------


def same_number(x, y):
    return (np.isnan(x) and np.isnan(y)) or x == y


@settings(max_examples=150, deadline=None)
@given(units=reliability_data(), weights=st.sampled_from([None, "linear", "quadratic"]))
def test_it_counts_every_rater_pair_as_the_two_rater_metrics_do(units, weights):
    labels = long_table(units).dropna()

    pairs = rater_pairs(labels, weights=weights)

    raters = sorted(labels["rater"].unique())
    assert list(zip(pairs["a"], pairs["b"], strict=True)) == list(itertools.combinations(raters, 2))
    for pair in pairs.itertuples():
        a, b = paired_labels(labels, pair.a, pair.b)
        assert pair.n == int((a.notna() & b.notna()).sum())
        # The very same floating-point numbers, not merely close ones.
        assert same_number(pair.percent_agreement, pairwise_accuracy(a, b))
        with np.errstate(all="ignore"):
            assert same_number(pair.cohen_kappa, cohen_kappa(a, b, weights=weights))


@settings(max_examples=150, deadline=None)
@given(
    units=reliability_data(),
    judge=st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=1, max_size=20),
    weights=st.sampled_from([None, "linear", "quadratic"]),
)
def test_it_scores_one_rater_against_each_as_the_two_rater_metrics_do(units, judge, weights):
    labels = long_table(units).dropna()
    verdicts = pd.Series(judge, index=[f"item{i}" for i in range(len(judge))], dtype=float)

    scores = against_each(verdicts, labels, weights=weights)

    assert list(scores["rater"]) == sorted(labels["rater"].unique())
    for row in scores.itertuples():
        theirs = labels[labels["rater"] == row.rater].set_index("item")["value"]
        both = verdicts.dropna().index.intersection(theirs.index)
        mine, theirs = verdicts.loc[both], theirs.loc[both]
        assert row.n == len(both)
        assert same_number(row.percent_agreement, pairwise_accuracy(mine, theirs))
        with np.errstate(all="ignore"):
            assert same_number(row.cohen_kappa, cohen_kappa(mine, theirs, weights=weights))


def test_rater_pairs_refuses_a_rater_labelling_an_item_twice():
    labels = pd.DataFrame({"item": ["i", "i"], "rater": ["r", "r"], "value": [1, 2]})

    with pytest.raises(ValueError, match="more than once"):
        rater_pairs(labels)
