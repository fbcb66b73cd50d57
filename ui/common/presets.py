"""Named sampling settings shared by the Chat, Tune and Evaluate tabs."""

from __future__ import annotations

from core import GenerationParams, Settings


def presets(settings: Settings) -> dict[str, GenerationParams]:
    """"Factual" is the configured defaults (the spec's: temperature 0.2, top_p 0.9, penalty 1.1, 400 tokens)."""
    limit = settings.max_output_tokens
    return {
        "Factual": GenerationParams.configured(settings),
        "Greedy (deterministic)": GenerationParams(limit, temperature=0.0, top_p=1.0, repetition_penalty=1.1),
        "Balanced": GenerationParams(limit, temperature=0.7, top_p=0.9, repetition_penalty=1.1),
        "Creative": GenerationParams(limit, temperature=1.0, top_p=0.95, repetition_penalty=1.05),
        "No penalty": GenerationParams(limit, temperature=0.2, top_p=0.9, repetition_penalty=1.0),
    }
