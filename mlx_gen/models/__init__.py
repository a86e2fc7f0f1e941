"""Getting a model: the registry (`models.toml`), hub downloads, loading with
the dtypes each backend runs, conversion and its quantization recipes, and
random-weight models of real architectures built offline (`synthetic`)."""
