"""Random-weight models of real architectures, built offline: the presets, their
tokenizer and cache (presets.py), and the full-size shapes written straight as
MXFP4-Q8 (mxfp4_q8.py)."""
