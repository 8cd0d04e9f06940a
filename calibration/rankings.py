"""Rankings of models from pairwise labels: Bradley-Terry and Elo scores with bootstrap CIs.

Pure numpy/pandas, no Django, like `calibration.metrics`: reports pass it the pairwise labels
of the humans, or of one judge, and compare the rankings with `rank_correlation`.

Input: a DataFrame of pairwise labels with columns ``item``, ``value`` (``A``, ``B`` or
``tie``, naming the original responses whatever order they were shown in), ``model_a`` and
``model_b`` (the models that wrote responses A and B); other columns are ignored. An item may
have several rows, one per rater. A missing value is no label; a row comparing a model with
itself says nothing about either and is left out.

Scores are on the Elo scale of Chatbot Arena (Chiang et al. 2024, "Chatbot Arena: An Open
Platform for Evaluating LLMs by Human Preference", and its notebook's ``compute_elo`` /
``compute_mle_elo``): model i is preferred to model j with probability
1 / (1 + base ** ((s_j - s_i) / scale)), so with the defaults a 400-point gap is 10:1 odds.
A tie counts as half a win for each side, as Chatbot Arena counts it (``ties="drop"`` leaves
ties out instead).

A model is scored NaN where it has no comparison (all its labels were ties that were dropped,
or, in a bootstrap resample, none of its items was drawn). Confidence intervals resample
items, not labels, as the labels of one item are not independent (see
`calibration.metrics.bootstrap_ci`).
"""

import inspect
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from calibration import metrics

METHODS = ("bradley_terry", "elo")
TIES = ("half", "drop")
OUTCOMES = {"A": 1.0, "B": 0.0, "tie": 0.5}  # the score of response A

# Bootstrap resamples are computed in chunks of about this many array elements, which bounds
# memory whatever the number of items or resamples.
_CHUNK_ELEMENTS = 1 << 22
# Newton's method stops when no log-strength moves by more than this (in nats); it converges
# quadratically, so a handful of iterations usually get there.
_TOLERANCE = 1e-10
_MAX_ITERATIONS = 100
_MAX_HALVINGS = 30


# Scores -------------------------------------------------------------------------------------


def bradley_terry(
    labels: pd.DataFrame,
    *,
    ties: str = "half",
    prior: float = 0.01,
    scale: float = 400,
    base: float = 10,
    anchor: float = 1000,
    anchor_model=None,
) -> pd.Series:
    """Bradley-Terry scores: the strengths that make the labels most likely, on the Elo scale.

    P(i preferred to j) = exp(θ_i) / (exp(θ_i) + exp(θ_j)) (Bradley & Terry 1952; Zermelo
    1929), fitted by maximum likelihood as a logistic regression on the log-strengths θ, which
    is what Chatbot Arena's ``compute_mle_elo`` does, here by Newton's method with step
    halving (the log-likelihood is concave in θ; Hunter 2004, "MM algorithms for generalized
    Bradley-Terry models", Ann. Statist. 32:384-406, reaches the same maximum by MM).
    Score = anchor + scale · (θ_i - c) / ln(base): the scores average ``anchor``, or
    ``anchor_model`` scores exactly ``anchor`` when given.

    The plain maximum-likelihood estimate exists only if, however the models are split in
    two groups, some model of each group was preferred at least once to one of the other
    (Ford 1957; Hunter 2004, Assumption 1): a model that never loses would have an infinite
    score. So each model also plays ``prior`` virtual ties (half a win and half a loss each)
    against a virtual model of log-strength 0, the prior of Coulom's Whole-History Rating
    (Coulom 2008, "Whole-History Rating: A Bayesian Rating System for Players of Time-Varying
    Strength", which gives each player one virtual win and one virtual loss: ``prior=2``).
    It keeps every score finite; a model that won all its n comparisons lands about
    log(2n / prior) nats above its opponents, first of the ranking, at a distance the prior
    sets, not the data. The default, a hundredth of a virtual tie, is too weak to move
    well-determined scores: it moves those of Agresti's 1987 baseball example (78 games a
    team) by less than 0.03 points. ``prior=0`` is the plain maximum-likelihood estimate, NaN
    where it does not exist.
    """
    data = _comparisons(labels, ties)
    return _series(
        data.models,
        _bradley_terry_statistic(data, prior, scale, base, anchor, anchor_model).estimate(),
    )


def elo(
    labels: pd.DataFrame,
    *,
    k: float = 4,
    ties: str = "half",
    initial: float = 1000,
    scale: float = 400,
    base: float = 10,
) -> pd.Series:
    """Online Elo ratings, updated label after label in the rows' order.

    Each comparison moves both models by k · (actual - expected score), the expected score of
    A being 1 / (1 + base ** ((r_B - r_A) / scale)) (Elo 1978, "The Rating of Chessplayers";
    Chatbot Arena's ``compute_elo``, whose defaults these are). Updates are zero-sum, so the
    ratings average ``initial``. Unlike Bradley-Terry the result depends on the order of the
    rows (recent labels weigh more), and a small k keeps it far from converged on few
    labels; it is here to compare with published Arena-style Elo, Bradley-Terry being the
    estimate to rank with. Its bootstrap resamples take the drawn items in the order drawn.
    """
    data = _comparisons(labels, ties)
    return _series(data.models, _elo_statistic(data, k, initial, scale, base).estimate())


# Bootstrap ----------------------------------------------------------------------------------


def bootstrap_scores(
    labels: pd.DataFrame,
    method: str = "bradley_terry",
    *,
    resamples: int = 1000,
    seed: int = 0,
    **options,
) -> pd.DataFrame:
    """Scores on `resamples` bootstrap resamples of the items: one row per resample.

    ``method`` names `bradley_terry` or `elo`, called with ``options``. A drawn item brings
    all its labels; all resamples come from one seeded ``numpy`` Generator, the same seed and
    rows giving the same resamples. Bradley-Terry fits all the resamples of a chunk
    together, each as the copies it draws of each kind of item (items with the same
    comparisons, `metrics.resampled_copies`); Elo, which takes the drawn items in order,
    draws the items themselves.
    """
    data, statistic = _statistic(labels, method, options)
    drawn = _bootstrap(statistic, len(data.models), resamples, seed)
    return pd.DataFrame(drawn, columns=data.models)


def ranking_with_ci(
    labels: pd.DataFrame,
    method: str = "bradley_terry",
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    **options,
) -> pd.DataFrame:
    """The models by score, with percentile bootstrap intervals: a leaderboard.

    Columns: model, score (on all the labels), ci_low, ci_high (over the resamples where the
    model has a score), rank (1 + the models with a higher score) and rank_ub (1 + the
    models whose interval lies wholly above this one's, Chatbot Arena's "Rank (UB)": models
    that share a rank_ub cannot be told apart at this confidence). Best model first. With an
    ``anchor_model`` that model's interval is the anchor itself, the others relative to it.
    An Elo score, taken in the rows' order, need not lie inside its interval: the resamples
    shuffle the order, as Chatbot Arena's bootstrap of ``compute_elo`` does. With
    ``resamples=0`` the intervals (and rank_ub) are NaN.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    data, statistic = _statistic(labels, method, options)
    if resamples > 0:
        drawn = _bootstrap(statistic, len(data.models), resamples, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
            bounds = np.nanquantile(drawn, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
        low, high = bounds.reshape(2, len(data.models))
    else:
        low = high = np.full(len(data.models), np.nan)
    table = pd.DataFrame(
        {"model": data.models, "score": statistic.estimate(), "ci_low": low, "ci_high": high}
    )
    table["rank"] = table["score"].rank(method="min", ascending=False).astype("Int64")
    above = low[np.newaxis, :] > high[:, np.newaxis]  # above[i, j]: j's interval above i's
    table["rank_ub"] = pd.array(1 + above.sum(axis=1), dtype="Int64")
    table.loc[np.isnan(high), "rank_ub"] = pd.NA
    table = table.sort_values(["score", "model"], ascending=[False, True], na_position="last")
    return table.reset_index(drop=True)


def rank_correlation(scores_a, scores_b) -> dict:
    """How alike two rankings of the same models are: Spearman's rho and Kendall's tau-b.

    Takes two model → score Series (from `bradley_terry` or `elo`) or two `ranking_with_ci`
    tables, e.g. the humans' ranking and one judge's, and compares them over the models both
    score; ``n_models`` says how many. NaN with fewer than two such models.
    """
    a, b = _scores(scores_a).dropna(), _scores(scores_b).dropna()
    common = a.index.intersection(b.index)
    x, y = a.loc[common].to_numpy(), b.loc[common].to_numpy()
    return {
        "n_models": len(common),
        "spearman": metrics.spearman(x, y),
        "kendall_tau": metrics.kendall_tau(x, y),
    }


# Comparisons --------------------------------------------------------------------------------


class _Comparisons(NamedTuple):
    models: pd.Index  # every model named by a label, sorted
    item: np.ndarray  # item code of each comparison, in the rows' order
    first: np.ndarray  # model code of response A
    second: np.ndarray  # model code of response B
    outcome: np.ndarray  # A's score: 1 (A preferred), 0 (B preferred) or 0.5 (tie)
    items: int


class _Statistic(NamedTuple):
    units: int  # items to resample
    width: int  # array elements needed per resample, to size the chunks
    # (B, units) drawn items, or with `copies` (B, kinds) copies of each kind of item, ->
    # (B, models) scores
    compute: Callable[[np.ndarray], np.ndarray]
    estimate: Callable[[], np.ndarray]  # the scores on all the labels
    copies: np.ndarray | None = None  # items of each kind, where items of a kind score alike


def _comparisons(labels: pd.DataFrame, ties: str) -> _Comparisons:
    missing = [c for c in ("item", "value", "model_a", "model_b") if c not in labels.columns]
    if missing:
        raise ValueError(f"pairwise labels need a column {missing[0]!r}")
    if ties not in TIES:
        raise ValueError(f"unknown ties {ties!r}; expected 'half' or 'drop'")
    labelled = labels[labels["value"].notna()]
    if labelled[["item", "model_a", "model_b"]].isna().any(axis=None):
        raise ValueError("every pairwise label needs an item, a model_a and a model_b")
    outcome = labelled["value"].map(OUTCOMES)
    if outcome.isna().any():
        bad = labelled.loc[outcome.isna(), "value"].iloc[0]
        raise ValueError(f"pairwise values are 'A', 'B' or 'tie', not {bad!r}")
    named = pd.unique(np.concatenate([labelled["model_a"].unique(), labelled["model_b"].unique()]))
    models = pd.Index(sorted(named), name="model")
    first = models.get_indexer(labelled["model_a"])
    second = models.get_indexer(labelled["model_b"])
    outcome = outcome.to_numpy(dtype=np.float64)
    item, items = pd.factorize(labelled["item"], sort=False)
    keep = first != second
    if ties == "drop":
        keep &= outcome != 0.5
    return _Comparisons(
        models, item[keep], first[keep], second[keep], outcome[keep], items=len(items)
    )


def _statistic(labels, method, options) -> tuple[_Comparisons, _Statistic]:
    """The comparisons and the statistic of `method` called with `options`."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected 'bradley_terry' or 'elo'")
    function, builder = {
        "bradley_terry": (bradley_terry, _bradley_terry_statistic),
        "elo": (elo, _elo_statistic),
    }[method]
    # The public function's signature holds the defaults and refuses unknown options.
    arguments = inspect.signature(function).bind(labels, **options)
    arguments.apply_defaults()
    arguments = dict(arguments.arguments)
    data = _comparisons(arguments.pop("labels"), arguments.pop("ties"))
    return data, builder(data, **arguments)


def _bootstrap(statistic: _Statistic, n_models: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full((resamples, n_models), np.nan)
    if statistic.units:
        per_chunk = max(1, _CHUNK_ELEMENTS // statistic.width)
        for start in range(0, resamples, per_chunk):
            size = min(per_chunk, resamples - start)
            if statistic.copies is not None:
                drawn = metrics.resampled_copies(rng, statistic.copies, size)
            else:
                shape = (size, statistic.units)
                drawn = rng.integers(0, statistic.units, size=shape, dtype=np.int32)
            out[start : start + size] = statistic.compute(drawn)
    return out


def _series(models: pd.Index, scores: np.ndarray) -> pd.Series:
    return pd.Series(scores, index=models, name="score")


def _scores(scores) -> pd.Series:
    if isinstance(scores, pd.DataFrame):
        return scores.set_index("model")["score"]
    return pd.Series(scores, dtype=np.float64)


def _sum_by(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sums of a (B, K) matrix's columns by the group of each column: (B, n_groups)."""
    offsets = np.arange(len(values))[:, np.newaxis] * n_groups
    sums = np.bincount((groups + offsets).ravel(), values.ravel(), len(values) * n_groups)
    return sums.reshape(len(values), n_groups)


# Bradley-Terry ------------------------------------------------------------------------------
#
# The labels are summed per item and (unordered) pair of models; a resample's data are then
# n (comparisons) and w (wins of the pair's first model, ties counting half) per pair, a
# (B, P) matrix each, and all B resamples of a chunk are fitted together.


def _bradley_terry_statistic(data, prior, scale, base, anchor, anchor_model) -> _Statistic:
    if not prior >= 0:
        raise ValueError(f"prior must be a number of virtual ties, 0 or more, not {prior!r}")
    n_models = len(data.models)
    if anchor_model is not None and anchor_model not in data.models:
        raise ValueError(f"anchor_model {anchor_model!r} is not among the labelled models")
    low, high = np.minimum(data.first, data.second), np.maximum(data.first, data.second)
    wins = np.where(data.first < data.second, data.outcome, 1 - data.outcome)
    pair, pairs = pd.factorize(low.astype(np.int64) * n_models + high, sort=True)
    pair_low, pair_high = pairs // n_models, pairs % n_models
    # Units: the (item, pair) combinations, item by item; each item is usually one unit, and
    # then the units are the items themselves.
    n_pairs = len(pairs)
    unit, units = pd.factorize(data.item.astype(np.int64) * max(n_pairs, 1) + pair, sort=True)
    unit_item, unit_pair = units // max(n_pairs, 1), units % max(n_pairs, 1)
    unit_n = np.bincount(unit, minlength=len(units)).astype(np.float64)
    unit_w = np.bincount(unit, wins, minlength=len(units))
    # Kinds of items: those with the same comparisons (pair, n, w) count the same in a fit.
    kind_of_unit = pd.factorize(pd.MultiIndex.from_arrays([unit_pair, unit_n, unit_w]))[0]
    if np.array_equal(unit_item, np.arange(data.items)):  # one pair an item, the usual
        kind_of_item = kind_of_unit
    else:
        # (An item none of whose labels compares two models is a kind of its own, alone.)
        by_item = pd.Series(kind_of_unit).groupby(unit_item).agg(tuple)
        kind_of_item = pd.factorize(by_item.reindex(range(data.items)), use_na_sentinel=False)[0]
    kinds, first_item, copies = np.unique(kind_of_item, return_index=True, return_counts=True)
    of_first = np.isin(unit_item, first_item)  # the units of one item of each kind
    kind_n, kind_w = np.zeros((2, len(kinds), max(n_pairs, 1)))
    np.add.at(kind_n, (kind_of_item[unit_item[of_first]], unit_pair[of_first]), unit_n[of_first])
    np.add.at(kind_w, (kind_of_item[unit_item[of_first]], unit_pair[of_first]), unit_w[of_first])
    factor = scale / math.log(base)
    anchor_index = None if anchor_model is None else data.models.get_loc(anchor_model)

    def compute(resampled):
        if not n_pairs:
            return np.full((len(resampled), n_models), np.nan)
        # Sums of whole numbers and halves: exact, in whatever order they are added.
        n, w = resampled @ kind_n, resampled @ kind_w
        theta = _fit(n, w, pair_low, pair_high, n_models, prior)
        if anchor_index is None:
            scored = np.isfinite(theta)
            total = np.where(scored, theta, 0).sum(axis=1, keepdims=True)
            count = scored.sum(axis=1, keepdims=True)
            center = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        else:
            center = theta[:, [anchor_index]]
        return anchor + factor * (theta - center)

    def estimate():
        return compute(copies[np.newaxis].astype(np.float64))[0]

    width = len(kinds) + 2 * n_pairs + 4 * n_models**2
    return _Statistic(data.items, width, compute, estimate, copies)


def _fit(n, w, pair_low, pair_high, n_models, prior) -> np.ndarray:
    """Log-strengths maximising the (penalised) likelihood of each resample: (B, models).

    NaN for the models a resample does not compare, and for a whole resample whose plain
    maximum-likelihood estimate (prior 0) does not exist.
    """
    present = _sum_by(n, pair_low, n_models) + _sum_by(n, pair_high, n_models) > 0
    theta = np.zeros(present.shape)
    fitted = np.ones(len(n), dtype=bool)
    if prior == 0:
        fitted = _strongly_connected(n, w, pair_low, pair_high, present)
    active = np.flatnonzero(fitted)
    for _ in range(_MAX_ITERATIONS):
        if not len(active):
            break
        args = (n[active], w[active], pair_low, pair_high, present[active], prior)
        current = theta[active]
        objective, gradient, hessian = _log_posterior(current, *args, derivatives=True)
        step = np.linalg.solve(-hessian, gradient[..., np.newaxis])[..., 0]
        length = np.ones(len(active))
        for _ in range(_MAX_HALVINGS):
            trial = current + length[:, np.newaxis] * step
            better = _log_posterior(trial, *args) >= objective - 1e-12 * np.abs(objective)
            if better.all():
                break
            length = np.where(better, length, length / 2)
        theta[active] = trial
        moved = np.abs(length[:, np.newaxis] * step).max(axis=1, initial=0)
        active = active[moved > _TOLERANCE]
    else:
        fitted[active] = False
    theta[~present | ~fitted[:, np.newaxis]] = np.nan
    return theta


def _log_posterior(theta, n, w, pair_low, pair_high, present, prior, derivatives=False):
    """Log-likelihood plus the virtual ties' log-prior, and its gradient and Hessian in θ."""
    d = theta[:, pair_low] - theta[:, pair_high]
    # w log s(d) + (n - w) log s(-d), s the logistic function, and log s(-d) = log s(d) - d.
    objective = (n * _log_sigmoid(d) - (n - w) * d).sum(axis=1)
    if prior:
        objective += prior * ((_log_sigmoid(theta) - theta / 2) * present).sum(axis=1)
    if not derivatives:
        return objective
    batch, n_models = theta.shape
    p = _sigmoid(d)
    residual = w - n * p
    gradient = _sum_by(residual, pair_low, n_models) - _sum_by(residual, pair_high, n_models)
    curvature = n * p * (1 - p)
    hessian = np.zeros((batch, n_models, n_models))
    hessian[:, pair_low, pair_high] = curvature
    hessian[:, pair_high, pair_low] = curvature
    diagonal = -_sum_by(curvature, pair_low, n_models) - _sum_by(curvature, pair_high, n_models)
    if prior:
        q = _sigmoid(theta)
        gradient += prior * (0.5 - q) * present
        diagonal -= prior * q * (1 - q) * present
    # A model with no comparison keeps θ = 0: a unit diagonal makes its Newton step 0.
    diagonal -= ~present
    hessian[:, np.arange(n_models), np.arange(n_models)] = diagonal
    if not prior:
        # The likelihood ignores a common shift of θ; -1·1ᵀ over the compared models makes the
        # Hessian invertible and the step sum to zero (the gradient does already).
        hessian -= present[:, :, np.newaxis] & present[:, np.newaxis, :]
    return objective, gradient, hessian


def _strongly_connected(n, w, pair_low, pair_high, present) -> np.ndarray:
    """Per resample: can every compared model be reached from every other by "beat" steps?"""
    batch, n_models = present.shape
    beat = np.zeros((batch, n_models, n_models), dtype=bool)
    beat[:, pair_low, pair_high] = w > 0
    beat[:, pair_high, pair_low] = n - w > 0
    beat |= np.eye(n_models, dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(max(n_models, 2))))):
        beat = np.matmul(beat, beat)
    ignored = ~present[:, :, np.newaxis] | ~present[:, np.newaxis, :]
    return (beat | ignored).all(axis=(1, 2)) & present.any(axis=1)


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))


def _log_sigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


# Elo ----------------------------------------------------------------------------------------


def _elo_statistic(data, k, initial, scale, base) -> _Statistic:
    # The rows of each item, consecutive, each item's in the rows' order; int32 indices
    # (there are fewer than 2**31 rows) halve the memory of a chunk.
    index = np.int32 if len(data.first) < 2**31 - 1 else np.int64
    by_item = np.argsort(data.item, kind="stable").astype(index)
    per_item = np.bincount(data.item, minlength=data.items).astype(index)
    starts = (np.cumsum(per_item) - per_item).astype(index)
    one_row_per_item = bool((per_item == 1).all())

    def compute(draws):
        if one_row_per_item:
            steps = by_item[starts[draws.T]]
        else:
            lengths = per_item[draws]
            flat = lengths.ravel()
            within = np.arange(flat.sum()) - np.repeat(np.cumsum(flat) - flat, flat)
            rows = by_item[np.repeat(starts[draws].ravel(), flat) + within]
            totals = lengths.sum(axis=1)
            resample = np.repeat(np.arange(len(draws)), totals)
            column = np.arange(totals.sum()) - np.repeat(np.cumsum(totals) - totals, totals)
            # Padding points at a row past the end, which changes nothing.
            steps = np.full((totals.max(initial=0), len(draws)), len(data.first), dtype=index)
            steps[column, resample] = rows
        return _elo_ratings(data, steps, k, initial, scale, base)

    def estimate():
        return _elo_sequence(data, k, initial, scale, base)

    # The loop over rows costs about the same for any number of resamples: bigger chunks
    # than Bradley-Terry's (a few int32 arrays of rows x resamples) make fewer loops.
    width = (len(data.first) + data.items) // 4 + 1
    return _Statistic(data.items, width, compute, estimate)


def _elo_sequence(data, k, initial, scale, base) -> np.ndarray:
    """The ratings after every comparison once, in order: `_elo_ratings` of the one resample
    that takes each row, step for step the same arithmetic (numpy's tanh), on plain floats,
    since numpy's per-step overhead on arrays of one is what a single sequence costs."""
    gain, half_slope, tanh = float(k), math.log(base) / scale / 2, np.tanh
    ratings = [float(initial)] * len(data.models)
    rows = zip(data.first.tolist(), data.second.tolist(), data.outcome.tolist(), strict=True)
    for a, b, outcome in rows:
        r_a, r_b = ratings[a], ratings[b]
        change = gain * (outcome - 0.5) - gain / 2 * float(tanh((r_a - r_b) * half_slope))
        ratings[a] = r_a + change
        ratings[b] = r_b - change
    played = np.zeros(len(data.models), dtype=bool)
    played[data.first] = True
    played[data.second] = True
    return np.where(played, ratings, np.nan)


def _elo_ratings(data, steps, k, initial, scale, base) -> np.ndarray:
    """Elo ratings of B resamples after their comparisons: `steps` (L, B) holds the row that
    each resample takes at each step, a row past the end being no comparison (padding)."""
    batch, n_models = steps.shape[1], len(data.models)
    # Padding compares an extra model, n_models, with itself, for nothing.
    first = np.append(data.first, n_models).astype(steps.dtype)
    second = np.append(data.second, n_models).astype(steps.dtype)
    gain = np.append(np.full(len(data.first), float(k)), 0.0)
    surplus = gain * (np.append(data.outcome, 0.5) - 0.5)  # k (actual score - 1/2)
    ratings = np.full(batch * (n_models + 1), float(initial))
    offsets = np.arange(batch, dtype=steps.dtype) * (n_models + 1)
    half_slope = math.log(base) / scale / 2
    for row in steps:
        a, b = offsets + first[row], offsets + second[row]
        r_a, r_b = ratings[a], ratings[b]
        # k (actual - expected), the expected score being 1/2 + tanh(slope (r_a - r_b) / 2) / 2.
        change = surplus[row] - gain[row] / 2 * np.tanh((r_a - r_b) * half_slope)
        ratings[a] = r_a + change
        ratings[b] = r_b - change
    played = np.zeros(len(ratings), dtype=bool)
    played[offsets + first[steps]] = True
    played[offsets + second[steps]] = True
    ratings[~played] = np.nan
    return ratings.reshape(batch, n_models + 1)[:, :n_models]
