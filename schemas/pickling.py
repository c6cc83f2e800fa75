"""Pickling for the frozen, slotted dataclasses that cross a process boundary with every matter.

A night hands each chunk of matters to a worker process and back (night/fanout.py), and on Dask
through the scheduler as well; a staged matter carries some thirty frozen dataclass objects (its
documents, their formats and inspections). The dataclasses module pickles a frozen class with slots
through a __getstate__/__setstate__ pair that looks the class's fields up again for every object,
which was most of the CPU those hand-overs cost. `by_fields` pickles such a class as the class and
its field values, which the C pickler rebuilds by calling the class, as the object was built.
"""

from __future__ import annotations

import copyreg
import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def by_fields(cls: type[T]) -> type[T]:
    """Pickle the frozen dataclass `cls` as `cls(*field values)`. Rebuilding calls __init__, so every
    field must be an __init__ argument and there must be no __post_init__ (TypeError otherwise); a
    subclass, whose fields may differ, pickles as the dataclasses module pickles it."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__qualname__} is not a dataclass")
    names = tuple(f.name for f in dataclasses.fields(cls))
    if any(not f.init for f in dataclasses.fields(cls)) or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__qualname__}: rebuilt by calling it, so every field must be an __init__ "
                        "argument and it must have no __post_init__")
    values: Callable[[Any], tuple[Any, ...]]
    if len(names) > 1:
        values = operator.attrgetter(*names)
    else:
        def values(obj: Any) -> tuple[Any, ...]:
            return tuple(getattr(obj, name) for name in names)

    def __reduce__(self: Any) -> tuple[Any, ...]:
        if type(self) is not cls:  # a subclass: the dataclasses module's own state
            return (copyreg.__newobj__, (type(self),), self.__getstate__())
        return (cls, values(self))

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls
