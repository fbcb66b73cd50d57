"""Scripture references in an answer, shown with their verse text or a warning.

The references listed are the answer's citation units (:func:`core.scoring.citations.distinct_citations`),
the same ones Tune, Evaluate and Review count, and misquotes are the scorer's
(:func:`core.scoring.citations.score_answer`), shown next to the verse's real text.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.retrieval import Passage
from core.retrieval.quality import matching_passage
from core.scoring.citations import citation_shown, distinct_citations, score_answer
from core.scoring.quotes import Misquote
from core.scoring.references import Citation, citation_text

#: Verse text shown under an answer is cut here; the reviewer tab shows more.
SHOWN_VERSE_CHARS = 300


def answer_citations(answer: str) -> tuple[tuple[Citation, ...], tuple[Misquote, ...]]:
    """The answer's distinct citations, in order, and its misquotes."""
    score = score_answer(answer)
    return tuple(distinct_citations([s.citation for s in score.citations])), score.misquotes


def citations_markdown(answer: str, passages: Sequence[Passage] = ()) -> str:
    """A Markdown list: each valid reference with its KJV text, each nonexistent one flagged,
    then a warning for each quotation that is not in the verse cited next to it.

    ``passages``: those the model was given (grounding); a citation that shares a verse with
    one is marked "from the passages".
    """
    citations, misquotes = answer_citations(answer)
    if not citations:
        return "_No Bible references found in this answer._"
    lines = ["**Bible references in this answer**"]
    for citation in citations:
        found = matching_passage(citation, passages) if citation.exists and passages else None
        lines.append(_line(citation) + (f" · 📖 from the passages ({found.reference})" if found else ""))
    by_reference = {citation.normalized: citation for citation in citations if citation.exists}
    lines += [_misquote_line(misquote, by_reference[misquote.reference]) for misquote in misquotes]
    return "\n".join(lines)


def misquote_warning(reference: str) -> str:
    """The warning in plain words, as Chat and Tune show it, for a misquoted reference."""
    return f"The words quoted for {reference} are not in that verse"


def _line(citation: Citation) -> str:
    if citation.overrun:
        return (
            f"- ⚠️ **{escape_markdown(citation_shown(citation))}, in {escape_markdown(citation.text)}: these verses do not exist** "
            f"({escape_markdown(citation.reason or 'unknown')})."
        )
    if not citation.exists:
        return f"- ⚠️ **{escape_markdown(citation.text)}: this reference does not exist** ({escape_markdown(citation.reason or 'unknown')})."
    text = citation_text(citation, "KJV", max_chars=SHOWN_VERSE_CHARS)
    return f"- ✅ **{citation.normalized}** (KJV): “{escape_markdown(text)}”"


def _misquote_line(misquote: Misquote, cited: Citation) -> str:
    verse = citation_text(cited, misquote.best_version, max_chars=SHOWN_VERSE_CHARS)
    return (
        f"\n⚠️ **{escape_markdown(misquote_warning(misquote.reference))}.** The answer quotes “{escape_markdown(misquote.quoted)}”, "
        f"but {escape_markdown(misquote.reference)} reads ({misquote.best_version}): “{escape_markdown(verse)}”"
    )


def escape_markdown(text: str) -> str:
    """Model output is shown as text, never as Markdown or HTML."""
    for char in "\\`*_{}[]<>()#+!|":
        text = text.replace(char, "\\" + char)
    return text


def passages_markdown(passages: Sequence[Passage]) -> str:
    """The passages a grounded answer was given, with their text, as the model read them."""
    if not passages:
        return "_No passages: this answer was not grounded (turn on “Ground in Scripture”)._"
    lines = [f"**{len(passages)} passages given to the model**, best match first:"]
    lines += [f"- **{passage.reference}**: {escape_markdown(passage.text)}" for passage in passages]
    return "\n".join(lines)
