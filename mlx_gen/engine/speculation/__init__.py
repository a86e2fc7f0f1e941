"""Speculative decoding inside the continuous batch.

Each step, rows that speculate get a few proposed tokens (proposers.py); the
batch's caches are fed every row's last token and its proposals in one
forward pass, padded to the longest row (verify.py); each row keeps the
proposals its own samples agree with, and the caches drop the rest, row by
row, sliding-window layers included (rollback.py). When to speculate, and
for which rows, is speculator.py's.
"""
