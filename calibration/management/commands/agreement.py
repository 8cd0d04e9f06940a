import json

import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from annotation.spreadsheet import unescape_cell
from calibration.agreement import LabelsError, Options, question_agreement
from calibration.metrics import LEVELS


class Command(BaseCommand):
    help = (
        "Agreement of a label CSV (item,rater,kind,question,value,order,...): human-human "
        "and each LLM judge against the humans, with bootstrap confidence intervals."
    )

    def add_arguments(self, parser):
        parser.add_argument("labels", help="the long label CSV; only item, rater, value needed")
        parser.add_argument("--question", help="question key (needed when the file has several)")
        parser.add_argument(
            "--level",
            choices=LEVELS,
            default="nominal",
            help="Krippendorff alpha's level of measurement",
        )
        parser.add_argument(
            "--weights",
            choices=("none", "linear", "quadratic"),
            default="none",
            help="Cohen's kappa weights, for numeric scales",
        )
        parser.add_argument(
            "--bootstrap",
            type=int,
            default=1000,
            help="bootstrap resamples for the 95%% intervals (0: none)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--format", choices=("json", "text"), default="json")

    def handle(self, *args, labels, question, level, weights, bootstrap, seed, format, **opts):
        table = _read(labels)
        question, table = _one_question(table, question, labels)
        options = Options(
            level=level,
            weights=None if weights == "none" else weights,
            bootstrap=bootstrap,
            seed=seed,
        )
        try:
            result = question_agreement(table, question, options)
        except LabelsError as e:
            raise CommandError(f"{labels}: {e}", returncode=2) from None
        if format == "json":
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        else:
            self.stdout.write(_as_text(result))


def _read(path):
    """The label file as a table of strings, each cell without the `'` that exports put
    before would-be spreadsheet formulas."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file", returncode=2) from None
    except pd.errors.EmptyDataError:
        raise CommandError(f"{path}: the file is empty", returncode=2) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise CommandError(f"{path}: not a readable CSV: {e}", returncode=2) from None
    table = table.rename(columns=unescape_cell).map(unescape_cell)
    missing = [c for c in ("item", "rater", "value") if c not in table.columns]
    if missing:
        raise CommandError(
            f"{path}: a required column is missing: {missing[0]!r} "
            f"(the header has {', '.join(table.columns)})",
            returncode=2,
        )
    if table.empty:
        raise CommandError(f"{path}: holds no labels", returncode=2)
    return table


def _one_question(table, question, path):
    if "question" not in table.columns:
        return question, table
    keys = sorted(table["question"].unique())
    if question is None:
        if len(keys) > 1:
            raise CommandError(
                f"{path}: holds several questions ({', '.join(keys)}); choose one with --question",
                returncode=2,
            )
        question = keys[0]
    elif question not in keys:
        raise CommandError(
            f"{path}: no labels for question {question!r} (it has {', '.join(keys)})", returncode=2
        )
    return question, table[table["question"] == question]


def _as_text(result):
    def num(x):
        return "n/a" if x is None else f"{x:.3f}"

    def ci(pair):
        return "" if pair is None else f" [{num(pair[0])}, {num(pair[1])}]"

    h = result["humans"]
    h_ci = h["ci95"]
    lines = [
        f"Question {result['question']!r} ({result['level']})",
        f"Humans: {h['n_raters']} raters, {h['n_items']} items, {h['n_labels']} labels",
        f"  percent agreement   {num(h['percent_agreement'])}",
        f"  Krippendorff alpha  {num(h['krippendorff_alpha'])}{ci(h_ci['krippendorff_alpha'])}",
        f"  Fleiss kappa        {num(h['fleiss_kappa'])}{ci(h_ci['fleiss_kappa'])}",
        f"  Gwet AC1            {num(h['gwet_ac1'])}",
    ]
    if h["cohen_kappa"] is not None:
        lines.append(f"  Cohen kappa         {num(h['cohen_kappa'])}")
    for p in h["pairwise"]:
        lines.append(
            f"  {p['a']} vs {p['b']}: n={p['n']} agreement {num(p['percent_agreement'])}"
            f" kappa {num(p['cohen_kappa'])}"
        )
    for j in result["judges"]:
        lines += [
            f"Judge {j['rater']}: {j['n_items']} items, {j['n_no_majority']} without a majority",
            f"  accuracy vs majority  {num(j['accuracy_vs_majority'])}"
            f" (without ties {num(j['accuracy_vs_majority_without_ties'])})",
            f"  kappa vs majority     {num(j['cohen_kappa_vs_majority'])}",
            f"  accuracy vs humans    {num(j['accuracy_vs_humans'])}",
        ]
        if j["position"]:
            p = j["position"]
            lines.append(
                f"  both orders: {p['n_pairs']} items, consistency "
                f"{num(p['consistency'])}, first slot {num(p['first_slot_rate'])}"
            )
    return "\n".join(lines)
