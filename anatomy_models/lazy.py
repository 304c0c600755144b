"""Package names imported on first use (PEP 562), so that importing a light submodule stays light.

>>> getattr_, dir_ = lazy_exports("demo", {"sqrt": "math"}, {})
>>> getattr_("sqrt")(9.0)
3.0
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's module ``__getattr__`` and ``__dir__`` for ``exports`` (name -> module defining it).

    A name is imported when first asked for and then kept in ``namespace`` (the package's
    ``globals()``), so later look-ups cost nothing.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
