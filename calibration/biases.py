"""Judge biases: verbosity, self-preference, leniency, and confidence against agreement.

Pure numpy/pandas, no Django, like `calibration.metrics`: reports feed it database rows, a
notebook can feed it a labels CSV. The biases are those of the LLM-as-a-judge literature
(Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena", section 3.3:
position, verbosity and self-enhancement bias); position bias is `agreement.position_bias`.

Conventions shared by every function:

- Labels come as a long table, a DataFrame with columns ``item`` and ``value`` (others are
  ignored) and one row per label, or as a Series of one value per item indexed by item, such
  as `agreement.judge_verdicts` returns.
- Values are in the rubric's own terms (`annotation.rubrics`): pairwise ``A``/``B``/``tie``
  (always naming the original A and B, whatever order was shown), binary and checklist
  ``yes``/``no``/``na``, Likert ``1``..``N``. ``unable`` and missing values are no judgement
  and are left out, as is ``na``; any other value is a ValueError, since it means the wrong
  question's labels were passed.
- Ties count half a win wherever a win rate includes them (as AlpacaEval scores a tie),
  except in `verbosity_bias`'s ``longer_win_rate``, which is defined over decided verdicts.
- Results are dicts ready for JSON: a rate whose definition divides by zero is None.
"""

import numpy as np
import pandas as pd

TIE = "tie"
PAIRWISE = ("A", "B", TIE)
YES, NO = "yes", "no"
NO_JUDGEMENT = ("unable", "na", "")

# The ridge penalty (λ/2)(θ² + β²) of the length model: small enough to move a fit on real
# data by far less than its standard error, large enough to keep the estimates finite when a
# rater's choices are perfectly separated (always A, always the longer response).
RIDGE = 1e-2


def verbosity_bias(labels, lengths: pd.DataFrame, ridge: float = RIDGE) -> dict:
    """How much one rater group's pairwise verdicts follow response length.

    ``labels`` are one group's pairwise labels (all the human labels of a question, or one
    judge's `judge_verdicts`); ``lengths`` is indexed by item with columns ``len_a`` and
    ``len_b``, the responses' lengths in characters. Labels of items without both lengths are
    left out. Returns:

    - ``n``: the verdicts (A, B or tie) that enter the length model;
    - ``longer_win_rate``: the share of the decided (non-tie) verdicts on items whose
      responses differ in length that pick the longer response; 0.5 is no verbosity bias;
    - ``lc_win_rate`` and ``length_coef``: the length-controlled win rate of response A and
      the length effect, from the logistic model

          P(A preferred) = 1 / (1 + exp(-(θ + β z))),  z = (len_a - len_b) / sd,

      sd being the sample standard deviation of len_a - len_b over all the items of
      ``lengths`` (so that rater groups given the same ``lengths`` share the unit of β), and the
      preference y = 1 for A, 0 for B, 0.5 for a tie, fitted by maximum (fractional-response)
      likelihood. ``lc_win_rate`` = 1 / (1 + exp(-θ)), A's predicted win rate were both
      responses the same length; ``length_coef`` = β, the change in the log-odds of
      preferring A per standard deviation of length difference.

    This is AlpacaEval 2's length-controlled win rate (Dubois et al. 2024, "Length-Controlled
    AlpacaEval: A Simple Way to Debias Automatic Evaluators"; its ``length_controlled_minimal``
    GLM) without the tanh it squashes z with: as there, z is scaled but not centred, so that
    z = 0 is equal length, and a tie is a preference of 0.5. A ridge penalty
    (λ/2)(θ² + β²), λ = ``ridge``, keeps separated data finite (le Cessie & van Houwelingen
    1992, "Ridge estimators in logistic regression"); ``ridge=0`` is plain maximum
    likelihood, for data known not to be separated.

    β's unit is one standard deviation, which a few very long responses can inflate: compare
    β between rater groups given the same ``lengths``, and read it with ``longer_win_rate``.
    When no labelled item has a length difference, the model is θ alone: ``lc_win_rate`` is
    the mean preference (up to the ridge) and ``length_coef`` None. When every labelled item
    has the same non-zero difference, length and A are confounded and both are None.
    Responses A and B are whatever the items name so; with A/B order randomised per rater, A
    is not the first-shown slot, and ``lc_win_rate`` is about the responses, not position.
    """
    if ridge < 0:
        raise ValueError("the ridge penalty cannot be negative")
    rows = _labels(labels)
    rows = rows[_known(rows["value"])]
    _refuse_unknown(rows["value"], PAIRWISE, "pairwise")
    diffs = (lengths["len_a"].astype(float) - lengths["len_b"].astype(float)).dropna()
    at = _positions(diffs.index, rows["item"])
    rows, at = rows[at >= 0], at[at >= 0]
    out = {"n": len(rows), "longer_win_rate": None, "lc_win_rate": None, "length_coef": None}
    if rows.empty:
        return out
    _require_unique(diffs.index)

    picks_a = (rows["value"] == "A").to_numpy(dtype=bool)
    picks_b = (rows["value"] == "B").to_numpy(dtype=bool)  # neither: a tie
    diff = diffs.to_numpy(dtype=float)[at]
    counted = (picks_a | picks_b) & (diff != 0)
    if counted.any():
        picks_longer = np.where(diff > 0, picks_a, picks_b)
        out["longer_win_rate"] = float(np.mean(picks_longer[counted]))

    y = np.select([picks_a, picks_b], [1.0, 0.0], default=0.5)
    # diff holds every labelled item's difference (and no NaN): it has as many distinct
    # values as the labelled items do.
    if diff.min() != diff.max():
        z = diff / diffs.std()
        theta, beta = _fit_logistic(np.column_stack([np.ones(len(y)), z]), y, ridge)
        out["lc_win_rate"], out["length_coef"] = _sigmoid(theta), float(beta)
    elif (diff == 0).all():
        (theta,) = _fit_logistic(np.ones((len(y), 1)), y, ridge)
        out["lc_win_rate"] = _sigmoid(theta)
    return out


def self_preference(verdicts, humans, models: pd.DataFrame, family: str) -> dict:
    """Whether a judge favours responses of its own model family more than the humans do.

    ``verdicts`` are the judge's pairwise verdicts (`judge_verdicts`, one per item),
    ``humans`` the human labels of the same question, ``models`` is indexed by item with
    columns ``model_a`` and ``model_b``, and ``family`` names the judge's model family. A
    model belongs to the family when its name contains ``family``, ignoring case ("claude" is
    the family of "anthropic/claude-3-5-sonnet"; "gpt-4" of "gpt-4o-mini"), so pick a name
    that no other family's models contain.

    Over the items where exactly one response is of the judge's family and both the judge and
    at least one human gave a verdict, an item scores 1 when the own-family response wins,
    0.5 on a tie and 0 when it loses. ``judge_win_rate`` is the mean of the judge's scores,
    ``human_win_rate`` the mean over the same items of each item's mean human score (every
    item counts once, as it does for the judge), and ``difference`` = judge - human: positive
    is self-preference beyond what the humans see (Zheng et al. 2023, "self-enhancement
    bias"; Panickssery et al. 2024, "LLM Evaluators Recognize and Favor Their Own
    Generations"). Items where both responses are of the family say nothing about it and are
    left out.
    """
    if not family or not family.strip():
        raise ValueError("the judge's model family must be a non-empty name")
    judge = _labels(verdicts)
    judge = judge[_known(judge["value"])]
    human = _labels(humans)
    human = human[_known(human["value"])]
    _refuse_unknown(judge["value"], PAIRWISE, "pairwise")
    _refuse_unknown(human["value"], PAIRWISE, "pairwise")
    if judge["item"].duplicated().any():
        raise ValueError("self_preference needs one judge verdict per item (judge_verdicts)")

    own_a = _in_family_each(models["model_a"], family)
    own_b = _in_family_each(models["model_b"], family)
    differ = own_a != own_b
    own_items = models.index[differ]
    own = np.where(own_a[differ], "A", "B").astype(object)  # the own-family response
    # The items are those of own_items that both the judge and a human gave a verdict on.
    judge_at = _positions(own_items, judge["item"])
    human_at = _positions(own_items, human["item"])
    both = _hit(judge_at, len(own_items)) & _hit(human_at, len(own_items))
    out = {
        "family": family,
        "n_items": int(both.sum()),
        "judge_win_rate": None,
        "human_win_rate": None,
        "difference": None,
    }
    if not both.any():
        return out
    _require_unique(own_items)
    in_both = np.append(both, False)  # position -1, not an item of own_items, is not in both
    judge, judge_at = judge[in_both[judge_at]], judge_at[in_both[judge_at]]
    human, human_at = human[in_both[human_at]], human_at[in_both[human_at]]
    judge_scores = _win_score(judge["value"], own[judge_at])
    human_scores = _win_score(human["value"], own[human_at])
    out["judge_win_rate"] = float(judge_scores.mean())
    # The mean of the items' mean human scores, the items taken in the order of their labels
    # (as grouping by item sorts them), so that the sum rounds as it always has; a missing
    # label (rank -1) is no group, as in a groupby.
    rank = np.full(len(own_items), -1)
    rank[both] = pd.factorize(own_items[both], sort=True)[0]
    human_rank = rank[human_at]
    grouped = human_scores[human_rank >= 0].groupby(human_rank[human_rank >= 0])
    out["human_win_rate"] = float(grouped.mean().mean())
    out["difference"] = out["judge_win_rate"] - out["human_win_rate"]
    return out


def leniency(judge, humans, scale: int | None = None) -> dict:
    """How much more favourably the judge grades than the humans do.

    For a yes/no question (binary, checklist) leave ``scale`` None: a label scores 1 for
    ``yes`` and 0 for ``no`` (``na`` and ``unable`` are left out). For a Likert question pass
    its scale N: a label v in 1..N scores (v - 1) / (N - 1), its place on a 0-1 scale, so the
    rate is the mean normalised score (which keeps the distance between a 2 and a 5, where
    a share above the midpoint would not).

    Over the items both the judge and the humans labelled, each item scores the mean of its
    labels on each side (a judge usually has one); ``judge_rate`` and ``human_rate`` are the
    means of those item scores, every item counting once, and ``leniency`` = judge - human
    (positive: the judge is the more lenient). When both tables have a ``question`` column
    the unit is the (item, question) pair, so that a whole checklist (questions ``key[i]``)
    can be passed at once.
    """
    judge, humans = _labels(judge), _labels(humans)
    if ("question" in judge.columns) != ("question" in humans.columns):
        raise ValueError(
            "only one of the tables has a question column; pass both with or without it"
        )
    keys = ["item", "question"] if "question" in judge.columns else ["item"]
    judge_scores = _item_scores(judge, keys, scale)
    human_scores = _item_scores(humans, keys, scale)
    both = judge_scores.index.intersection(human_scores.index)
    out = {"n_items": len(both), "judge_rate": None, "human_rate": None, "leniency": None}
    if not len(both):
        return out
    out["judge_rate"] = float(judge_scores.loc[both].mean())
    out["human_rate"] = float(human_scores.loc[both].mean())
    out["leniency"] = out["judge_rate"] - out["human_rate"]
    return out


def confidence_agreement(verdicts: pd.DataFrame, majority, bins: int = 10) -> dict:
    """How a judge's agreement with the human majority varies with its stated confidence.

    ``verdicts`` has columns ``item``, ``value`` and ``confidence`` (a number on any scale);
    ``majority`` holds the human majority value per item (a Series indexed by item, None
    where there is none, as `agreement` computes it). Each verdict row with a confidence and
    an item with a majority counts once, so a judge run in both orders contributes both
    verdicts, each with its own confidence. A verdict is correct when it equals the majority.

    The verdicts are split at the ``bins``-quantiles of their confidence (deciles by
    default), equal edges merged, as ``pandas.qcut(..., duplicates="drop")`` does; each bin
    is (low, high], the first also holding ``low``. Returns ``n``, ``bins`` (a list of
    ``{"low", "high", "n", "accuracy"}``, empty bins left out) and ``correlation``, the
    Pearson correlation of confidence with correctness (the point-biserial correlation;
    None when either is constant). A well-calibrated judge's accuracy rises with
    confidence (Guo et al. 2017, "On calibration of modern neural networks", reliability
    diagrams).
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    for column in ("item", "value", "confidence"):
        if column not in verdicts.columns:
            raise ValueError(f"the verdicts need a column {column!r}")
    confidence = _numbers(verdicts["confidence"], "confidence")
    if not isinstance(majority, pd.Series):
        majority = _labels(majority).set_index("item")["value"]
    if majority.index.has_duplicates:
        raise ValueError("majority must hold one value per item")
    majority = majority.dropna()
    at = _positions(majority.index, verdicts["item"])  # -1: the item has no majority
    use = (confidence.notna() & _known(verdicts["value"])).to_numpy(dtype=bool) & (at >= 0)
    confidence = confidence.to_numpy(dtype=float)[use]
    target = majority.to_numpy(dtype=object)[at[use]]
    correct = (verdicts["value"].to_numpy(dtype=object)[use] == target).astype(float)
    out = {"n": len(correct), "bins": [], "correlation": None}
    if not len(correct):
        return out

    edges = np.unique(np.quantile(confidence, np.linspace(0, 1, bins + 1)))
    codes = np.searchsorted(edges[1:-1], confidence, side="left")
    for k in range(max(len(edges) - 1, 1)):
        inside = codes == k
        if inside.any():
            out["bins"].append(
                {
                    "low": float(edges[k]),
                    "high": float(edges[min(k + 1, len(edges) - 1)]),
                    "n": int(inside.sum()),
                    "accuracy": float(correct[inside].mean()),
                }
            )
    if confidence.std() > 0 and correct.std() > 0:
        out["correlation"] = float(np.corrcoef(confidence, correct)[0, 1])
    return out


# Building blocks ----------------------------------------------------------------------------


def _labels(labels) -> pd.DataFrame:
    """The long table (item, value, ...) of a long table or of a Series indexed by item."""
    if isinstance(labels, pd.Series):
        return pd.DataFrame({"item": labels.index.to_numpy(), "value": labels.to_numpy()})
    for column in ("item", "value"):
        if column not in labels.columns:
            raise ValueError(f"the labels need a column {column!r}")
    return labels


def _known(values: pd.Series) -> pd.Series:
    """Whether each value is a judgement: not missing, not unable/na/empty."""
    return values.notna() & ~values.isin(NO_JUDGEMENT)


def _refuse_unknown(values: pd.Series, allowed, what: str, hint: str = "") -> None:
    unknown = values[~values.isin(allowed)]
    if len(unknown):
        raise ValueError(
            f"{unknown.iloc[0]!r} is not a {what} value; expected one of {', '.join(allowed)}{hint}"
        )


def _in_family(model, family: str) -> bool:
    return isinstance(model, str) and family.strip().lower() in model.lower()


def _in_family_each(models: pd.Series, family: str) -> np.ndarray:
    """`_in_family` of each model name, asked once per distinct name."""
    codes, names = pd.factorize(models)
    # Code -1 (a missing name) takes the appended False.
    return np.array([_in_family(m, family) for m in names] + [False], dtype=bool)[codes]


def _hit(at: np.ndarray, n: int) -> np.ndarray:
    """Which of the positions 0..n-1 occur in ``at`` (whose -1s stand for none)."""
    hit = np.zeros(n + 1, dtype=bool)
    hit[at] = True  # a -1 lands on the extra last place
    return hit[:-1]


def _positions(index: pd.Index, keys: pd.Series) -> np.ndarray:
    """Each key's position in ``index``, -1 for a key not in it.

    Keys match labels as in ``keys.isin(index)`` (a missing key matches a missing label),
    found by one `pandas.factorize` of the labels and keys together: on string columns
    ``keys.isin(index)`` builds a Python object per label, and ``keys.map(series)`` (or
    `Index.get_indexer`) copies both sides to Python strings first. A key of a label that
    ``index`` holds more than once gets one of its positions: see `_require_unique`.
    """
    codes, uniques = pd.factorize(
        pd.concat([pd.Series(index), pd.Series(keys)], ignore_index=True),
        use_na_sentinel=False,
    )
    position = np.full(len(uniques), -1, dtype=np.intp)
    position[codes[: len(index)]] = np.arange(len(index))
    return position[codes[len(index) :]]


def _require_unique(index: pd.Index) -> None:
    """The error of ``keys.map(series)`` for a ``series`` whose index is not unique."""
    if not index.is_unique:
        raise pd.errors.InvalidIndexError(
            "Reindexing only valid with uniquely valued Index objects"
        )


def _win_score(values: pd.Series, own: np.ndarray) -> pd.Series:
    """1 where the verdict picks the own-family response (``own``: its slot, A or B, per
    verdict), 0.5 for a tie, 0 otherwise."""
    score = (values.to_numpy() == own).astype(float)
    score[values.to_numpy() == TIE] = 0.5
    return pd.Series(score, index=values.index)


def _item_scores(labels: pd.DataFrame, keys: list, scale: int | None) -> pd.Series:
    """Each unit's mean label score on the 0-1 scale (yes = 1, no = 0, or (v - 1)/(N - 1))."""
    labels = labels[_known(labels["value"])]
    if scale is None:
        _refuse_unknown(labels["value"], (YES, NO), "yes/no", " (pass scale for a Likert question)")
        score = (labels["value"] == YES).astype(float)
    else:
        if scale < 2:
            raise ValueError("a Likert scale has at least 2 points")
        points = _numbers(labels["value"], f"Likert 1..{scale}")
        outside = ~points.isin(range(1, scale + 1))
        if outside.any():
            bad = labels["value"][outside].iloc[0]
            raise ValueError(f"{bad!r} is not on the Likert scale 1..{scale}")
        score = (points - 1) / (scale - 1)
    return score.groupby([labels[k] for k in keys]).mean()


def _numbers(values: pd.Series, what: str) -> pd.Series:
    """Values as floats, missing and empty ones NaN; anything else non-numeric is an error."""
    numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce")
    bad = numbers.isna() & values.notna() & (values != "")
    if bad.any():
        raise ValueError(f"{values[bad].iloc[0]!r} is not a number ({what})")
    return numbers.astype(float)


def _fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge-penalised logistic regression of y in [0, 1] on the columns of x, by Newton.

    Maximises Σ [y log p + (1 - y) log(1 - p)] - (ridge/2)|w|² with p = logistic(x w). The
    objective is strictly concave for ridge > 0, so Newton's method with step halving
    converges from w = 0 whatever the data, separated included (the iteratively reweighted
    least squares of McCullagh & Nelder 1989, Generalized Linear Models, ch. 2, plus the
    penalty's λI in the Hessian). With ridge = 0 it is plain maximum likelihood, which has
    no finite answer on separated data.
    """
    w = np.zeros(x.shape[1])
    penalty = ridge * np.eye(x.shape[1])
    current, minus_log_p = _penalised_loglik(x @ w, y, w, ridge)
    for _ in range(200):
        p = np.exp(-minus_log_p)  # _sigmoid_array(x @ w), its logaddexp reused
        gradient = x.T @ (y - p) - ridge * w
        hessian = (x * (p * (1 - p))[:, np.newaxis]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while True:  # halve the step until it ascends (or is negligible)
            trial = w + size * step
            value, trial_minus_log_p = _penalised_loglik(x @ trial, y, trial, ridge)
            if not (value < current and size > 1e-10):
                break
            size /= 2
        if value < current:
            break  # no ascent left along the Newton direction: the optimum, to rounding
        w, current, minus_log_p = trial, value, trial_minus_log_p
        if np.max(np.abs(size * step)) < 1e-12:
            break
    return w


def _penalised_loglik(
    eta: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float
) -> tuple[float, np.ndarray]:
    """The objective of `_fit_logistic` at coefficients ``w`` (``eta`` = x @ w), and -log p,
    from which the fit takes p without a second `numpy.logaddexp`."""
    # log p = -log(1 + e^-η) and log(1 - p) = -log(1 + e^η), computed without overflow.
    minus_log_p = np.logaddexp(0, -eta)
    loglik = -(y * minus_log_p + (1 - y) * np.logaddexp(0, eta)).sum()
    return float(loglik - ridge / 2 * (w @ w)), minus_log_p


def _sigmoid_array(eta: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -eta))


def _sigmoid(eta: float) -> float:
    return float(_sigmoid_array(np.float64(eta)))
