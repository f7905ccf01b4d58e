"""Documents (what ``to_dict`` returns, for -o json/yaml) that hold one sub-document many times."""

from __future__ import annotations


class SharedDict(dict):  # type: ignore[type-arg]
    """A sub-document that appears more than once in one document (the same match or target of
    many iptables rules): a dict like any other, which a writer may render once and repeat.
    Nothing may change it once it is in a document."""

    __slots__ = ()
