"""Scoring an answer's text: the Scripture references it cites, whether they exist and
match, its quotations, and how repetitive it is. Imports nothing from generation."""
