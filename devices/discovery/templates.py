"""The `value_template` forms that device announcements use, read without a template engine.

Home Assistant discovery payloads carry Jinja templates that pick a value out of a
state message. Nearly all real ones are one expression: `{{ value }}`,
`{{ value_json.temperature }}`, `{{ value_json['DS18B20-2']['Temperature'] }}`, with
filters such as `| float`, `| int`, `| round(1)` and the odd arithmetic with a number
(`{{ (value | float / 60) | round(2) }}`). `compile_template` reads exactly that
grammar into a small tree, evaluated by walking it; nothing is ever executed:

    template := ws '{{' expr '}}' ws
    expr     := term (('+' | '-') term)*
    term     := unary (('*' | '/') unary)*
    unary    := '-' unary | postfix
    postfix  := primary ('.' NAME | '[' STRING | INT ']' | '|' NAME ['(' literals ')'])*
    primary  := 'value' | 'value_json' | NUMBER | STRING | '(' expr ')'

Filters (tighter than arithmetic, as in Jinja): `float`, `int`, `round`, `abs`,
`string`, `lower`, `upper`, `trim`, `default`, `is_defined`, `bool`. Anything else
(`{% if %}` blocks, `is` tests, conditional expressions, other filters or names, text
around the expression) raises `UnsupportedTemplate` with a reason, so the caller can
report it for the device instead of guessing.

A key that the message lacks makes the value `MISSING`: the message says nothing
about that entity (Zigbee2MQTT and Tasmota put several entities' values in one
message, not always all of them). A value that cannot be converted (`"abc" | float`
without a default) raises `TemplateValueError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "MISSING",
    "VALUE",
    "Inputs",
    "Template",
    "TemplateValueError",
    "UnsupportedTemplate",
    "compile_template",
]

MAX_TEMPLATE_CHARS = 1_000


class UnsupportedTemplate(ValueError):
    """A template outside the forms this module reads; the message says which part."""


class TemplateValueError(ValueError):
    """A supported template that cannot turn this message into a value."""


class _Missing:
    """What a key the message lacks evaluates to (Jinja's Undefined)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class Inputs:
    """The message a template looks at: its text, and its JSON parsed once, on demand."""

    __slots__ = ("_json", "_parsed", "text")

    def __init__(self, text: str, parse_json: Callable[[], Any]) -> None:
        self.text = text
        self._json = parse_json
        self._parsed: tuple[Any] | None = None

    @property
    def json(self) -> Any:
        if self._parsed is None:
            self._parsed = (self._json(),)
        return self._parsed[0]


# The tree: each node is a callable of the inputs.
_Node = Callable[[Inputs], Any]


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; `source` as announced, `uses_json` when it reads `value_json`."""

    source: str
    uses_json: bool
    _root: _Node

    def render(self, inputs: Inputs) -> Any:
        """The value for one message: `MISSING` when it lacks the key; raises
        `TemplateValueError` when a value cannot be converted, and whatever
        `inputs.json` raises when the message is not JSON."""
        return self._root(inputs)


VALUE = Template("{{ value }}", False, lambda inputs: inputs.text)
"""The template of an announcement that names none: the payload as text."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+\.\d*|\.\d+|\d+)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<punct>[.\[\]()|,+\-*/])
    )""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"if", "else", "and", "or", "not", "is", "in"})


def compile_template(source: str) -> Template:
    """Reads `source`; raises `UnsupportedTemplate` for anything outside the grammar."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise UnsupportedTemplate(f"longer than {MAX_TEMPLATE_CHARS} characters")
    if "{%" in source or "{#" in source:
        raise UnsupportedTemplate("statements ({% ... %}) are not supported")
    stripped = source.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")) or stripped.count("{{") != 1:
        raise UnsupportedTemplate("only one {{ expression }} with nothing around it is supported")
    tokens = _tokenize(stripped[2:-2])
    parser = _Parser(tokens)
    root = parser.expression()
    left = parser.peek()
    if left in _KEYWORDS:
        raise UnsupportedTemplate(f"'{left}' expressions are not supported")
    if left is not None:
        raise UnsupportedTemplate(f"unexpected {left!r}")
    return Template(source, parser.uses_json, root)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise UnsupportedTemplate(f"cannot read {text[position:].strip()[:20]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._at = 0
        self.uses_json = False

    def peek(self) -> str | None:
        return self._tokens[self._at][1] if self._at < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        if self._at >= len(self._tokens):
            raise UnsupportedTemplate("the expression ends too early")
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _expect(self, text: str) -> None:
        _, found = self._take()
        if found != text:
            raise UnsupportedTemplate(f"expected {text!r}, found {found!r}")

    def expression(self) -> _Node:
        node = self._term()
        while self.peek() in ("+", "-"):
            operator = self._take()[1]
            node = _arithmetic(operator, node, self._term())
        return node

    def _term(self) -> _Node:
        node = self._unary()
        while self.peek() in ("*", "/"):
            operator = self._take()[1]
            node = _arithmetic(operator, node, self._unary())
        return node

    def _unary(self) -> _Node:
        if self.peek() == "-":
            self._take()
            operand = self._unary()
            return _arithmetic("-", lambda inputs: 0, operand)
        return self._postfix()

    def _postfix(self) -> _Node:
        node = self._primary()
        while True:
            following = self.peek()
            if following == ".":
                self._take()
                kind, name = self._take()
                if kind != "name":
                    raise UnsupportedTemplate(f"expected a key after '.', found {name!r}")
                node = _item(node, name)
            elif following == "[":
                self._take()
                kind, key = self._take()
                if kind == "string":
                    node = _item(node, _unquote(key))
                elif kind == "number" and key.isdigit():
                    node = _item(node, int(key))
                else:
                    raise UnsupportedTemplate(f"only a quoted key or an index goes in [...], not {key!r}")
                self._expect("]")
            elif following == "|":
                self._take()
                kind, name = self._take()
                if kind != "name":
                    raise UnsupportedTemplate(f"expected a filter name after '|', found {name!r}")
                arguments: list[Any] = []
                if self.peek() == "(":
                    self._take()
                    while self.peek() != ")":
                        arguments.append(self._literal())
                        if self.peek() == ",":
                            self._take()
                    self._take()
                node = _filter(name, node, arguments)
            else:
                return node

    def _primary(self) -> _Node:
        kind, text = self._take()
        if kind == "name":
            if text == "value":
                return lambda inputs: inputs.text
            if text == "value_json":
                self.uses_json = True
                return lambda inputs: inputs.json
            if text in _KEYWORDS:
                raise UnsupportedTemplate(f"'{text}' expressions are not supported")
            raise UnsupportedTemplate(f"unknown name {text!r} (only value and value_json)")
        if kind == "number":
            number = float(text) if "." in text else int(text)
            return lambda inputs: number
        if kind == "string":
            string = _unquote(text)
            return lambda inputs: string
        if text == "(":
            node = self.expression()
            self._expect(")")
            return node
        raise UnsupportedTemplate(f"unexpected {text!r}")

    def _literal(self) -> Any:
        kind, text = self._take()
        negative = False
        if text == "-":
            negative = True
            kind, text = self._take()
        if kind == "number":
            number: float = float(text) if "." in text else int(text)
            return -number if negative else number
        if kind == "string" and not negative:
            return _unquote(text)
        if kind == "name" and text in ("true", "True", "false", "False", "none", "None") and not negative:
            return {"true": True, "True": True, "false": False, "False": False}.get(text)
        raise UnsupportedTemplate(f"filter arguments must be numbers or strings, not {text!r}")


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _item(node: _Node, key: str | int) -> _Node:
    def get(inputs: Inputs) -> Any:
        container = node(inputs)
        if isinstance(container, dict) and isinstance(key, str):
            return container.get(key, MISSING)
        if isinstance(container, list) and isinstance(key, int):
            return container[key] if key < len(container) else MISSING
        return MISSING

    return get


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TemplateValueError(f"{what}: {value!r} is not a number")
    return value


def _arithmetic(operator: str, left: _Node, right: _Node) -> _Node:
    def compute(inputs: Inputs) -> Any:
        a, b = left(inputs), right(inputs)
        if a is MISSING or b is MISSING:
            return MISSING
        x, y = _number(a, operator), _number(b, operator)
        if operator == "+":
            return x + y
        if operator == "-":
            return x - y
        if operator == "*":
            return x * y
        if y == 0:
            raise TemplateValueError("division by zero")
        return x / y

    return compute


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _filter(name: str, node: _Node, arguments: list[Any]) -> _Node:
    if name == "default":
        fallback = arguments[0] if arguments else ""
        return lambda inputs: fallback if (found := node(inputs)) is MISSING else found
    if name not in _FILTERS:
        raise UnsupportedTemplate(f"filter '{name}' is not supported")
    apply = _FILTERS[name]
    if len(arguments) > 2:
        raise UnsupportedTemplate(f"filter '{name}' takes at most two arguments")

    def filtered(inputs: Inputs) -> Any:
        found = node(inputs)
        return MISSING if found is MISSING else apply(found, arguments)

    return filtered


def _float_filter(value: Any, arguments: list[Any]) -> Any:
    number = _to_float(value)
    if number is None:
        if arguments:
            return arguments[0]
        raise TemplateValueError(f"float: {value!r} is not a number")
    return number


def _int_filter(value: Any, arguments: list[Any]) -> Any:
    number = _to_float(value)
    if number is None or not math.isfinite(number):
        if arguments:
            return arguments[0]
        raise TemplateValueError(f"int: {value!r} is not a number")
    return int(number)


def _round_filter(value: Any, arguments: list[Any]) -> Any:
    precision = arguments[0] if arguments else 0
    if not isinstance(precision, int) or isinstance(precision, bool):
        raise TemplateValueError(f"round: precision {precision!r} is not an integer")
    method = arguments[1] if len(arguments) > 1 else "common"
    number = _number(value, "round")
    if method == "floor":
        scale = 10**precision
        return math.floor(number * scale) / scale
    if method == "ceil":
        scale = 10**precision
        return math.ceil(number * scale) / scale
    return float(round(number, precision))


def _bool_filter(value: Any, arguments: list[Any]) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in ("true", "on", "yes", "enable", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "off", "no", "disable", "0"):
        return False
    if arguments:
        return arguments[0]
    raise TemplateValueError(f"bool: {value!r} is not a boolean")


def _string_of(value: Any) -> str:
    """As Jinja prints it: Python's spelling (`True`, `21.5`)."""
    return value if isinstance(value, str) else str(value)


_FILTERS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "float": _float_filter,
    "int": _int_filter,
    "round": _round_filter,
    "abs": lambda value, arguments: abs(_number(value, "abs")),
    "string": lambda value, arguments: _string_of(value),
    "lower": lambda value, arguments: _string_of(value).lower(),
    "upper": lambda value, arguments: _string_of(value).upper(),
    "trim": lambda value, arguments: _string_of(value).strip(),
    "is_defined": lambda value, arguments: value,
    "bool": _bool_filter,
}
