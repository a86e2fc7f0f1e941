"""Random-weight models of real architectures, built offline: the presets, their
tokenizer and cache (presets.py), GPT-OSS's own tokenizer rebuilt offline
(o200k.py), and the full-size shapes written straight as MXFP4-Q8 (mxfp4_q8.py)."""
