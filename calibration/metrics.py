"""Agreement metrics: human-human and judge-human, with bootstrap confidence intervals.

Pure numpy/pandas, no Django, so that anyone can reuse it on a labels CSV.

Two input shapes:

- A **long table** of labels, a DataFrame with columns ``item``, ``rater`` and ``value``
  (other columns are ignored): percent agreement, Fleiss' kappa, Krippendorff's alpha,
  Gwet's AC1/AC2. Any number of raters per item.
- Two **aligned vectors** ``a`` and ``b``, ``a[i]`` and ``b[i]`` being two raters' labels of
  the same item (see `paired_labels`): Cohen's kappa, pairwise accuracy, Spearman, Kendall.

Conventions shared by every function:

- A missing value (None, NaN) is no label. An item with fewer than two labels has no pair to
  agree on and counts for no observed agreement; the chance terms follow each metric's
  published definition (Krippendorff ignores such items entirely, Fleiss and Gwet count
  them in the category shares, as Gwet (2014) and his irrCAC package do).
- Categories are the distinct values seen, unless ``categories`` lists them (also the unused
  ones, which matters to AC1/AC2). Metrics that need an order (ordinal/interval/ratio alpha,
  weighted kappa, AC2, rank correlations) use numeric values as they are, or the position
  1..q of each category in an explicit ``categories`` list; unordered text without such a
  list is an error.
- A metric whose definition divides by zero (no pairable item, a single category, a constant
  vector) is NaN, never an exception, so that one degenerate question does not stop a report.
  (The ``krippendorff`` package raises ValueError in those cases.)

Labels are counted in dense matrices (items x categories; for two raters, one rater's
values x the other's), so these metrics suit up to a few hundred distinct values (rubric
answers, rating scales, a judge's scores), not two continuous measurements. Every metric is
a closed form over per-item sums, and items whose labels count alike add the same terms, so
a resample is no more than how many items of each kind it draws: that is what lets
`bootstrap_ci` compute a thousand resamples with a few matrix products instead of a loop.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

LEVELS = ("nominal", "ordinal", "interval", "ratio")
WEIGHTS = (None, "linear", "quadratic")

# Bootstrap resamples are computed in chunks of about this many array elements, which bounds
# memory whatever the number of items or resamples; small enough to stay in the CPU caches.
_CHUNK_ELEMENTS = 1 << 20


# Long-table metrics -----------------------------------------------------------------------


def percent_agreement(labels: pd.DataFrame) -> float:
    """Mean, over items with at least two labels, of the share of agreeing rater pairs.

    p_a = (1/n') Σ_i Σ_k r_ik (r_ik - 1) / (r_i (r_i - 1)), over the n' items with r_i ≥ 2,
    r_ik being the number of raters who gave item i category k (Gwet 2014, Handbook of
    Inter-Rater Reliability, 4th ed., ch. 2; irrCAC's ``pa.coeff.raw``).
    """
    return _estimate(_percent_agreement_statistic(labels))


def fleiss_kappa(labels: pd.DataFrame) -> float:
    """Fleiss' kappa, generalised to a varying number of raters per item.

    kappa = (p_a - p_e) / (1 - p_e) with p_a as in `percent_agreement`, p_e = Σ_k π_k² and
    π_k = (1/n) Σ_i r_ik / r_i over the n items with a label (Gwet 2014, Handbook, ch. 2;
    irrCAC's ``fleiss.kappa.raw``). With the same number of raters on every item this is
    Fleiss (1971), "Measuring nominal scale agreement among many raters".
    """
    return _estimate(_fleiss_kappa_statistic(labels))


def krippendorff_alpha(labels: pd.DataFrame, level: str = "nominal", categories=None) -> float:
    """Krippendorff's alpha at the nominal, ordinal, interval or ratio level.

    alpha = 1 - D_o / D_e over the coincidence matrix o_ck = Σ_i r_ik (r_ic - [c = k]) / (r_i - 1)
    of items with r_i ≥ 2, with D_o = Σ o_ck δ²_ck and D_e = Σ n_c n_k δ²_ck / (n - 1)
    (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability"). Distances δ²_ck:
    nominal [c ≠ k]; ordinal (Σ_{g=c..k} n_g - (n_c + n_k)/2)²; interval (x_c - x_k)²;
    ratio ((x_c - x_k)/(x_c + x_k))². Equal to ``krippendorff.alpha`` to rounding.
    """
    return _estimate(_krippendorff_alpha_statistic(labels, level, categories))


def gwet_ac1(labels: pd.DataFrame, categories=None) -> float:
    """Gwet's AC1: chance agreement from how far category shares are from uniform.

    AC1 = (p_a - p_e) / (1 - p_e) with p_a as in `percent_agreement` and
    p_e = Σ_k π_k (1 - π_k) / (q - 1), π_k as in `fleiss_kappa` and q the number of
    categories: pass ``categories`` to count unused ones (Gwet 2008, "Computing inter-rater
    reliability and its variance in the presence of high agreement", BJMSP 61:29-48;
    irrCAC's ``gwet.ac1.raw``).
    """
    return _estimate(_gwet_ac1_statistic(labels, categories))


def gwet_ac2(labels: pd.DataFrame, weights: str = "quadratic", categories=None) -> float:
    """Gwet's AC2: AC1 with partial credit for near misses on an ordered scale.

    p_a = (1/n') Σ_i Σ_k r_ik (r*_ik - 1) / (r_i (r_i - 1)) with r*_ik = Σ_l w_kl r_il, and
    p_e = (Σ_kl w_kl) / (q (q - 1)) Σ_k π_k (1 - π_k); agreement weights
    w_kl = 1 - |x_k - x_l| / (x_max - x_min) (linear) or 1 - (x_k - x_l)² / (x_max - x_min)²
    (quadratic) (Gwet 2014, Handbook, ch. 3; irrCAC's ``gwet.ac1.raw(weights=...)``).
    """
    return _estimate(_gwet_ac2_statistic(labels, weights, categories))


# Two-rater metrics ------------------------------------------------------------------------


def cohen_kappa(a, b, weights: str | None = None, categories=None) -> float:
    """Cohen's kappa between two raters, unweighted, linear or quadratic.

    kappa = (p_o - p_e) / (1 - p_e) with p_o = Σ w_kl p_kl and p_e = Σ w_kl p_k. p_.l over the
    items both labelled (Cohen 1960; weighted: Cohen 1968). Agreement weights as in
    `gwet_ac2`; for consecutive integer categories this is sklearn's ``cohen_kappa_score``.
    """
    return _estimate(_cohen_kappa_statistic(a, b, weights, categories))


def pairwise_accuracy(a, b) -> float:
    """Share of the items both raters labelled on which they gave the same value."""
    return _estimate(_pairwise_accuracy_statistic(a, b))


def spearman(a, b, categories=None) -> float:
    """Spearman's rho: the Pearson correlation of the two raters' mid-ranks (ties averaged).

    Over the items both labelled; the same value as ``scipy.stats.spearmanr``.
    """
    return _estimate(_spearman_statistic(a, b, categories))


def kendall_tau(a, b, categories=None) -> float:
    """Kendall's tau-b: (concordant - discordant pairs) / √((n0 - n1)(n0 - n2)).

    n0 = n(n - 1)/2 and n1, n2 the pairs tied on each side (Kendall 1945, "The treatment of
    ties in ranking problems"); over the items both labelled; the same value as
    ``scipy.stats.kendalltau``.
    """
    return _estimate(_kendall_tau_statistic(a, b, categories))


def paired_labels(labels: pd.DataFrame, first, second) -> tuple[pd.Series, pd.Series]:
    """Two raters' labels from a long table, aligned by item, for the two-rater metrics.

    Items only one of them labelled get a missing value on the other side, which the
    metrics skip. Raises ValueError if a rater labelled an item twice.
    """
    mine = labels.loc[labels["rater"].isin([first, second]), ["item", "rater", "value"]]
    wide = mine.pivot(index="item", columns="rater", values="value")
    wide = wide.reindex(columns=[first, second])
    return wide[first], wide[second]


def rater_pairs(labels: pd.DataFrame, weights: str | None = None) -> pd.DataFrame:
    """Every pair of raters of a long table, counted at once: for raters a < b (sorted), the
    items both labelled (n) and what `pairwise_accuracy` and `cohen_kappa` give for
    `paired_labels(labels, a, b)`: columns a, b, n, percent_agreement, cohen_kappa (NaN
    where n is 0). Raises ValueError if a rater labelled an item twice.
    """
    labels = labels.loc[labels["value"].notna(), ["item", "rater", "value"]]
    raters = pd.Index(sorted(labels["rater"].unique()))
    item, _ = _factorize(labels["item"], sort=False)
    rater = raters.get_indexer(labels["rater"])
    value, values = _factorize(labels["value"])
    if _has_duplicates(item.astype(np.int64) * len(raters) + rater):
        raise ValueError("a rater labelled the same item more than once")
    # Each item's labels in rater order; label i and label i + d of one item are a pair.
    by_item = np.lexsort((rater, item))
    item, rater, value = item[by_item], rater[by_item], value[by_item]
    first = second = np.zeros(0, dtype=np.intp)
    for d in range(1, int(np.bincount(item).max(initial=0))):
        same = np.flatnonzero(item[:-d] == item[d:])
        first, second = np.append(first, same), np.append(second, same + d)
    pair = rater[first].astype(np.int64) * len(raters) + rater[second]
    cells = value[first] * len(values) + value[second]
    a, b = np.triu_indices(len(raters), k=1)
    tables = _tables_by(np.searchsorted(a * len(raters) + b, pair), cells, len(a), len(values))
    accuracy, kappa = _two_rater_figures(tables, values, weights)
    return pd.DataFrame(
        {
            "a": raters[a],
            "b": raters[b],
            "n": tables.sum(axis=(1, 2)).astype(int),
            "percent_agreement": accuracy,
            "cohen_kappa": kappa,
        }
    )


def against_each(values: pd.Series, labels: pd.DataFrame, weights: str | None = None):
    """One rater's values (a Series by item) against each rater of a long table, counted at
    once: per rater (sorted), the items both labelled (n) and `pairwise_accuracy` and
    `cohen_kappa` of the two on them, this rater's values first: columns rater, n,
    percent_agreement, cohen_kappa (NaN where n is 0).
    """
    values = values.dropna()
    labels = labels.loc[labels["value"].notna(), ["item", "rater", "value"]]
    raters = pd.Index(sorted(labels["rater"].unique()))
    mine = values.index.get_indexer(labels["item"])
    labels = labels[mine >= 0]
    codes, categories = _factorize(
        pd.concat([values, labels["value"]], ignore_index=True).infer_objects()
    )
    q = len(categories)
    cells = codes[: len(values)][mine[mine >= 0]] * q + codes[len(values) :]
    rater = raters.get_indexer(labels["rater"])
    tables = _tables_by(rater, cells, len(raters), q)
    accuracy, kappa = _two_rater_figures(tables, categories, weights)
    n = tables.sum(axis=(1, 2)).astype(int)
    return pd.DataFrame(
        {"rater": raters, "n": n, "percent_agreement": accuracy, "cohen_kappa": kappa}
    )


def _tables_by(group, cells, groups, q):
    """(groups, q, q) contingency tables from each pair's group and cell."""
    counts = np.bincount(group * q * q + cells, minlength=groups * q * q)
    return counts.reshape(groups, q, q).astype(np.float64)


def _two_rater_figures(tables, values, weights):
    """Accuracy and Cohen's kappa of each contingency table, on the categories the table
    has (as the two-rater metrics of its labels see them). Without weights, categories that
    a table lacks add nothing to its whole-number sums, so all tables are taken at once."""
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.trace(tables, axis1=1, axis2=2) / tables.sum(axis=(1, 2))
    if weights is None:
        return accuracy, _kappa(tables, _agreement_weights(None, values, False))
    kappa = np.full(len(tables), np.nan)
    for k, table in enumerate(tables):
        present = (table.sum(axis=0) + table.sum(axis=1)) > 0
        if present.any():
            own = table[np.ix_(present, present)][np.newaxis]
            own_values = values[present].infer_objects()
            kappa[k] = _kappa(own, _agreement_weights(weights, own_values, False))[0]
    return accuracy, kappa


# Bootstrap ---------------------------------------------------------------------------------


def bootstrap_distribution(
    metric: Callable, *data, resamples: int = 1000, seed: int = 0, **options
) -> np.ndarray:
    """The metric on `resamples` bootstrap resamples of the items, drawn with replacement.

    ``metric`` is one of this module's metric functions, called as ``metric(*data,
    **options)`` would be. All resamples come from one seeded ``numpy`` Generator and are
    computed together, a chunk of resamples per matrix product, each resample as the number
    of copies it draws of each kind of item (`resampled_copies`). NaN marks a resample on
    which the metric is undefined. The categories (and so AC1's q) are the whole table's in
    every resample; the same seed and the same labels give the same resamples.
    """
    statistic = _STATISTICS.get(metric)
    if statistic is None:
        names = ", ".join(sorted(f.__name__ for f in _STATISTICS))
        raise TypeError(f"no bootstrap for {metric!r}; expected one of {names}")
    copies, width, compute = statistic(*data, **options)
    rng = np.random.default_rng(seed)
    out = np.full(resamples, np.nan)
    if not len(copies):
        return out
    per_chunk = max(1, _CHUNK_ELEMENTS // width)
    for start in range(0, resamples, per_chunk):
        out[start : start + per_chunk] = compute(
            resampled_copies(rng, copies, min(per_chunk, resamples - start))
        )
    return out


def resampled_copies(rng, copies: np.ndarray, resamples: int) -> np.ndarray:
    """Bootstrap resamples of units of several kinds, `copies[k]` units of kind k: how many
    units of each kind each resample draws, a (resamples, kinds) float matrix.

    Drawing n units with replacement draws the kinds in multinomial numbers, n and the kinds'
    shares of the units its parameters (Efron & Tibshirani 1993, ch. 20, the resampling
    vector), and those numbers are what is drawn when there are few kinds; with many, the
    units themselves are drawn and counted by kind, which is cheaper then.
    """
    units = int(copies.sum())
    if len(copies) * 8 <= units:
        return rng.multinomial(units, copies / units, size=resamples).astype(np.float64)
    kind = np.repeat(np.arange(len(copies)), copies)
    draws = kind[rng.integers(0, units, size=(resamples, units))]
    draws += np.arange(resamples)[:, np.newaxis] * len(copies)
    counts = np.bincount(draws.ravel(), minlength=resamples * len(copies))
    return counts.reshape(resamples, len(copies)).astype(np.float64)


def bootstrap_ci(
    metric: Callable,
    *data,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    **options,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a metric, resampling items.

    Items, not labels, are the unit resampled, as the labels of one item are not independent
    (Efron & Tibshirani 1993, An Introduction to the Bootstrap, ch. 13; Miller 2024, "Adding
    error bars to evals"). Resamples on which the metric is undefined are left out; (NaN,
    NaN) when all are. Same arguments as `bootstrap_distribution`.
    """
    values = bootstrap_distribution(metric, *data, resamples=resamples, seed=seed, **options)
    values = values[np.isfinite(values)]
    if not len(values):
        return (np.nan, np.nan)
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return (float(low), float(high))


# Statistics over resampled items -----------------------------------------------------------
#
# Each metric is built as a _Statistic over kinds of units: units (items, or item pairs for
# two raters) whose labels count alike, and so add the same terms to every sum the metric
# takes. `compute` takes a (B, kinds) matrix of the copies of each kind in B resamples and
# returns the B values; the point estimate is the resample that takes every unit once.


class _Statistic(NamedTuple):
    copies: np.ndarray  # how many units are of each kind
    width: int  # array elements needed per resample, to size the chunks
    compute: Callable[[np.ndarray], np.ndarray]


def _estimate(statistic: _Statistic) -> float:
    if not len(statistic.copies):
        return np.nan
    return float(statistic.compute(statistic.copies[np.newaxis, :].astype(np.float64))[0])


def _kinds(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a matrix, and how many times each is there."""
    if not len(rows):
        return rows, np.zeros(0, dtype=np.int64)
    return np.unique(rows, axis=0, return_counts=True)


def _percent_agreement_statistic(labels):
    return _agreement_statistic(labels, chance=None)


def _fleiss_kappa_statistic(labels):
    return _agreement_statistic(labels, chance="fleiss")


def _gwet_ac1_statistic(labels, categories=None):
    return _agreement_statistic(labels, chance="gwet", categories=categories)


def _gwet_ac2_statistic(labels, weights="quadratic", categories=None):
    return _agreement_statistic(labels, chance="gwet", weights=weights, categories=categories)


def _agreement_statistic(labels, chance, weights=None, categories=None) -> _Statistic:
    """Percent agreement, Fleiss' kappa and Gwet's AC1/AC2: Gwet's (2014) general form."""
    counts, values = _count_matrix(labels, categories)
    agreement = _agreement_weights(weights, values, categories is not None)
    q = len(values)
    units = len(counts)
    counts, copies = _kinds(counts)
    raters = counts.sum(axis=1)
    pairable = raters >= 2
    pairs = np.where(pairable, raters * (raters - 1), 1)
    item_agreement = (counts * (counts @ agreement - 1)).sum(axis=1) / pairs * pairable
    shares = counts / np.maximum(raters, 1)[:, np.newaxis]
    features = np.column_stack([item_agreement, pairable, shares])

    def compute(resampled):
        sums = resampled @ features
        with np.errstate(divide="ignore", invalid="ignore"):
            observed = sums[:, 0] / sums[:, 1]
        if chance is None:
            return observed
        pi = sums[:, 2:] / units
        if chance == "fleiss":
            expected = (pi**2).sum(axis=1)
        elif q < 2:
            expected = np.full(len(resampled), np.nan)
        else:
            expected = agreement.sum() / (q * (q - 1)) * (pi * (1 - pi)).sum(axis=1)
        return _chance_corrected(observed, expected)

    return _Statistic(copies, len(copies) + q + 2, compute)


def _krippendorff_alpha_statistic(labels, level="nominal", categories=None) -> _Statistic:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    counts, values = _count_matrix(labels, categories)
    if level != "nominal":
        x = _scale(values, categories is not None, f"{level} alpha")
    q = len(values)
    counts, copies = _kinds(counts)
    raters = counts.sum(axis=1)
    pairable = counts * (raters >= 2)[:, np.newaxis]
    # 1 / (r_i - 1) on pairable items; other rows of `pairable` are zero anyway.
    inverse = 1 / np.maximum(raters - 1, 1)

    if level == "ordinal":
        # Ordinal distances depend on the value counts, so each resample needs its own
        # coincidence matrix: built one row (category) at a time, never one resample at a time.
        scaled = pairable * inverse[:, np.newaxis]

        def compute(weights):
            n_c = weights @ pairable
            o = np.stack([weights @ (scaled * pairable[:, [c]]) for c in range(q)], axis=1)
            midranks = np.cumsum(n_c, axis=1) - n_c / 2
            d = (midranks[:, :, np.newaxis] - midranks[:, np.newaxis, :]) ** 2
            observed = (o * d).sum(axis=(1, 2))
            expected = np.einsum("bc,bck,bk->b", n_c, d, n_c) / (n_c.sum(axis=1) - 1)
            return _one_minus_ratio(observed, expected)

        return _Statistic(copies, len(copies) + q * q, compute)

    if level == "nominal":
        d = 1 - np.eye(q)
    elif level == "interval":
        d = (x[:, np.newaxis] - x[np.newaxis, :]) ** 2
    else:
        total = x[:, np.newaxis] + x[np.newaxis, :]
        d = np.divide(
            x[:, np.newaxis] - x[np.newaxis, :], total, out=np.zeros((q, q)), where=total != 0
        )
        d **= 2
    disagreement = ((pairable @ d) * pairable).sum(axis=1) * inverse
    features = np.column_stack([disagreement, pairable])

    def compute(resampled):
        sums = resampled @ features
        n_c = sums[:, 1:]
        expected = ((n_c @ d) * n_c).sum(axis=1) / (n_c.sum(axis=1) - 1)
        return _one_minus_ratio(sums[:, 0], expected)

    return _Statistic(copies, len(copies) + q + 1, compute)


def _cohen_kappa_statistic(a, b, weights=None, categories=None) -> _Statistic:
    a, b = _aligned(a, b)
    codes, values = _codes(pd.concat([a, b], ignore_index=True), categories)
    agreement = _agreement_weights(weights, values, categories is not None)

    q = len(values)
    return _table_statistic(
        codes[: len(a)], codes[len(a) :], q, q, lambda tables: _kappa(tables, agreement)
    )


def _kappa(tables, agreement):
    """Cohen's kappa of (B, q, q) contingency tables, with agreement weights (q, q)."""
    n = tables.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (tables * agreement).sum(axis=(1, 2)) / n
        rows, cols = tables.sum(axis=2), tables.sum(axis=1)
        expected = np.einsum("bk,kl,bl->b", rows, agreement, cols) / n**2
    return _chance_corrected(observed, expected)


def _pairwise_accuracy_statistic(a, b) -> _Statistic:
    a, b = _aligned(a, b)
    codes, values = _factorize(pd.concat([a, b], ignore_index=True), sort=False)

    def accuracy(tables):
        return np.trace(tables, axis1=1, axis2=2) / tables.sum(axis=(1, 2))

    q = len(values)
    return _table_statistic(codes[: len(a)], codes[len(a) :], q, q, accuracy)


def _spearman_statistic(a, b, categories=None) -> _Statistic:
    a, b = _aligned(a, b)
    (a_codes, a_values), (b_codes, b_values) = _ranked(a, categories), _ranked(b, categories)

    def rho(tables):
        n = tables.sum(axis=(1, 2))[:, np.newaxis]
        rows, cols = tables.sum(axis=2), tables.sum(axis=1)
        # Mid-ranks up to a constant shift, which a correlation ignores.
        x = np.cumsum(rows, axis=1) - rows / 2
        y = np.cumsum(cols, axis=1) - cols / 2
        x -= (rows * x).sum(axis=1, keepdims=True) / n
        y -= (cols * y).sum(axis=1, keepdims=True) / n
        covariance = np.einsum("bk,bkl,bl->b", x, tables, y)
        variance = (rows * x**2).sum(axis=1) * (cols * y**2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(variance > 0, covariance / np.sqrt(variance), np.nan)

    return _table_statistic(a_codes, b_codes, len(a_values), len(b_values), rho)


def _kendall_tau_statistic(a, b, categories=None) -> _Statistic:
    a, b = _aligned(a, b)
    (a_codes, a_values), (b_codes, b_values) = _ranked(a, categories), _ranked(b, categories)

    def tau_b(tables):
        # above[b, k, l] = pairs with both ranks above (k, l): Σ_{k'>k, l'>l} tables[b, k', l'];
        # below_left = Σ_{k'>k, l'<l}. Suffix sums over rows, then suffix/prefix over columns.
        rows_after = np.cumsum(tables[:, ::-1], axis=1)[:, ::-1] - tables
        above = np.cumsum(rows_after[:, :, ::-1], axis=2)[:, :, ::-1] - rows_after
        below_left = np.cumsum(rows_after, axis=2) - rows_after
        concordant = (tables * above).sum(axis=(1, 2))
        discordant = (tables * below_left).sum(axis=(1, 2))
        n = tables.sum(axis=(1, 2))
        rows, cols = tables.sum(axis=2), tables.sum(axis=1)
        pairs = n * (n - 1) / 2
        untied_rows = pairs - (rows * (rows - 1) / 2).sum(axis=1)
        untied_cols = pairs - (cols * (cols - 1) / 2).sum(axis=1)
        denominator = np.sqrt(untied_rows * untied_cols)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denominator > 0, (concordant - discordant) / denominator, np.nan)

    return _table_statistic(a_codes, b_codes, len(a_values), len(b_values), tau_b)


def _table_statistic(row_codes, col_codes, rows, cols, finish) -> _Statistic:
    """A two-rater statistic as a function of the (B, rows, cols) contingency tables."""
    size = rows * cols
    if size > _CHUNK_ELEMENTS * 64:
        raise ValueError(
            f"{rows} x {cols} distinct values are too many for a contingency table; "
            "these are metrics for categories and rating scales"
        )
    cells, copies = _kinds(row_codes.astype(np.int64) * cols + col_codes)

    def compute(resampled):
        tables = np.zeros((len(resampled), size))
        tables[:, cells] = resampled
        return finish(tables.reshape(len(resampled), rows, cols))

    return _Statistic(copies, len(copies) + size, compute)


# Shared building blocks ---------------------------------------------------------------------


def _count_matrix(labels: pd.DataFrame, categories=None) -> tuple[np.ndarray, pd.Index]:
    """n_ic, the number of raters who gave item i category c, over items with a label.

    Returns the (items, categories) count matrix and the categories, numeric ones sorted.
    """
    value_codes, values = _codes(labels["value"], categories)
    item_codes, items = _factorize(labels["item"], sort=False)
    rater_codes, raters = _factorize(labels["rater"], sort=False)
    if (item_codes < 0).any() or (rater_codes < 0).any():
        raise ValueError("every label needs an item and a rater")
    present = value_codes >= 0
    if not present.all():
        item_codes, rater_codes = item_codes[present], rater_codes[present]
        value_codes = value_codes[present]
    if _has_duplicates(item_codes.astype(np.int64) * len(raters) + rater_codes):
        raise ValueError("a rater labelled the same item more than once")
    q = len(values)
    counts = np.bincount(item_codes * q + value_codes, minlength=len(items) * q)
    counts = counts.reshape(len(items), q)
    if not present.all():
        counts = counts[counts.any(axis=1)]
    return counts.astype(np.float64), values


def _codes(values: pd.Series, categories=None) -> tuple[np.ndarray, pd.Index]:
    """Category codes 0..q-1 (-1 where missing), and the categories in order."""
    if categories is None:
        return _factorize(values)
    ordered = pd.Index(categories)
    if ordered.has_duplicates:
        raise ValueError("categories must be distinct")
    if _is_numeric(ordered):
        ordered = ordered.sort_values()
    codes = ordered.get_indexer(values)
    unknown = values[codes < 0]
    unknown = pd.unique(unknown[unknown.notna()])
    if len(unknown):
        raise ValueError(
            f"values not among the categories: {', '.join(map(repr, unknown[:5].tolist()))}"
        )
    return codes, ordered


def _factorize(values: pd.Series, sort: bool = True) -> tuple[np.ndarray, pd.Index]:
    """Codes of the distinct values (-1 where missing), as `pd.factorize`.

    Integers within a small range (ids, scale points) take a counting shortcut, a few times
    faster than hashing, and come out sorted whatever `sort` says.
    """
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu" and len(values):
        array = values.to_numpy()
        low = array.min()
        if int(array.max()) - int(low) <= 4 * len(array):
            offsets = array - low
            seen = np.bincount(offsets) > 0
            codes = (np.cumsum(seen) - 1)[offsets]
            return codes, pd.Index(np.flatnonzero(seen) + low, dtype=values.dtype)
    codes, uniques = pd.factorize(values, sort=sort)
    return codes, pd.Index(uniques).infer_objects()


def _has_duplicates(keys: np.ndarray) -> bool:
    if len(keys) and keys.max() <= 4 * len(keys):
        return bool(np.bincount(keys).max() > 1)
    return pd.Index(keys).has_duplicates


def _ranked(values: pd.Series, categories) -> tuple[np.ndarray, pd.Index]:
    codes, ordered = _codes(values, categories)
    _scale(ordered, categories is not None, "a rank correlation")
    return codes, ordered


def _aligned(a, b) -> tuple[pd.Series, pd.Series]:
    """The two vectors without the items either rater left unlabelled."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series) and not a.index.equals(b.index):
        raise ValueError("a and b have different indexes; align them first (paired_labels)")
    a, b = (
        (v.reset_index(drop=True) if isinstance(v, pd.Series) else pd.Series(v)).infer_objects()
        for v in (a, b)
    )
    if len(a) != len(b):
        raise ValueError(f"a and b differ in length ({len(a)} and {len(b)})")
    both = (a.notna() & b.notna()).to_numpy()
    return a[both].reset_index(drop=True), b[both].reset_index(drop=True)


def _is_numeric(values: pd.Index) -> bool:
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    )


def _scale(values: pd.Index, explicit: bool, what: str) -> np.ndarray:
    """Where each category sits on the scale: its numeric value, or its position 1..q."""
    if _is_numeric(values):
        return values.to_numpy(dtype=np.float64)
    if explicit or not len(values):
        return np.arange(1, len(values) + 1, dtype=np.float64)
    raise ValueError(
        f"{what} needs ordered categories: numeric values, or `categories` listing them in order"
    )


def _agreement_weights(weights, values: pd.Index, explicit: bool) -> np.ndarray:
    """w_kl: 1 for the same category, partial credit for near ones (Gwet 2014, ch. 3)."""
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; expected None, 'linear' or 'quadratic'")
    q = len(values)
    if weights is None or q < 2:
        return np.eye(q)
    x = _scale(values, explicit, f"{weights} weights")
    distance = np.abs(x[:, np.newaxis] - x[np.newaxis, :]) / (x.max() - x.min())
    return 1 - (distance if weights == "linear" else distance**2)


def _chance_corrected(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def _one_minus_ratio(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1 - observed / expected, np.nan)


_STATISTICS = {
    percent_agreement: _percent_agreement_statistic,
    fleiss_kappa: _fleiss_kappa_statistic,
    krippendorff_alpha: _krippendorff_alpha_statistic,
    gwet_ac1: _gwet_ac1_statistic,
    gwet_ac2: _gwet_ac2_statistic,
    cohen_kappa: _cohen_kappa_statistic,
    pairwise_accuracy: _pairwise_accuracy_statistic,
    spearman: _spearman_statistic,
    kendall_tau: _kendall_tau_statistic,
}
