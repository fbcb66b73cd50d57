"""Scripture references in an answer, shown with their verse text or a warning."""

from __future__ import annotations

from core.scripture import Citation, citation_text, extract_citations

#: Verse text shown under an answer is cut here; the reviewer tab shows more.
SHOWN_VERSE_CHARS = 300


def citations_markdown(answer: str) -> str:
    """A Markdown list: each valid reference with its KJV text, each nonexistent one flagged."""
    citations = extract_citations(answer)
    if not citations:
        return "_No Bible references found in this answer._"
    lines = ["**Bible references in this answer**"]
    seen: set[str] = set()
    for citation in citations:
        key = citation.normalized or citation.text
        if key in seen:
            continue
        seen.add(key)
        lines.append(_line(citation))
    return "\n".join(lines)


def _line(citation: Citation) -> str:
    if not citation.exists:
        return f"- ⚠️ **{_escape(citation.text)}: this reference does not exist** ({_escape(citation.reason or 'unknown')})."
    text = citation_text(citation, "KJV", max_chars=SHOWN_VERSE_CHARS)
    return f"- ✅ **{citation.normalized}** (KJV): “{_escape(text)}”"


def _escape(text: str) -> str:
    """Model output is shown as text, never as Markdown or HTML."""
    for char in "\\`*_{}[]<>()#+!|":
        text = text.replace(char, "\\" + char)
    return text
