"""``python -m core.evaluation``: see :mod:`core.evaluation.cli`."""

from core.evaluation.cli import run_as_program

run_as_program()
