"""Row conditions (``logS_pred > -5``, ``passes and qed >= 0.5``): a closed grammar, parsed
here and evaluated on a table column by column.

A condition is data, never code. Nothing in it is looked up in Python: a name is a column of
the table and nothing else, and there are no calls, attributes, subscripts or ``@`` variables.
pandas ``query`` was the earlier engine and it is deliberately not used: it resolves
``@name`` in the caller's namespace, so ``@shutil.os.system("...")`` in a pipeline file ran a
shell command.

The grammar, lowest precedence first::

    condition   := or_expr
    or_expr     := and_expr (("or" | "|") and_expr)*
    and_expr    := not_expr (("and" | "&") not_expr)*
    not_expr    := ("not" | "~")* comparison
    comparison  := sum (COMPARE sum)*               a < b < c means a < b and b < c
                 | sum ["not"] "in" "[" [literal ("," literal)* [","]] "]"
    sum         := product (("+" | "-") product)*
    product     := signed (("*" | "/") signed)*
    signed      := ("+" | "-")* atom
    atom        := NUMBER | STRING | "true" | "false" | COLUMN | "(" or_expr ")"
    literal     := ["+" | "-"] NUMBER | STRING | "true" | "false"

- COMPARE is ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``.
- COLUMN is a bare name (letters, digits and ``_``, not starting with a digit) or any name
  in backticks (```IC50 (nM)```); a name may not begin with ``__``.
- NUMBER is a finite decimal (``5``, ``-0.5``, ``1e-3``); STRING is ``'...'`` or ``"..."``
  where a backslash may escape only the quote or a backslash; ``true``/``True`` and
  ``false``/``False`` are the booleans.
- ``&``, ``|`` and ``~`` are other spellings of ``and``, ``or`` and ``not``, with the same
  precedence (as in pandas ``query``: ``a > 1 & b < 2`` is ``(a > 1) and (b < 2)``).
- Arithmetic (``+ - * /``) works on numbers and numeric columns; there is no ``**``.
- A comparison (``in`` and ``not in`` included) with a missing value is false, so
  ``x <= 1`` drops the rows where ``x`` is missing and ``not (x > 1)`` keeps them. A column
  used as a condition on its own must hold true/false values; a missing one counts as false.

Conditions are at most :data:`MAX_LENGTH` characters with at most :data:`MAX_DEPTH` levels of
parentheses, so a hostile file cannot exhaust the stack. Every mistake is a
:class:`~pmtoolkit.core.errors.BadInputError` (exit code 2) that quotes the condition and the
column (1-based) of the offending character.

This module imports neither pandas nor NumPy until a condition is evaluated.
"""
from __future__ import annotations

import difflib
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

from pmtoolkit.core.errors import BadInputError

MAX_LENGTH = 10_000
MAX_DEPTH = 32

GRAMMAR = ("conditions may use column names (`backticks` around names with spaces), numbers, "
           "'strings', true/false, == != < <= > >=, + - * /, and/or/not, parentheses, "
           "in [...] and not in [...]")

COMPARE = ("==", "!=", "<=", ">=", "<", ">")
_SYMBOLS = (*COMPARE, "+", "-", "*", "/", "(", ")", "[", "]", ",", "&", "|", "~")
_KEYWORDS = {"and": "and", "or": "or", "not": "not", "in": "in",
             "true": "true", "True": "true", "false": "false", "False": "false"}
_MISSING = "there is no missing-value literal: a comparison with a missing value is false"
_NO_LITERAL = {"None": _MISSING, "nan": _MISSING, "NaN": _MISSING, "null": _MISSING,
               "inf": "numbers must be finite"}
_NAME = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() accepts superscripts
_BLANK = re.compile(r"\s+")
_AFTER_NUMBER = re.compile(r"[\w.]")
_NO_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _show(text: str) -> str:
    """The condition as quoted in a message (long ones shortened)."""
    return repr(text if len(text) <= 80 else text[:60] + "...")


def _error(text: str, what: str, pos: int | None = None, *, note: str = "",
           hint: str | None = GRAMMAR) -> BadInputError:
    """``condition 'TEXT': WHAT at column N; NOTE (HINT)``."""
    at = f" at column {pos + 1}" if pos is not None else ""
    note = f"; {note}" if note else ""
    return BadInputError(f"condition {_show(text)}: {what}{at}{note}", hint=hint)


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # num | str | name | kw | op | end
    text: str  # as written (for messages)
    value: Any  # the number, the string, the column name, the keyword or the symbol
    pos: int  # 0-based offset in the condition


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        m = _BLANK.match(text, i)
        if m:
            i = m.end()
            continue
        c = text[i]
        if c in _DIGITS or (c == "." and text[i + 1:i + 2] in _DIGITS):
            m = _NUMBER.match(text, i)
            end = m.end()
            if end < n and _AFTER_NUMBER.match(text, end):
                bad = re.match(r"[\w.]+", text[i:]).group(0)
                raise _error(text, f"malformed number {bad!r}", i)
            out.append(_Token("num", m.group(0), _number(text, m.group(0), i), i))
            i = end
        elif c in "'\"":
            value, end = _string(text, i)
            out.append(_Token("str", text[i:end], value, i))
            i = end
        elif c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _error(text, "unterminated `backtick` name starting", i)
            name = text[i + 1:end]
            if not name.strip() or _NO_CONTROL.search(name):
                raise _error(text, "empty or unprintable `backtick` name", i)
            out.append(_Token("name", text[i:end + 1], _column_name(text, name, i), i))
            i = end + 1
        elif (m := _NAME.match(text, i)) is not None:
            word = m.group(0)
            if word in _KEYWORDS:
                out.append(_Token("kw", word, _KEYWORDS[word], i))
            else:
                if word in _NO_LITERAL:
                    raise _error(text, f"unexpected {word!r}", i, note=_NO_LITERAL[word])
                if keyword.iskeyword(word):
                    raise _error(text, f"unexpected {word!r}", i,
                                 note=f"not part of the condition language (a column of that "
                                      f"name: `{word}`)")
                out.append(_Token("name", word, _column_name(text, word, i), i))
            i += len(word)
        else:
            sym = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
            if sym is None:
                raise _error(text, f"unexpected {_char(text, i)}", i, note=_why(text, i))
            if text.startswith("**", i):
                raise _error(text, "unexpected '**'", i, note="no powers")
            out.append(_Token("op", sym, sym, i))
            i += len(sym)
    out.append(_Token("end", "end of condition", None, n))
    return out


def _char(text: str, i: int) -> str:
    c = text[i]
    return repr(c) if c.isprintable() else f"character U+{ord(c):04X}"


def _why(text: str, i: int) -> str:
    c = text[i]
    if c == "=":
        return "compare with =="
    if c == ".":
        return "no attribute access (a column name with a dot goes in `backticks`)"
    if c == "@":
        return "no @variables: a condition sees only the table's columns"
    return ""


def _number(text: str, word: str, pos: int) -> int | float:
    if re.fullmatch(r"[0-9]{1,18}", word):
        return int(word)
    value = float(word)
    if not math.isfinite(value):
        raise _error(text, f"number {word[:20]!r} is out of range", pos)
    return value


def _string(text: str, start: int) -> tuple[str, int]:
    quote, parts, i = text[start], [], start + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(parts), i + 1
        if c == "\\":
            nxt = text[i + 1:i + 2]
            if nxt not in ("\\", "'", '"'):
                raise _error(text, "a backslash in a string may only escape a quote or a "
                                   "backslash", i)
            parts.append(nxt)
            i += 2
            continue
        parts.append(c)
        i += 1
    raise _error(text, "unterminated string starting", start)


def _column_name(text: str, name: str, pos: int) -> str:
    if name.startswith("__"):
        raise _error(text, f"unexpected name {name[:30]!r}", pos,
                     note="names beginning with '__' are not allowed")
    return name


# ----------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Column:
    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    value: int | float | str | bool
    pos: int


@dataclass(frozen=True)
class Arithmetic:
    """``first op1 x1 op2 x2 ...`` of one precedence level, left to right."""

    first: Node
    rest: tuple[tuple[str, Node], ...]
    pos: int


@dataclass(frozen=True)
class Negative:
    operand: Node
    pos: int


@dataclass(frozen=True)
class Compare:
    """``a op1 b op2 c``: ``a op1 b and b op2 c``."""

    operands: tuple[Node, ...]
    ops: tuple[str, ...]
    pos: int  # of the first operator


@dataclass(frozen=True)
class In:
    operand: Node
    items: tuple[int | float | str | bool, ...]
    negate: bool
    pos: int


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True)
class Logical:
    op: str  # and | or
    operands: tuple[Node, ...]
    pos: int


Node = Column | Literal | Arithmetic | Negative | Compare | In | Not | Logical


def _kind(node: Node) -> str:
    """``condition``, ``column`` (a value or a condition), ``number``, ``text`` or ``bool``."""
    if isinstance(node, (Compare, In, Not, Logical)):
        return "condition"
    if isinstance(node, Column):
        return "column"
    if isinstance(node, Literal):
        v = node.value
        return "bool" if isinstance(v, bool) else "text" if isinstance(v, str) else "number"
    return "number"


# ----------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def at(self, *values: str) -> bool:
        return self.tok.kind in ("op", "kw") and self.tok.value in values

    def fail(self, what: str, note: str = "") -> BadInputError:
        return _error(self.text, what, self.tok.pos, note=note)

    def unexpected(self) -> BadInputError:
        t = self.tok
        if t.kind == "end":
            return self.fail("unexpected end")
        shown = t.text if len(t.text) <= 30 else t.text[:27] + "..."
        return self.fail(f"unexpected {shown!r}")

    def parse(self) -> Node:
        node = self.or_expr()
        if self.tok.kind != "end":
            if self.tok.value == "(":
                raise self.fail("unexpected '('", note="no function calls")
            raise self.unexpected()
        self.need_condition(node)
        return node

    def need_condition(self, node: Node) -> None:
        if _kind(node) in ("number", "text"):
            raise _error(self.text, "a value where a condition is needed", node.pos,
                         note="compare it, e.g. x > 1")

    def logical(self, op: str, spellings: tuple[str, ...], sub) -> Node:
        first = sub()
        operands = [first]
        while self.at(*spellings):
            self.take()
            operands.append(sub())
        if len(operands) == 1:
            return first
        for node in operands:
            self.need_condition(node)
        return Logical(op, tuple(operands), first.pos)

    def or_expr(self) -> Node:
        return self.logical("or", ("or", "|"), self.and_expr)

    def and_expr(self) -> Node:
        return self.logical("and", ("and", "&"), self.not_expr)

    def not_expr(self) -> Node:
        nots = []
        while self.at("not", "~"):
            nots.append(self.take())
        node = self.comparison()
        if nots:
            self.need_condition(node)
        # not not x is x: a prefix never deepens the tree (nor the stack when evaluated)
        return Not(node, nots[0].pos) if len(nots) % 2 else node

    def comparison(self) -> Node:
        first = self.sum()
        if self.at("in") or (self.at("not") and self.tokens[self.i + 1].value == "in"
                             and self.tokens[self.i + 1].kind == "kw"):
            negate = self.take().value == "not"
            if negate:
                self.take()
            self.need_value(first)
            return In(first, self.items(), negate, first.pos)
        operands, ops, pos = [first], [], None
        while self.tok.kind == "op" and self.tok.value in COMPARE:
            t = self.take()
            pos = t.pos if pos is None else pos
            ops.append(t.value)
            operands.append(self.sum())
        if not ops:
            return first
        for node in operands:
            self.need_value(node)
        return Compare(tuple(operands), tuple(ops), pos)

    def need_value(self, node: Node) -> None:
        if _kind(node) == "condition":
            raise _error(self.text, "a condition where a value is needed", node.pos,
                         note="compare values, and combine conditions with and/or")

    def items(self) -> tuple[Any, ...]:
        if not self.at("["):
            raise self.fail(f"unexpected {self.tok.text[:30]!r}",
                            note="'in' needs a list of values, e.g. x in [1, 2] or "
                                 "name in ['a', 'b']")
        self.take()
        items: list[Any] = []
        while not self.at("]"):
            sign = 1
            while self.at("+", "-"):
                sign = -sign if self.take().value == "-" else sign
                if self.tok.kind != "num":
                    raise self.fail("a sign needs a number")
            t = self.take()
            if t.kind == "num":
                items.append(sign * t.value)
            elif t.kind == "str":
                items.append(t.value)
            elif t.kind == "kw" and t.value in ("true", "false"):
                items.append(t.value == "true")
            else:
                self.i -= 1
                raise self.fail("unclosed list" if t.kind == "end"
                                else f"unexpected {t.text[:30]!r} in a list",
                                note="a list holds numbers, strings and true/false")
            if self.at(","):
                self.take()
            elif not self.at("]"):
                raise self.fail("expected ',' or ']' in the list")
        self.take()
        return tuple(items)

    def arithmetic(self, ops: tuple[str, ...], sub) -> Node:
        first = sub()
        rest = []
        while self.tok.kind == "op" and self.tok.value in ops:
            op = self.take().value
            rest.append((op, sub()))
        if not rest:
            return first
        for node in (first, *(n for _, n in rest)):
            self.need_number(node)
        return Arithmetic(first, tuple(rest), first.pos)

    def need_number(self, node: Node) -> None:
        if _kind(node) not in ("number", "column"):
            raise _error(self.text, "arithmetic works on numbers and columns only", node.pos)

    def sum(self) -> Node:
        return self.arithmetic(("+", "-"), self.product)

    def product(self) -> Node:
        return self.arithmetic(("*", "/"), self.signed)

    def signed(self) -> Node:
        signs = []
        while self.at("+", "-"):
            signs.append(self.take())
        node = self.atom()
        if not signs:
            return node
        self.need_number(node)
        negative = sum(t.value == "-" for t in signs) % 2 == 1
        if not negative:
            return node
        if isinstance(node, Literal):
            return Literal(-node.value, signs[0].pos)
        return Negative(node, signs[0].pos)

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num" or t.kind == "str":
            self.take()
            return Literal(t.value, t.pos)
        if t.kind == "kw" and t.value in ("true", "false"):
            self.take()
            return Literal(t.value == "true", t.pos)
        if t.kind == "name":
            self.take()
            if self.at("("):
                raise self.fail("unexpected '('", note="no function calls")
            if self.at("["):
                raise self.fail("unexpected '['", note="no subscripts")
            return Column(t.value, t.pos)
        if self.at("("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(f"parentheses nested deeper than {MAX_DEPTH} levels")
            self.take()
            node = self.or_expr()
            if not self.at(")"):
                raise self.fail("expected ')'" + ("" if self.tok.kind == "end" else
                                                  f", got {self.tok.text[:30]!r}"))
            self.take()
            self.depth -= 1
            return node
        raise self.unexpected()


def _columns(node: Node) -> list[str]:
    if isinstance(node, Column):
        return [node.name]
    if isinstance(node, Arithmetic):
        return _columns(node.first) + [c for _, n in node.rest for c in _columns(n)]
    if isinstance(node, (Negative, Not, In)):
        return _columns(node.operand)
    if isinstance(node, (Compare, Logical)):
        return [c for n in node.operands for c in _columns(n)]
    return []


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """A parsed condition: :meth:`mask` evaluates it on a table."""

    text: str
    tree: Node

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns it reads, each once, in order of appearance."""
        return tuple(dict.fromkeys(_columns(self.tree)))

    def mask(self, frame: Any) -> Any:
        """A NumPy boolean array, one value per row of the DataFrame ``frame``: true where the
        row meets the condition."""
        return _Evaluator(self.text, frame).condition(self.tree)


def parse_condition(text: str) -> Condition:
    """Parse ``text`` (the grammar in the module doc); a :class:`BadInputError` naming the
    offending character otherwise. Column names are checked only by :meth:`Condition.mask`."""
    if not isinstance(text, str):
        raise BadInputError(f"a condition must be text, got {text!r}"[:200])
    if len(text) > MAX_LENGTH:
        raise _error(text, f"{len(text):,} characters, more than the {MAX_LENGTH:,} allowed")
    if not text.strip():
        raise _error(text, "empty condition")
    return Condition(text, _Parser(text).parse())


# ----------------------------------------------------------------------------- evaluation


@dataclass
class _Value:
    """Values of every row (an array) or one literal, and which rows are missing."""

    data: Any
    missing: Any  # bool array, or None: nothing missing
    what: str  # for messages: "column 'x'", "5", "'abc'"


class _Evaluator:
    def __init__(self, text: str, frame: Any):
        self.text = text
        self.frame = frame
        self.n = len(frame)
        self.names = {str(c): c for c in frame.columns}

    def fail(self, what: str, pos: int, *, note: str = "", hint: str | None = None
             ) -> BadInputError:
        return _error(self.text, what, pos, note=note, hint=hint)

    # -- conditions -------------------------------------------------------------------
    def condition(self, node: Node):
        import numpy as np

        if isinstance(node, Logical):
            masks = [self.condition(n) for n in node.operands]
            return (np.logical_and if node.op == "and" else np.logical_or).reduce(masks)
        if isinstance(node, Not):
            return ~self.condition(node.operand)
        if isinstance(node, Compare):
            values = [self.value(n) for n in node.operands]
            masks = [self.compare(a, op, b, node.pos)
                     for a, op, b in zip(values, node.ops, values[1:])]
            return np.logical_and.reduce(masks)
        if isinstance(node, In):
            return self.member(self.value(node.operand), node.items, node.negate)
        if isinstance(node, Literal) and isinstance(node.value, bool):
            return np.full(self.n, node.value)
        if isinstance(node, Column):
            return self.truth(node)
        raise self.fail("a value where a condition is needed", node.pos)  # parser refuses it

    def truth(self, node: Column):
        import numpy as np

        v = self.value(node)
        data = np.asarray(v.data)
        ok = ~v.missing
        if data.dtype.kind == "b":
            return data & ok
        if data.dtype.kind == "O" and all(isinstance(x, (bool, np.bool_)) for x in data[ok]):
            out = np.zeros(self.n, dtype=bool)
            out[ok] = data[ok].astype(bool)
            return out
        raise self.fail(f"column {node.name!r} does not hold true/false values", node.pos,
                        note=f"compare it, e.g. `{node.name}` > 0")

    def compare(self, a: _Value, op: str, b: _Value, pos: int):
        import operator

        import numpy as np

        func = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                ">": operator.gt, ">=": operator.ge}[op]
        ok = self.present(a, b)
        out = np.zeros(self.n, dtype=bool)
        left = a.data[ok] if a.missing is not None else a.data
        right = b.data[ok] if b.missing is not None else b.data
        try:
            with np.errstate(all="ignore"):
                result = np.asarray(func(left, right))
            out[ok] = result.astype(bool) if result.ndim else bool(result)
        except (TypeError, ValueError):
            raise self.fail(f"cannot compare {a.what} {op} {b.what}", pos,
                            note="numbers and text (or other different kinds) do not "
                                 "order") from None
        return out

    def member(self, v: _Value, items: tuple[Any, ...], negate: bool):
        import numpy as np
        import pandas as pd

        ok = ~v.missing if v.missing is not None else np.ones(self.n, dtype=bool)
        out = np.zeros(self.n, dtype=bool)
        if v.missing is None:  # a literal on the left
            hit = any(v.data == x for x in items)
            out[:] = hit != negate
            return out
        hits = pd.Series(v.data[ok]).isin(list(items)).to_numpy(dtype=bool)
        out[ok] = ~hits if negate else hits
        return out

    def present(self, *values: _Value):
        import numpy as np

        ok = np.ones(self.n, dtype=bool)
        for v in values:
            if v.missing is not None:
                ok &= ~v.missing
        return ok

    # -- values -----------------------------------------------------------------------
    def value(self, node: Node) -> _Value:
        import numpy as np

        if isinstance(node, Literal):
            return _Value(node.value, None, repr(node.value))
        if isinstance(node, Column):
            return self.column(node)
        if isinstance(node, Negative):
            v = self.number(node.operand)
            return _Value(-v.data, v.missing, f"-{v.what}")
        if isinstance(node, Arithmetic):
            funcs = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
            acc = self.number(node.first)
            data, missing = acc.data, acc.missing
            with np.errstate(all="ignore"):
                for op, operand in node.rest:
                    v = self.number(operand)
                    data = funcs[op](data, v.data)
                    missing = v.missing if missing is None else (
                        missing if v.missing is None else missing | v.missing)
            if np.ndim(data):
                nan = np.isnan(data)  # 0/0, inf - inf
                missing = nan if missing is None else missing | nan
            elif math.isnan(data):
                missing = np.ones(self.n, dtype=bool)
                data = np.full(self.n, np.nan)
            return _Value(data, missing, "an arithmetic result")
        raise self.fail("a condition where a value is needed", node.pos)  # parser refuses it

    def number(self, node: Node) -> _Value:
        import numpy as np

        v = self.value(node)
        if v.missing is None:  # a literal: float, so that integer literals cannot overflow
            return _Value(float(v.data), None, v.what)
        data = np.asarray(v.data)
        if data.dtype.kind in "iuf":
            return _Value(data.astype(np.float64), v.missing, v.what)
        raise self.fail(f"{v.what} does not hold numbers", node.pos,
                        note="arithmetic needs numbers")

    def column(self, node: Column) -> _Value:
        import numpy as np
        import pandas as pd

        if node.name not in self.names:
            valid = sorted(self.names)
            close = difflib.get_close_matches(node.name, valid, n=1)
            hint = (f"did you mean {close[0]!r}? " if close else "") + "columns: " + (
                ", ".join(valid) or "none")
            raise self.fail(f"no column {node.name!r}", node.pos, hint=hint)
        series = self.frame[self.names[node.name]]
        if isinstance(series, pd.DataFrame):
            raise self.fail(f"the table has several columns named {node.name!r}", node.pos)
        missing = series.isna().to_numpy(dtype=bool)
        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
            data = series.to_numpy()
        elif pd.api.types.is_bool_dtype(dtype):
            data = series.to_numpy(dtype=bool, na_value=False)
        elif pd.api.types.is_numeric_dtype(dtype):
            data = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            data = series.to_numpy(dtype=object)
        return _Value(data, missing, f"column {node.name!r}")


__all__ = ["GRAMMAR", "MAX_DEPTH", "MAX_LENGTH", "Condition", "parse_condition"]
