"""The errors every layer raises for a user's mistake, each said in one line.

They live here, below every layer, so that a module never imports a sibling
only to raise or catch its error. The engine's request errors stay with the
engine (mlx_gen.engine.types): only the engine raises them.
"""

from __future__ import annotations


class SettingsError(Exception):
    """A bad setting, said in one line that names it."""


class RegistryError(Exception):
    """A registry file that cannot be used, said in one line."""


class ModelLoadError(Exception):
    """A model that cannot be loaded, said in one line a user can act on."""


class ConvertError(Exception):
    """A conversion that cannot go on, said in one line."""


class QualityError(Exception):
    """A quality measurement that cannot be made (different tokenizers, too
    little text), said in one line."""


class CommandError(Exception):
    """A user's mistake a command reports in one line (bad input file, ...)."""


def one_line(exc: BaseException) -> str:
    """The first line of `exc`'s message, or its type's name when it has none:
    what a one-line error can quote of an exception raised by a library."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
