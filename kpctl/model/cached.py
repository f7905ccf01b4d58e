"""A computed attribute stored on first use, without functools.cached_property's lock.

On Python < 3.12 ``functools.cached_property`` takes one lock shared by every instance on
each first access; parsing a 110,000-rule iptables-save document builds about a million
typed views, and that lock was a third of `kpctl iptables list`'s time.  Values here are
pure functions of frozen fields, so two threads computing one twice would be harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class cached_view(Generic[T]):
    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = self.func(instance)
        instance.__dict__[self.name] = value  # a non-data descriptor: later reads skip __get__
        return value
