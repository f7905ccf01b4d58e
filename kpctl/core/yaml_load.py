"""A YAML document read into plain values as its events come (what ``yaml.safe_load`` returns).

``yaml.safe_load`` composes the whole document as nodes first, each scalar a node with two marks:
a 10,000-service ``ipvs list -o yaml`` (24 MB, 3 million events) took 66 s and 2.2 GB to read
that way, 24 s and 1.4 GB through libyaml's loader.  Here PyYAML's parser (libyaml's where PyYAML
has it) hands over one event at a time, collections are filled as they come, and each distinct
scalar (``0``, ``masq``, an address) is made once by PyYAML's own resolver and safe constructor.
Anchors, aliases and merge keys (``<<``) are followed as safe_load follows them; tagged
collections other than plain mappings and sequences (``!!set``, ``!!omap``) are refused.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

_MAP, _SEQ, _MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
_MISSING = object()


def safe_load(text: str) -> Any:
    """The value of the one YAML document in ``text`` (None for none); yaml.YAMLError when it is
    not YAML, holds more than one document, or needs what safe_load would refuse."""
    loader = (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)(text)
    try:
        return _Reader(loader).document()
    finally:
        loader.dispose()


class _Frame:
    """A collection being filled: its value, and for a mapping the key waiting for its value and
    the mappings merged into it (``<<``)."""

    __slots__ = ("value", "key", "merged", "mark")

    def __init__(self, value: Any, mark: Any) -> None:
        self.value, self.key, self.mark = value, _MISSING, mark
        self.merged: list[dict[Any, Any]] | None = None


class _Reader:
    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.anchors: dict[str, Any] = {}
        self.scalars: dict[tuple[Any, ...], Any] = {}

    def document(self) -> Any:
        get = self.loader.get_event
        if type(get()) is not StreamStartEvent:
            raise ComposerError(None, None, "expected the start of a stream", None)
        event = get()
        if type(event) is StreamEndEvent:
            return None
        if type(event) is not DocumentStartEvent:
            raise ComposerError(None, None, "expected a document", event.start_mark)
        value = self.node(get)
        get()  # DocumentEndEvent (the parser sends nothing else here)
        event = get()
        if type(event) is not StreamEndEvent:
            raise ComposerError("expected a single document in the stream", None,
                                "but found another document", event.start_mark)
        return value

    def node(self, get: Any) -> Any:
        """The value of the node whose events come next (a scalar, alias or whole collection)."""
        stack: list[_Frame] = []
        while True:
            event = get()
            kind = type(event)
            if kind is ScalarEvent:
                value = self.scalar(event)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                frame = stack.pop()
                value = frame.value
                if frame.merged:
                    for merged in frame.merged:
                        for key, item in merged.items():
                            value.setdefault(key, item)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                mapping = kind is MappingStartEvent
                if event.tag not in (None, "!", _MAP if mapping else _SEQ):
                    raise ConstructorError(None, None, f"a collection tagged {event.tag!r} is not read here",
                                           event.start_mark)
                frame = _Frame({} if mapping else [], event.start_mark)
                if event.anchor is not None:
                    self.anchor(event, frame.value)
                stack.append(frame)
                continue
            elif kind is AliasEvent:
                value = self.anchors.get(event.anchor, _MISSING)
                if value is _MISSING:
                    raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
            else:
                raise ComposerError(None, None, f"unexpected {kind.__name__}", event.start_mark)
            if not stack:
                if value is _MERGE_KEY:
                    raise _no_merge(event)
                return value
            self.add(stack[-1], value, event)

    def add(self, frame: _Frame, value: Any, event: Any) -> None:
        container = frame.value
        if type(container) is list:
            if value is _MERGE_KEY:
                raise _no_merge(event)
            container.append(value)
        elif frame.key is _MISSING:
            frame.key = value
        else:
            if value is _MERGE_KEY:
                raise _no_merge(event)
            key, frame.key = frame.key, _MISSING
            if key is _MERGE_KEY:
                self.merge(frame, value, event)
                return
            try:
                container[key] = value
            except TypeError:
                raise ConstructorError("while constructing a mapping", frame.mark, "found unhashable key",
                                       event.start_mark) from None

    def merge(self, frame: _Frame, value: Any, event: Any) -> None:
        """``<<: *a`` or ``<<: [*a, *b]``: keys the mapping does not give itself, the first merged first."""
        merged = value if isinstance(value, list) else [value]
        if not all(isinstance(item, dict) for item in merged):
            raise ConstructorError("while constructing a mapping", frame.mark,
                                   "expected a mapping or list of mappings for merging", event.start_mark)
        frame.merged = (frame.merged or []) + merged

    def scalar(self, event: Any) -> Any:
        key = (event.tag, event.implicit, event.value)
        made = self.scalars.get(key, _MISSING)
        if made is _MISSING:
            loader = self.loader
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(ScalarNode, event.value, event.implicit)
            if tag == _MERGE:
                made = _MERGE_KEY
            else:
                node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
                try:  # (deep: a constructor that is a generator, !!set's, is run to its end, or its error)
                    made = loader.construct_object(node, deep=True)
                except yaml.YAMLError:
                    raise
                except Exception as exc:  # PyYAML's own slips (!!int of nothing: IndexError) as its error
                    raise ConstructorError(None, None, f"cannot read {event.value!r} as {tag}: {exc}",
                                           event.start_mark) from None
            if event.anchor is None:
                self.scalars[key] = made
        if event.anchor is not None:
            self.anchor(event, made)
        return made

    def anchor(self, event: Any, value: Any) -> None:
        """``&name`` of ``value``; a name given twice in a document is an error, as PyYAML's composer has it."""
        if event.anchor in self.anchors:
            raise ComposerError(f"found duplicate anchor {event.anchor!r}; first occurrence", None,
                                "second occurrence", event.start_mark)
        self.anchors[event.anchor] = value


def _no_merge(event: Any) -> ConstructorError:
    """safe_load's error for ``<<`` anywhere but as a mapping's key."""
    return ConstructorError(None, None, f"could not determine a constructor for the tag {_MERGE!r}", event.start_mark)


class _MergeKey:
    """The key ``<<`` of a mapping (resolved to the merge tag): what follows it is merged."""


_MERGE_KEY = _MergeKey()
