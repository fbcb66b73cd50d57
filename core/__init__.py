"""The generator core: settings, the generation service, and scoring. Never imports Gradio.

Importing this package loads no model and does not import torch; the first generation does.
"""

from core.config import Settings
from core.errors import (
    ConfigurationError,
    EndpointError,
    EndpointUnreachableError,
    GenerationError,
    InvalidRequestError,
    ModelLoadError,
    OutputValidationError,
    StreamInterruptedError,
)
from core.generation.params import HARD_OUTPUT_TOKEN_LIMIT, ChatMessage, GenerationParams
from core.generation.service import TextGenService, get_textgen_service, reset_textgen_service
from core.generation.types import GenerationResult, StreamUpdate, TruncationReport, ValidationReport

__all__ = [
    "HARD_OUTPUT_TOKEN_LIMIT",
    "ChatMessage",
    "ConfigurationError",
    "EndpointError",
    "EndpointUnreachableError",
    "GenerationError",
    "GenerationParams",
    "GenerationResult",
    "InvalidRequestError",
    "ModelLoadError",
    "OutputValidationError",
    "Settings",
    "StreamInterruptedError",
    "StreamUpdate",
    "TextGenService",
    "TruncationReport",
    "ValidationReport",
    "get_textgen_service",
    "reset_textgen_service",
]
