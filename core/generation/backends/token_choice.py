"""The next token of every row of a local batch, from its logits, under each row's own settings.

``generate()``'s top-p (transformers' ``TopPLogitsWarper``) sorts the whole vocabulary
(49,152 entries for the embedded model) for every row at every token. Under the app's
default settings (temperature 0.2, top-p 0.9) that sort cost as much as the model's own
step for a batch of eight. The nucleus is nearly always a handful of tokens, and it can be
found exactly among the likeliest :data:`CANDIDATES`: once those hold at least ``top_p``
of the probability, no token outside them can be in the nucleus. Only a row whose
candidates fall short is sorted in full. The rules are transformers' own (repetition
penalty, then temperature, top-k, top-p over what top-k kept); ``tests/test_token_choice.py``
checks the kept tokens and their probabilities against transformers' processors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional
from transformers import RepetitionPenaltyLogitsProcessor

#: How many of the likeliest tokens are looked at first for a row's nucleus.
CANDIDATES = 64


@dataclass(frozen=True)
class TokenRule:
    """How one row chooses: greedy (``temperature == 0``) or sampled, as ``local_sampling`` sends it."""

    temperature: float = 0.0
    top_k: int = 0  # 0: off
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    @classmethod
    def from_sent(cls, sent: dict[str, object]) -> TokenRule:
        """The rule for what :func:`~core.generation.backends.local_sampling.local_sampling` sends ``generate()``."""
        penalty = float(sent.get("repetition_penalty", 1.0))  # type: ignore[arg-type]
        if not sent["do_sample"]:
            return cls(repetition_penalty=penalty)
        return cls(float(sent["temperature"]), int(sent["top_k"]), float(sent["top_p"]), penalty)  # type: ignore[arg-type]

    @property
    def sampled(self) -> bool:
        return self.temperature > 0


def choose_tokens(logits: torch.Tensor, rules: list[TokenRule], seen: list[torch.Tensor]) -> list[int]:
    """One token per row of ``logits`` (rows, vocabulary); ``seen[i]``: row i's tokens so far (1, n)."""
    scores = logits.to(torch.float32, copy=True)  # the model's own tensor stays untouched
    for row, (rule, tokens) in enumerate(zip(rules, seen, strict=True)):
        if rule.repetition_penalty != 1.0:
            scores[row : row + 1] = RepetitionPenaltyLogitsProcessor(rule.repetition_penalty)(tokens, scores[row : row + 1])
    chosen = scores.argmax(dim=-1).tolist()
    sampled = [row for row, rule in enumerate(rules) if rule.sampled]
    if sampled:
        picked = _sample(scores[sampled], [rules[row] for row in sampled])
        for row, token in zip(sampled, picked, strict=True):
            chosen[row] = token
    return chosen


def nuclei(scores: torch.Tensor, rules: list[TokenRule]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For each row of ``scores`` (rows, vocabulary): the tokens it may draw and their probabilities (not renormalised).

    The passes over the whole vocabulary are shared by the rows; the rest is per row, on a few tokens.
    """
    vocabulary = scores.shape[-1]
    scores = scores / scores.new_tensor([rule.temperature for rule in rules])[:, None]
    widest = min(vocabulary, max(CANDIDATES, *(rule.top_k for rule in rules)))
    values, tokens = scores.topk(widest, dim=-1)
    totals = scores.logsumexp(dim=-1)
    found = []
    for row, rule in enumerate(rules):
        if rule.top_k:
            kept = min(rule.top_k, vocabulary)
            found.append(_top_p(tokens[row, :kept], functional.softmax(values[row, :kept], dim=-1), rule))  # top-p sees what top-k kept
        elif rule.top_p >= 1.0:
            found.append((torch.arange(vocabulary, device=scores.device), functional.softmax(scores[row], dim=-1)))
        else:
            probabilities = (values[row, :CANDIDATES] - totals[row]).exp()
            if float(probabilities.sum()) < rule.top_p and CANDIDATES < vocabulary:  # a flat distribution: all of it, sorted
                everything, order = scores[row].sort(descending=True)
                found.append(_top_p(order, (everything - totals[row]).exp(), rule))
            else:
                found.append(_top_p(tokens[row, :CANDIDATES], probabilities, rule))
    return found


def _top_p(tokens: torch.Tensor, probabilities: torch.Tensor, rule: TokenRule) -> tuple[torch.Tensor, torch.Tensor]:
    """Of ``tokens`` (likeliest first), those whose likelier tokens hold less than ``top_p``."""
    if rule.top_p >= 1.0:
        return tokens, probabilities
    before = probabilities.cumsum(dim=-1) - probabilities
    keep = before < rule.top_p
    keep[0] = True  # the likeliest always stays
    return tokens[keep], probabilities[keep]


def _sample(scores: torch.Tensor, rules: list[TokenRule]) -> list[int]:
    return [int(tokens[torch.multinomial(probabilities, num_samples=1)]) for tokens, probabilities in nuclei(scores, rules)]
