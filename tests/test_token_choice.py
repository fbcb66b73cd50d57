"""The local loop's token choice keeps exactly the tokens transformers' own processors keep.

``core.generation.backends.token_choice`` finds the top-p nucleus among the likeliest tokens
instead of sorting the vocabulary; these tests hold it to transformers' processors
(temperature, top-k, top-p) on peaked and flat distributions over a vocabulary the size of
the embedded model's, including the flat case where the candidates fall short and the
whole vocabulary is sorted.
"""

from __future__ import annotations

import pytest
import torch
from transformers import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from core.generation.backends.token_choice import CANDIDATES, TokenRule, choose_tokens, nuclei

VOCABULARY = 49152


def _transformers_probabilities(scores: torch.Tensor, rule: TokenRule) -> torch.Tensor:
    processors = LogitsProcessorList([TemperatureLogitsWarper(rule.temperature)])
    if rule.top_k:
        processors.append(TopKLogitsWarper(rule.top_k))
    if rule.top_p < 1.0:
        processors.append(TopPLogitsWarper(rule.top_p))
    return torch.softmax(processors(torch.zeros((1, 1), dtype=torch.long), scores[None].clone())[0], dim=-1)


def _logits(spread: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(VOCABULARY, generator=generator) * spread


@pytest.mark.parametrize(
    "rule",
    [
        TokenRule(temperature=0.2, top_p=0.9),  # the app's defaults
        TokenRule(temperature=1.0, top_p=0.5),
        TokenRule(temperature=0.7, top_k=40, top_p=0.9),
        TokenRule(temperature=0.9, top_k=500, top_p=0.95),
        TokenRule(temperature=1.5, top_p=0.99),  # flat: the candidates fall short, all is sorted
        TokenRule(temperature=0.8),  # top-p 1: the whole vocabulary
        TokenRule(temperature=1.0, top_k=5),
    ],
)
@pytest.mark.parametrize("spread", [1.0, 4.0, 12.0])
def test_the_nucleus_is_transformers_own(rule: TokenRule, spread: float) -> None:
    for seed in range(5):
        scores = _logits(spread, seed)
        expected = _transformers_probabilities(scores, rule)
        tokens, probabilities = nuclei(scores[None], [rule])[0]
        ours = torch.zeros(VOCABULARY)
        ours[tokens] = probabilities / probabilities.sum()
        # float32 sums taken in another order may differ on the one token at the nucleus's edge
        differing = (ours > 0) != (expected > 0)
        assert int(differing.sum()) <= 1, f"seed {seed}: {int(differing.sum())} tokens kept by one side only"
        assert float(torch.maximum(ours, expected)[differing].sum()) < 1e-4
        torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-3)


def test_a_flat_row_is_searched_beyond_the_candidates() -> None:
    scores = _logits(0.1, 0)  # nearly uniform: the 0.9 nucleus holds tens of thousands of tokens
    tokens, _ = nuclei(scores[None], [TokenRule(temperature=1.0, top_p=0.9)])[0]
    assert len(tokens) > 100 * CANDIDATES


def test_rows_choose_under_their_own_rules_and_penalty() -> None:
    logits = torch.stack([_logits(4.0, 1), _logits(4.0, 2), _logits(4.0, 3)])
    seen = [torch.tensor([[int(logits[0].argmax())]]), torch.tensor([[0]]), torch.tensor([[0]])]
    rules = [TokenRule(repetition_penalty=5.0), TokenRule(), TokenRule(temperature=0.5, top_k=1)]
    chosen = choose_tokens(logits.clone(), rules, seen)
    penalised = RepetitionPenaltyLogitsProcessor(5.0)(seen[0], logits[0:1].clone())
    assert chosen[0] == int(penalised.argmax()) != int(logits[0].argmax())  # the penalty moved the greedy choice
    assert chosen[1] == int(logits[1].argmax())
    assert chosen[2] == int(logits[2].argmax())  # top-k 1 leaves one token to draw
