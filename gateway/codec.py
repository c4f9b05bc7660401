"""Frozen dataclasses to JSON-able data and back, driven by their type hints.

Used for the state snapshot, so that a new field in a state class needs no
hand-written serialisation (and an old snapshot without it loads with the
field's default).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


def _orjson_default(value: Any) -> Any:
    if isinstance(value, MappingProxyType):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON bytes of a state object (orjson handles dataclasses and enums in C,
    ~8x faster than walking them in Python), for the snapshot's hot loop."""
    return orjson.dumps(value, default=_orjson_default)


def decode(kind: Any, data: Any) -> Any:
    """`data` (from `dumps`, parsed) as an instance of the type `kind`."""
    return _decoder(kind)(data)


Decoder = Callable[[Any], Any]


def _keep(data: Any) -> Any:
    return data


@functools.cache
def _decoder(kind: Any) -> Decoder:
    """The function decoding data as `kind`, worked out once per type: a restart decodes
    every room's stored state (2,000 rooms: tens of thousands of objects), and reading
    a dataclass's type hints again for each object was most of a restart's time."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _optional(_decoder(options[0])) if len(options) == 1 else _keep
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        return _dataclass_decoder(kind)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _optional(kind)
    if origin in (Mapping, dict, typing.Mapping) or origin is MappingProxyType:
        _, item_kind = typing.get_args(kind) or (str, Any)
        item = _decoder(item_kind)
        if origin is dict:
            return _optional(lambda data: {key: item(value) for key, value in data.items()})
        return _optional(lambda data: MappingProxyType({key: item(value) for key, value in data.items()}))
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            each = _decoder(args[0])
            return _optional(lambda data: tuple(each(value) for value in data))
        parts = tuple(_decoder(arg) for arg in args)
        return _optional(lambda data: tuple(part(value) for part, value in zip(parts, data, strict=False)))
    if origin in (list, frozenset, set):
        (item_kind,) = typing.get_args(kind)
        item = _decoder(item_kind)
        return _optional(lambda data: origin(item(value) for value in data))
    return _keep


def _optional(decode_present: Decoder) -> Decoder:
    """None stays None, whatever the type says."""
    return lambda data: None if data is None else decode_present(data)


def _dataclass_decoder(kind: type) -> Decoder:
    # Hints are resolved on first use, not here: a dataclass may name itself.
    resolved: list[dict[str, Decoder]] = []

    def decode_fields(data: Any) -> Any:
        if not resolved:
            hints = typing.get_type_hints(kind)
            resolved.append({f.name: _decoder(hints[f.name]) for f in dataclasses.fields(kind) if f.init})
        fields = resolved[0]
        return kind(**{name: fields[name](value) for name, value in data.items() if name in fields})

    return _optional(decode_fields)


def decode_as(cls: type[T], data: Any) -> T:
    result: T = decode(cls, data)
    return result
