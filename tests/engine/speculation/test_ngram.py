"""Prompt lookup proposes what followed the latest match of the text's end."""

from __future__ import annotations

from mlx_gen.engine.speculation.ngram import PromptLookup
from tests.engine.speculation.helpers import sequence


def test_prompt_lookup_copies_what_followed_the_longest_match():
    lookup = PromptLookup(max_n=3)
    seq = sequence([1, 2, 3, 4, 5, 9, 2, 3, 7, 8])
    seq.output = [1, 2, 3]
    # "1 2 3" occurred at the start, followed by 4 5 9.
    assert lookup.propose(seq, 3) == [4, 5, 9]
    seq.output.append(7)  # "2 3 7" occurred before: 8 1 2 followed
    assert lookup.propose(seq, 3) == [8, 1, 2]
    seq.output.append(42)  # never seen
    assert lookup.propose(seq, 3) == []


def test_prompt_lookup_continues_a_cycle_past_the_end():
    seq = sequence([5, 6, 5, 6, 5])
    assert PromptLookup().propose(seq, 5) == [6, 5, 6, 5, 6]
