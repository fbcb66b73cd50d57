"""The question sets the app offers: the shipped ones in eval_sets/.

Handlers only ever open a set from this list (or an upload): a path typed into the API
is refused, so the app reads no file a visitor names.
"""

from __future__ import annotations

from pathlib import Path

EVAL_SETS = Path(__file__).resolve().parents[2] / "eval_sets"


def shipped_sets() -> list[tuple[str, str]]:
    """(label, path) choices, e.g. ("core doctrine", ".../eval_sets/core_doctrine.csv")."""
    return [(p.stem.replace("_", " "), str(p)) for p in sorted(EVAL_SETS.glob("*.csv"))]
