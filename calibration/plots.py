"""The report's plots, drawn server-side as SVG so the report page works offline.

Each function takes part of a report dict and returns an SVG document as a string. Text
(rater and model names come from imports) is drawn as paths, so no markup from the data
reaches the page.
"""

import io
import re

import matplotlib

matplotlib.use("Agg")  # no display: render to files only

import matplotlib.pyplot as plt

HUMANS_COLOUR = "#5b6670"
JUDGE_COLOUR = "#1f5fbf"
plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "figure.dpi": 100})


def calibration_plot(question):
    """Each judge's kappa against the human majority, with 95% CI, beside the human ceiling."""
    judges = question["judges"]
    fig, ax = plt.subplots(figsize=(6, 1.1 + 0.45 * max(len(judges), 1)))
    ceiling = question["humans"]["fleiss_kappa"]
    band = question["humans"]["ci95"]["fleiss_kappa"]
    if band and None not in band:
        ax.axvspan(*band, color=HUMANS_COLOUR, alpha=0.15, lw=0)
    if ceiling is not None:
        ax.axvline(ceiling, color=HUMANS_COLOUR, lw=1.5, label="human-human (Fleiss κ)")
    for y, judge in enumerate(judges):
        value = judge["cohen_kappa_vs_majority"]
        if value is None:
            continue
        ci = (judge.get("ci95") or {}).get("cohen_kappa_vs_majority")
        err = [[max(value - ci[0], 0)], [max(ci[1] - value, 0)]] if ci and None not in ci else None
        ax.errorbar(value, y, xerr=err, fmt="o", color=JUDGE_COLOUR, capsize=3)
    ax.set_yticks(range(len(judges)), [j["rater"] for j in judges])
    ax.set_ylim(-0.7, max(len(judges), 1) - 0.3)
    ax.set_xlim(min([-0.1, *(x for x in _kappas(question) if x is not None)]), 1.0)
    ax.set_xlabel("Cohen's κ vs human majority")
    if ceiling is not None:
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), frameon=False)
    return _svg(fig)


def confusion_plot(judge, reference="human majority"):
    """Counts of the reference answers (rows: the human majority, or the final labels)
    against the judge's (columns); None when no item the judge labelled has one."""
    confusion = judge["confusion"]
    values, counts = confusion["values"], confusion["counts"]
    if not values:
        return None
    size = 1.2 + 0.5 * len(values)
    fig, ax = plt.subplots(figsize=(size + 0.6, size))
    ax.imshow(counts, cmap="Blues")
    top = max((max(row) for row in counts), default=0)
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            ax.text(j, i, n, ha="center", va="center", color="white" if n > top / 2 else "black")
    ax.set_xticks(range(len(values)), values)
    ax.set_yticks(range(len(values)), values)
    ax.set_xlabel(f"{judge['rater']}")
    ax.set_ylabel(reference)
    return _svg(fig)


def bias_plot(question):
    """Position and verbosity bias of humans and judges: 0.5 is unbiased."""
    rows = []
    humans = question["humans"]
    for name, source in [("humans", humans), *((j["rater"], j) for j in question["judges"])]:
        position = source.get("position") or {}
        verbosity = source.get("verbosity") or {}
        rows.append((name, position.get("first_slot_rate"), verbosity.get("longer_win_rate")))
    fig, axes = plt.subplots(1, 2, figsize=(7, 0.6 + 0.4 * len(rows)), sharey=True)
    for ax, index, title in (
        (axes[0], 1, "picks the first shown"),
        (axes[1], 2, "picks the longer response"),
    ):
        for y, row in enumerate(rows):
            if row[index] is not None:
                colour = HUMANS_COLOUR if y == 0 else JUDGE_COLOUR
                ax.barh(y, row[index] - 0.5, left=0.5, color=colour)
        ax.axvline(0.5, color="black", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_title(title)
    axes[0].set_yticks(range(len(rows)), [r[0] for r in rows])
    axes[0].invert_yaxis()
    return _svg(fig)


def ranking_plot(rankings):
    """Model scores with 95% CI whiskers: humans and each judge side by side."""
    groups = [("humans", rankings["humans"]), *rankings["judges"].items()]
    models = [r["model"] for r in rankings["humans"]] or [r["model"] for r in groups[-1][1]]
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.35 * len(models) * len(groups)))
    step = 0.8 / len(groups)
    for g, (name, ranking) in enumerate(groups):
        by_model = {r["model"]: r for r in ranking}
        ys, xs, lows, highs = [], [], [], []
        for m, model in enumerate(models):
            r = by_model.get(model)
            if r is None or r["score"] is None:
                continue
            ys.append(m + g * step)
            xs.append(r["score"])
            # An interval need not contain the estimate (Elo; few resamples): no negative bars.
            low = r["ci_low"] if r["ci_low"] is not None else r["score"]
            high = r["ci_high"] if r["ci_high"] is not None else r["score"]
            lows.append(max(r["score"] - low, 0))
            highs.append(max(high - r["score"], 0))
        ax.errorbar(
            xs,
            ys,
            xerr=[lows, highs],
            fmt="o",
            capsize=3,
            label=name,
            color=HUMANS_COLOUR if g == 0 else None,
        )
    ax.set_yticks([m + 0.4 - step / 2 for m in range(len(models))], models)
    ax.invert_yaxis()
    ax.set_xlabel("Bradley-Terry score (Elo scale)")
    ax.legend(loc="best", frameon=False)
    return _svg(fig)


def _kappas(question):
    yield question["humans"]["fleiss_kappa"]
    for judge in question["judges"]:
        yield judge["cohen_kappa_vs_majority"]
        ci = (judge.get("ci95") or {}).get("cohen_kappa_vs_majority")
        if ci:
            yield ci[0]


def _svg(fig):
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    svg = out.getvalue()
    return _without_css(svg[svg.index("<svg") :])  # no XML prologue or doctype inline


# Matplotlib's one style sheet (defaults for every element) and its style attributes. In an
# HTML page an SVG <style> element is not the SVG's own: it styles the whole document.
_STYLE_SHEET = re.compile(r"\s*<style[^>]*>\*\{([^}]*)\}</style>")
_STYLE_ATTRIBUTE = re.compile(r'(<[a-zA-Z][^<>]*?) style="([^"]*)"')


def _without_css(svg):
    """The same SVG with its CSS written as presentation attributes (`fill="#fff"`).

    The page's Content-Security-Policy (style-src 'self') blocks inline CSS, which would draw
    every shape black; presentation attributes are not CSS and need no exception. The sheet's
    defaults go on the root element, which every element inherits them from unless it sets
    its own.
    """
    defaults = _STYLE_SHEET.search(svg)
    if defaults:
        svg = svg[: defaults.start()] + svg[defaults.end() :]
        svg = svg.replace("<svg ", f"<svg {_attributes(defaults[1])} ", 1)
    return _STYLE_ATTRIBUTE.sub(lambda m: f"{m[1]} {_attributes(m[2])}", svg)


def _attributes(declarations):
    pairs = (d.split(":", 1) for d in declarations.split(";") if d.strip())
    return " ".join(f'{name.strip()}="{value.strip()}"' for name, value in pairs)
