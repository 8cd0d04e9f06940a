"""A study's calibration report: every rubric question analysed, plus model rankings.

The Django side of calibration: it turns a study's labels and items into the tables that the
pure modules (`agreement`, `biases`, `rankings`, `metrics`) take, and assembles their
answers into one JSON-ready dict. Reports are cached until the study's labels change
(`calibration.report_cache`).
"""

import pandas as pd
from django.db import connection
from django.utils import timezone

from annotation.exports import cell_order, label_chunks
from annotation.final_labels import final_labels
from annotation.rubrics import render_value
from annotation.spreadsheet import escape_cell
from calibration import biases, plots, rankings, report_cache
from calibration.agreement import (
    HUMAN,
    LLM,
    TIE,
    DuplicateLabels,
    Options,
    first_slot,
    group_agreement,
    judge_verdicts,
    majorities,
    question_agreement,
)

LABEL_TABLE_COLUMNS = ["item", "rater", "kind", "question", "value", "order", "confidence"]
# The label table is built this many labels at a time, so that their decoded JSON is not all
# in memory at once (building a table of 2.6 million rows peaked at 1,200 MB, now 508 MB).
LABEL_TABLE_PART = 50_000
BREAKDOWN_MAX_VALUES = 30  # metadata fields with more distinct values are not categories
ANALYSED_TYPES = ("pairwise", "likert", "checklist", "binary", "categorical")
REFERENCES = ("majority", "final")  # what judges are scored against


def study_labels(study, items=None, rubric_version=None):
    """The study's current labels as a long table (the label CSV's columns but the
    rationale, in its row order); with `items` (item ids), those items' only; with
    `rubric_version`, that version's only."""
    rubric = (rubric_version or study.rubric_version).parsed
    parts, columns = [], _no_labels()
    for chunk in label_chunks(study, items, rubric_version):
        for column, values in zip(columns, chunk[:6], strict=True):  # not the rationales
            column.extend(values)
        if len(columns[0]) >= LABEL_TABLE_PART:
            parts.append(_label_table(*columns, rubric))
            columns = _no_labels()
    if columns[0] or not parts:
        parts.append(_label_table(*columns, rubric))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _no_labels():
    return [], [], [], [], [], []  # items, raters, kinds, orders, answers, confidences


def _label_table(items, raters, kinds, orders, answers, confidences, rubric):
    """The long table of some labels, built a column at a time from a table of their answers
    with a column per cell: a row per cell in Python was most of the time for a large study."""
    if not items:
        return pd.DataFrame(columns=LABEL_TABLE_COLUMNS)
    heads = pd.DataFrame({"item": items, "rater": raters, "kind": kinds, "order": orders})
    answers = pd.DataFrame(answers, dtype=object)
    values = answers[cell_order(answers.columns, rubric)].stack().dropna()  # in label order
    confidences = pd.DataFrame(confidences, dtype=float)
    table = heads.iloc[values.index.get_level_values(0)].reset_index(drop=True)
    table.insert(3, "question", values.index.get_level_values(1))
    table.insert(4, "value", values.map(render_value).to_numpy())
    table["confidence"] = confidences.stack().reindex(values.index).to_numpy()
    return table


def study_items(study):
    """Per item: response lengths and models of A and B, and the metadata fields."""
    with connection.cursor() as cursor:
        cursor.execute(_RESPONSES_A_AND_B[connection.vendor], [study.pk])
        responses = {(pk, key): (length, model) for pk, key, length, model in cursor.fetchall()}
    records = []
    for pk, ext, metadata in (
        study.items.order_by("position")
        .values_list("pk", "external_id", "metadata")
        .iterator(chunk_size=5000)
    ):
        len_a, model_a = responses.get((pk, "A"), (0, ""))
        len_b, model_b = responses.get((pk, "B"), (0, ""))
        records.append(
            {
                "item": ext,
                "len_a": len_a or 0,
                "len_b": len_b or 0,
                "model_a": model_a or "",
                "model_b": model_b or "",
                **{f"metadata.{k}": v for k, v in metadata.items() if isinstance(v, str | int)},
            }
        )
    columns = ["item", "len_a", "len_b", "model_a", "model_b"]
    return pd.DataFrame.from_records(records, columns=None if records else columns).set_index(
        "item"
    )


# Responses A and B of a study's items: (item id, key, length of the text, model). Measured
# in the database, so that the texts, most of an item's bytes, never leave it.
_RESPONSES_A_AND_B = {
    "postgresql": """
        SELECT item.id, response.key, char_length(response.text), response.model
        FROM annotation_item item,
            jsonb_to_recordset(item.responses) AS response(key text, text text, model text)
        WHERE item.study_id = %s AND response.key IN ('A', 'B')
    """,
    "sqlite": """
        SELECT item.id, json_extract(response.value, '$.key'),
            length(json_extract(response.value, '$.text')),
            json_extract(response.value, '$.model')
        FROM annotation_item item, json_each(item.responses) AS response
        WHERE item.study_id = %s AND json_extract(response.value, '$.key') IN ('A', 'B')
    """,
}


def study_final_labels(study):
    """The study's final labels as a table: item, question, value (None when unresolved)."""
    rows = ((r.item, r.question, r.value or None) for r in final_labels(study))
    return pd.DataFrame.from_records(rows, columns=["item", "question", "value"])


def build_report(
    study, *, bootstrap=1000, seed=0, families=None, reference="majority", rubric_version=None
):
    """Compute the report and its plots, and cache both under the labels' fingerprint.

    Judges' model families (for self-preference) come from their raters; `families` maps
    rater names to families in addition or instead. Judges are scored against the human
    majority, or with `reference="final"` against the final labels (adjudicated truth).
    With `rubric_version`, only the labels written against that version are analysed, with
    its questions (the report split by version; "rubric_version" in the report says which).
    """
    keys = report_cache.keys(study, bootstrap, seed, reference, rubric_version)
    families = {**report_cache.rater_families(study), **(families or {})}
    report = report_for(
        study_labels(study, rubric_version=rubric_version),
        study_items(study),
        (rubric_version or study.rubric_version).parsed,
        slug=study.slug,
        options=Options(bootstrap=bootstrap, seed=seed),
        families=families,
        reference=study_final_labels(study) if reference == "final" else None,
    )
    if rubric_version is not None:
        report["rubric_version"] = rubric_version.number
    entry = {"report": report, "plots": plots_for(report), "built_at": timezone.now()}
    report_cache.store(keys, entry)
    return entry


def plots_for(report):
    """SVG plots per question (calibration, biases, confusion per judge) and for rankings."""
    out = {"questions": {}, "rankings": None}
    reference = "final label" if report.get("reference") == "final" else "human majority"
    for q in report["questions"]:
        out["questions"][q["question"]] = {
            "calibration": plots.calibration_plot(q) if q["judges"] else None,
            "bias": plots.bias_plot(q) if q["type"] == "pairwise" else None,
            "confusion": {j["rater"]: plots.confusion_plot(j, reference) for j in q["judges"]},
        }
    if report["rankings"] and report["rankings"]["humans"]:
        out["rankings"] = plots.ranking_plot(report["rankings"])
    return out


def report_for(labels, items, rubric, *, slug, options=None, families=None, reference=None):
    """The report of a study from its label table, item table and rubric (no database).

    `reference` (item, question, value; value None where there is none) replaces the human
    majority as what judges are scored against; the report's "reference" says which."""
    options = options or Options()
    names, labels, items, reference = _numbered_items(labels, items, reference)
    questions = []
    try:
        for q, cell in analysed_cells(rubric, labels["question"].unique()):
            rows = labels[labels["question"] == cell]
            if rows.empty:
                continue
            truth = None
            if reference is not None:
                truth = reference[reference["question"] == cell].set_index("item")["value"]
            report = _question_report(cell, q, rows, items, options, families or {}, truth)
            questions.append(report)
        rankings = _rankings(labels, items, rubric, options)
    except DuplicateLabels as e:
        raise DuplicateLabels(e.who, names[e.item]) from None
    return {
        "study": slug,
        "reference": "majority" if reference is None else "final",
        "questions": questions,
        "rankings": rankings,
    }


def _numbered_items(labels, items, reference):
    """The items' names in sorted order, and the tables with each item's number in that
    order instead of its name: the analysis groups and looks up labels by item many times,
    and numbers are several times cheaper to group than strings (the same groups, in the
    same order)."""
    names = pd.Index(labels["item"].unique()).union(items.index)
    if reference is not None:
        names = names.union(reference["item"].unique())
        reference = reference.assign(item=names.get_indexer(reference["item"]))
    labels = labels.assign(item=names.get_indexer(labels["item"]))
    items = items.set_axis(pd.Index(names.get_indexer(items.index), name=items.index.name))
    return names, labels, items, reference


def analysed_cells(rubric, cells):
    """(question, cell) of each label cell that the report analyses, in rubric order: every
    question but free text, each checklist row (`key[i]`, by i) on its own, no strength rows.
    `cells` are those the labels have (a checklist's rows are known from them)."""
    out = []
    for q in rubric.questions:
        if q.type not in ANALYSED_TYPES:
            continue
        if q.type == "checklist":
            rows = sorted(
                (c for c in cells if c.startswith(f"{q.key}[")),
                key=lambda c: int(c[len(q.key) + 1 : -1]),
            )
            out.extend((q, row) for row in rows)
        else:
            out.append((q, q.key))
    return out


def _question_report(cell, question, rows, items, options, families, reference=None):
    level = "ordinal" if question.type == "likert" else "nominal"
    options = Options(level=level, bootstrap=options.bootstrap, seed=options.seed)
    result = question_agreement(rows, cell, options, reference)
    result["type"] = question.type
    humans = rows[rows["kind"] == HUMAN]
    if question.type == "pairwise":
        result["humans"]["verbosity"] = biases.verbosity_bias(humans, items)
        result["humans"]["position"] = first_slot(humans)
    for judge in result["judges"]:
        judge_rows = rows[(rows["kind"] == LLM) & (rows["rater"] == judge["rater"])]
        if question.type == "pairwise":
            verdicts = judge_verdicts(judge_rows)
            judge["verbosity"] = biases.verbosity_bias(verdicts, items)
            family = families.get(judge["rater"])
            judge["self_preference"] = (
                biases.self_preference(verdicts, humans, items, family) if family else None
            )
        elif question.type in ("binary", "checklist", "likert"):
            judge["leniency"] = biases.leniency(
                judge_rows, humans, scale=question.scale if question.type == "likert" else None
            )
        if judge_rows["confidence"].notna().any():
            majority = majorities(humans) if reference is None else reference
            majority = majority.dropna()
            judge["confidence"] = biases.confidence_agreement(judge_rows, majority)
        else:
            judge["confidence"] = None
    result["breakdown"] = _breakdown(rows, items, options)
    return result


def _breakdown(rows, items, options):
    """Agreement per value of each categorical metadata field."""
    fields = {}
    for column in (c for c in items.columns if c.startswith("metadata.")):
        values = items[column].dropna()
        if not 1 < values.nunique() <= BREAKDOWN_MAX_VALUES:
            continue
        groups = values.groupby(values).groups.items()
        fields[column.removeprefix("metadata.")] = [(str(v), group) for v, group in groups]
    unscored = Options(level=options.level, bootstrap=0)
    return {
        field: [{"value": value, **figures} for value, figures in groups]
        for field, groups in group_agreement(rows, fields, unscored).items()
    }


def _rankings(labels, items, rubric, options):
    """Model rankings from the first pairwise question, by humans and by each judge."""
    pairwise = [q.key for q in rubric.questions if q.type == "pairwise"]
    if not pairwise:
        return None
    rows = labels[(labels["question"] == pairwise[0]) & labels["value"].isin(["A", "B", TIE])]
    rows = rows.join(items[["model_a", "model_b"]], on="item")
    rows = rows[(rows["model_a"] != "") & (rows["model_b"] != "")]
    if rows.empty:
        return None
    resamples = options.bootstrap or 0
    humans = rows[rows["kind"] == HUMAN]
    result = {
        "question": pairwise[0],
        "humans": _ranking(humans, resamples, options.seed),
        "judges": {},
        "correlation": {},
    }
    for name, judge_rows in rows[rows["kind"] == LLM].groupby("rater"):
        verdicts = judge_verdicts(judge_rows).rename("value").reset_index()
        verdicts = verdicts.join(items[["model_a", "model_b"]], on="item")
        result["judges"][name] = _ranking(verdicts, resamples, options.seed)
        result["correlation"][name] = rankings.rank_correlation(
            _scores(result["humans"]), _scores(result["judges"][name])
        )
    return result


def _ranking(rows, resamples, seed):
    """Bradley-Terry scores with intervals, and the online Elo score beside them."""
    if rows.empty:
        return []
    table = rankings.ranking_with_ci(rows, resamples=resamples, seed=seed)
    elo = rankings.elo(rows)
    return [
        {
            "model": str(r.model),
            "score": _or_none(r.score, float),
            "ci_low": _or_none(r.ci_low, float),
            "ci_high": _or_none(r.ci_high, float),
            "rank": _or_none(r.rank, int),
            "elo": _or_none(elo.get(r.model), float),
        }
        for r in table.itertuples()
    ]


def _or_none(value, kind):
    return None if pd.isna(value) else kind(value)


def _scores(ranking):
    return pd.Series({r["model"]: r["score"] for r in ranking}, dtype=float)


REPORT_TABLE_COLUMNS = ["question", "group", "rater", "metric", "value", "ci_low", "ci_high"]
REPORT_TEXT_COLUMNS = ["question", "group", "rater", "metric"]


def report_table(report):
    """The report as one long table (CSV and Parquet downloads): one row per number."""
    rows = []
    for q in report["questions"]:
        key = q["question"]
        rows += _metric_rows(key, "humans", "", q["humans"])
        for pair in q["humans"]["pairwise"]:
            rows += _metric_rows(key, "human pair", f"{pair['a']} | {pair['b']}", pair)
        for judge in q["judges"]:
            rows += _metric_rows(key, "judge", judge["rater"], judge)
        for field, groups in q["breakdown"].items():
            for g in groups:
                group = f"{field}={g['value']}"
                rows.append((key, group, "", "n_items", g["n_items"], None, None))
                rows.append(
                    (key, group, "", "krippendorff_alpha", g["krippendorff_alpha"], None, None)
                )
                for name, accuracy in g["judges"].items():
                    rows.append((key, group, name, "accuracy_vs_majority", accuracy, None, None))
    ranked = report["rankings"]
    if ranked:
        for name, ranking in [("humans", ranked["humans"]), *ranked["judges"].items()]:
            for r in ranking:
                rows.append(
                    (
                        ranked["question"],
                        f"ranking by {name}",
                        r["model"],
                        "score",
                        r["score"],
                        r["ci_low"],
                        r["ci_high"],
                    )
                )
    return pd.DataFrame.from_records(rows, columns=REPORT_TABLE_COLUMNS)


def report_csv(report):
    """The report table as CSV text (the command's and the page's download). Its text cells
    hold judge names, question keys and metadata values, so they are escaped against
    spreadsheet formulas; the numbers stay numbers."""
    table = report_table(report)
    for column in REPORT_TEXT_COLUMNS:
        table[column] = table[column].map(escape_cell)
    return table.to_csv(index=False)


def _metric_rows(question, group, rater, values, prefix=""):
    ci = values.get("ci95") or {}
    for key, value in values.items():
        if isinstance(value, dict) and key not in ("ci95", "confusion"):
            yield from _metric_rows(question, group, rater, value, f"{prefix}{key}.")
        elif (isinstance(value, int | float) and not isinstance(value, bool)) or value is None:
            low, high = ci.get(key) or (None, None)
            yield (question, group, rater, prefix + key, value, low, high)
