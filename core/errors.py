"""The exceptions ``core/`` raises, all under one base, :class:`ScribesError`.

Every message is written for the person who will read it in the app (often a pastor),
says what happened and what to do, and never contains a token. The library exception
that caused it is chained (``raise ... from e``) for developers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.evaluation.runner import EvaluationRun

#: How many problems a :class:`QuestionSetError` message lists; the rest are counted.
MAX_REPORTED_PROBLEMS = 20


class ScribesError(Exception):
    """Base class: something the app can say to the person in plain words (``str(error)``)."""


class GenerationError(ScribesError):
    """Anything that stops an answer from being produced.

    ``transient`` tells the retry policy whether trying again may help (timeouts,
    rate limits, 5xx); ``retry_after_s`` carries a server's ``Retry-After``.
    """

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        if transient is not None:
            self.transient = transient
        self.retry_after_s = retry_after_s

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(GenerationError):
    """A setting (environment variable or argument) has a value the service cannot use."""


class InvalidRequestError(GenerationError):
    """The request itself is unusable: empty prompt, parameter out of range, bad message list."""


class ModelLoadError(GenerationError):
    """The local model (or its tokenizer) could not be found, converted or loaded."""


class EndpointError(GenerationError):
    """The inference endpoint answered with an error status.

    ``status_code`` is the HTTP status; ``request_id`` helps the endpoint's owner find the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        transient: bool | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message, transient=transient, retry_after_s=retry_after_s)
        self.status_code = status_code
        self.request_id = request_id


class EndpointUnreachableError(GenerationError):
    """No answer at all: connection refused, DNS failure, timeout, a stream that stopped early."""

    transient = True


class StreamInterruptedError(GenerationError):
    """The answer stopped part-way; ``partial_text`` is what had already arrived."""

    def __init__(self, message: str, *, partial_text: str = ""):
        super().__init__(message, transient=False)
        self.partial_text = partial_text


class OutputValidationError(GenerationError):
    """Strict validation is on and the answer failed it (too short or repetitive).

    ``result`` is the full :class:`~core.generation.types.GenerationResult`, so nothing is lost.
    """

    def __init__(self, message: str, *, result: object):
        super().__init__(message, transient=False)
        self.result = result



@dataclass(frozen=True)
class QuestionSetProblem:
    """One thing wrong with a question-set file. ``row``/``column`` are None for the whole file."""

    message: str
    row: int | None = None
    column: int | None = None  # 0-based position in the file
    column_name: str | None = None

    @property
    def location(self) -> str:
        parts = []
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {column_letter(self.column)}" + (f" ({self.column_name})" if self.column_name else ""))
        return ", ".join(parts)


class QuestionSetError(ScribesError, ValueError):
    """A question-set file that cannot be used; ``problems`` lists everything found wrong."""

    def __init__(self, file_name: str, problems: Sequence[QuestionSetProblem]):
        self.file_name = file_name
        self.problems = tuple(sorted(problems, key=lambda p: (p.row or 0, p.column or 0)))
        super().__init__(_describe_problems(file_name, self.problems))


class ResultsFileError(ScribesError, ValueError):
    """A results file that cannot be read back (missing columns, not a results file)."""


def _describe_problems(file_name: str, problems: Sequence[QuestionSetProblem]) -> str:
    def line(problem: QuestionSetProblem) -> str:
        return f"{problem.location}: {problem.message}" if problem.location else problem.message

    if len(problems) == 1:
        only = problems[0]
        return f"{file_name}, {line(only)}" if only.location else f"{file_name}: {only.message}"
    shown = problems[:MAX_REPORTED_PROBLEMS]
    lines = [f"{file_name} has {len(problems)} problems; fix them and load the file again:"]
    lines += [f"- {line(p)}" for p in shown]
    if len(problems) > len(shown):
        lines.append(f"- and {len(problems) - len(shown)} more.")
    return "\n".join(lines)


def column_letter(index: int) -> str:
    """The spreadsheet name of a 0-based column: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


class ReviewFileError(ScribesError, ValueError):
    """A reviews file that cannot be imported; the message names the file, line or row, and column."""


class EvaluationFailed(ScribesError, RuntimeError):
    """A run stopped by an unexpected failure; ``run`` keeps every row finished before it."""

    def __init__(self, message: str, run: EvaluationRun):
        super().__init__(message)
        self.run = run


class EvaluationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``run`` keeps every row finished before it.

    Not a :class:`ScribesError`: it must pass ``except Exception`` as Ctrl-C does.
    """

    def __init__(self, run: EvaluationRun):
        super().__init__("The evaluation was interrupted.")
        self.run = run


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """Replace each secret that occurs in ``text`` with ``***``.

    Used on every message that leaves the core, as a last guard: servers sometimes echo
    request headers back in their error bodies.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
