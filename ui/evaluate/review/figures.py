"""The reviews' figures as Markdown: manual citation accuracy against the spec's target,
how the automatic classes meet the reviewers' ratings, and how far reviewers agree.

Shown in the Evaluate summary and in the Review panel, from the same functions
(:mod:`core.evaluation.review_stats`), so both say the same.
"""

from __future__ import annotations

import pandas as pd

from core.evaluation.review_items import answer_list, reviewed_citations
from core.evaluation.review_stats import (
    ACCURACY_TARGET,
    MOST_MORE,
    AccuracyEstimate,
    agreement,
    classes_against_ratings,
)
from core.stores.reviews import RATINGS, Rating, ReviewStore
from ui.common.citations import escape_markdown

_CLASS_NAMES = {"expected": "expected", "in_context": "in context", "unsupported": "unsupported", "nonexistent": "nonexistent"}


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def accuracy_markdown(estimate: AccuracyEstimate | None) -> str:
    target = f"{ACCURACY_TARGET:.0%}"
    if estimate is None:
        return f"**Manual citation accuracy:** no answer marked reviewed has a rated citation yet (target > {target})."
    flagged = f", counting {estimate.nonexistent} nonexistent ones as not supported" if estimate.nonexistent else ""
    figure = (
        f"**Manual citation accuracy: {estimate.share:.1%}** (95% interval {estimate.low:.1%}–{estimate.high:.1%}, "
        f"{estimate.accurate} of {estimate.rated} citations of the reviewed answers supported{flagged})"
    )
    if estimate.verdict == "met":
        verdict = f"✅ **Target > {target} met:** the whole interval lies above it."
    elif estimate.verdict == "missed":
        verdict = f"❌ **Target > {target} missed:** the whole interval lies below it."
    else:
        if estimate.more_needed is None:
            more = "more ratings will not settle it while the share sits on the target"
        elif estimate.more_needed > MOST_MORE:
            more = f"it would take more than {MOST_MORE:,} more rated citations at this share"
        else:
            more = f"about {estimate.more_needed:,} more rated citations would settle it if the share stays as it is"
        verdict = f"❔ **Not yet known whether the target > {target} is met:** the interval straddles it; {more}."
    return f"{figure}\n\n{verdict}"


def classes_markdown(table: dict[str, dict[int, int]]) -> str:
    if not table:
        return ""
    ratings = sorted(RATINGS, reverse=True)
    lines = [
        "| Automatic class | " + " | ".join(f"rated {r} ({RATINGS[r]})" for r in ratings) + " |",
        "|---|" + "---|" * len(ratings),
    ]
    for name, label in _CLASS_NAMES.items():
        if name == "nonexistent":
            lines.append(f"| {label} | " + " | ".join("–" for _ in ratings) + " |")  # flagged automatically, not rated
        elif name in table:
            lines.append(f"| {label} | " + " | ".join(str(table[name][r]) for r in ratings) + " |")
    return "\n".join(lines)


def agreement_markdown(ratings: list[Rating]) -> str:
    result = agreement(ratings)
    if result.citations == 0:
        return "**Agreement:** no citation has been rated by two reviewers yet."
    alpha = "undefined (every rating the same)" if result.alpha is None else f"{result.alpha:.2f}"
    lines = [
        f"**Agreement** over {result.citations} citations rated by two or more of {result.reviewers} reviewers: "
        f"{_percent(result.percent)} of pairs of ratings agree · Krippendorff's alpha (ordinal) {alpha}",
        "",
        "| Reviewers | Citations both rated | Agreement | Alpha |",
        "|---|---|---|---|",
    ]
    for pair in result.pairs:
        pair_alpha = "–" if pair.alpha is None else f"{pair.alpha:.2f}"
        names = " & ".join(escape_markdown(name) for name in pair.reviewers)
        lines.append(f"| {names} | {pair.citations} | {_percent(pair.percent)} | {pair_alpha} |")
    return "\n".join(lines)


def figures_markdown(frame: pd.DataFrame | None, store: ReviewStore) -> str:
    """Accuracy, classes against ratings, and agreement, over the answers of the results."""
    if not answer_list(frame):
        return ""
    reviewed = reviewed_citations(frame, store)
    ratings = list(reviewed.ratings)
    parts = [accuracy_markdown(reviewed.accuracy())]
    table = classes_markdown(classes_against_ratings(reviewed.classes, ratings))
    if table:
        parts.append("How the automatic classes meet the reviewers' ratings (one count per citation, its reviewers' lower median):\n\n" + table)
    parts.append(agreement_markdown(ratings))
    return "\n\n".join(parts)
