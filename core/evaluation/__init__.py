"""Batch evaluation: load a question set, answer and score every row, summarise, export.

The modules, in the order a run uses them:

* :mod:`~core.evaluation.question_sets` reads and checks a CSV question set (see
  ``eval_sets/README.md``) and raises one :class:`~core.errors.QuestionSetError` that lists
  every problem it found, each with the file, the row (as a spreadsheet counts it: the
  header is row 1) and the column.
* :mod:`~core.evaluation.scored_rows` scores one answer with
  :func:`core.scoring.citations.score_answer` and joins the generation figures to the row.
* :mod:`~core.evaluation.runner` answers the rows through the generation service, saving
  them as they finish with :mod:`~core.evaluation.checkpoints`.
* :mod:`~core.evaluation.table`: the results table, its files, and comparing two runs.
* :mod:`~core.evaluation.summary`: the figures of a whole run and their thresholds.
* :mod:`~core.evaluation.sweep`: one question under many settings (the Tune tab).
* ``review_items``, ``review_stats``, ``review_files``: the citations people review, the
  manual accuracy their ratings give, and the reviews' files.
* :mod:`~core.evaluation.cli`: ``python -m core.evaluation``.

Scoring never calls generation; the runner composes the two. No Gradio here.
"""
