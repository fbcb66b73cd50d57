"""The exceptions the generator core raises.

Every message is written for the person who will read it in the app (often a pastor),
says what happened and what to do, and never contains a token. The library exception
that caused it is chained (``raise ... from e``) for developers.
"""

from __future__ import annotations


class GenerationError(Exception):
    """Base class: anything that stops an answer from being produced.

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

    ``result`` is the full :class:`~core.results.GenerationResult`, so nothing is lost.
    """

    def __init__(self, message: str, *, result: object):
        super().__init__(message, transient=False)
        self.result = result


def redact(text: str, secrets: tuple[str | None, ...]) -> str:
    """Replace each secret that occurs in ``text`` with ``***``.

    Used on every message that leaves the core, as a last guard: servers sometimes echo
    request headers back in their error bodies.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
