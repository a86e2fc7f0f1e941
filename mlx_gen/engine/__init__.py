"""The engine: one MLX thread, continuous batching, an async facade."""

from mlx_gen.engine.config import EngineConfig
from mlx_gen.engine.llm_engine import LLMEngine, load_engine
from mlx_gen.engine.stream import EventStream

__all__ = ["EngineConfig", "EventStream", "LLMEngine", "load_engine"]
