"""Loki-style filename IOCs: regexes searched case-insensitively in paths and command lines,
with an optional false-positive regex; a literal pre-filter keeps hundreds of them cheap."""

from __future__ import annotations

import re

from quet.indicators.model import Indicator, IndicatorType

_LEADING_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")
_FLAG_BITS = {"a": re.ASCII, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_QUANT = re.compile(r"\{\d*(,\d*)?\}")
_CLASS_ESCAPES = set("dDsSwWbBAZ")


def _split_flags(pattern: str) -> tuple[str, str]:
    """Leading global flags of a pattern and its body. A '(?i)' anywhere is redundant here
    (everything is case-insensitive) and Python 3.11 rejects it past the start."""
    flags = ""
    body = pattern
    while m := _LEADING_FLAGS.match(body):
        flags += m.group(1)
        body = body[m.end() :]
    body = body.replace("(?i)", "")
    return "".join(sorted(set(flags) & set(_FLAG_BITS))), body


def compile_ioc(pattern: str) -> re.Pattern[str]:
    """Compile a filename IOC (or its fp-regex) the way the matcher does; raises re.error."""
    flags, body = _split_flags(pattern)
    bits = re.IGNORECASE
    for f in flags:
        bits |= _FLAG_BITS[f]
    return re.compile(body, bits)


def _skip_class(body: str, i: int) -> int:
    """Index just past the character class opening at body[i] == '['; -1 if unclosed."""
    j = i + 1
    if j < len(body) and body[j] == "^":
        j += 1
    if j < len(body) and body[j] == "]":
        j += 1
    while j < len(body):
        if body[j] == "\\":
            j += 2
            continue
        if body[j] == "]":
            return j + 1
        j += 1
    return -1


def _skip_group(body: str, i: int) -> int:
    """Index just past the group opening at body[i] == '('; -1 if unbalanced."""
    depth = 0
    j = i
    while j < len(body):
        c = body[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _skip_class(body, j)
            if j < 0:
                return -1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return -1


def required_literal(pattern: str) -> str:
    """The longest run of plain characters every match of `pattern` must contain, lower-cased
    ASCII; "" when none can be proven (then the regex always runs)."""
    flags, body = _split_flags(pattern)
    if "x" in flags:
        return ""
    best = ""
    run: list[str] = []

    def flush() -> None:
        nonlocal best
        text = "".join(run)
        if len(text) > len(best):
            best = text
        run.clear()

    i, n = 0, len(body)
    last_literal = False
    while i < n:
        c = body[i]
        if c == "\\":
            if i + 1 >= n:
                return ""
            e = body[i + 1]
            i += 2
            if e.isalnum() or not e.isascii():
                if e not in _CLASS_ESCAPES:
                    return ""  # \x41, \1, \N{...}: not worth decoding, run the regex
                flush()
                last_literal = False
                continue
            run.append(e)
            last_literal = True
        elif c == "[":
            flush()
            i = _skip_class(body, i)
            if i < 0:
                return ""
            last_literal = False
        elif c == "(":
            flush()
            i = _skip_group(body, i)
            if i < 0:
                return ""
            last_literal = False
        elif c == "|":
            return ""
        elif c in ".^$)":
            flush()
            i += 1
            last_literal = False
        elif c in "*?+{":
            if c == "{":
                m = _QUANT.match(body, i)
                if m is None:
                    return ""
                optional = not m.group(0)[1:].startswith(tuple("123456789"))
                i = m.end()
            else:
                optional = c != "+"
                i += 1
            if i < n and body[i] in "?+":
                i += 1  # lazy or possessive: the same characters are required
            if last_literal and optional and run:
                run.pop()
            flush()
            last_literal = False
        else:
            if not c.isascii():
                flush()
                last_literal = False
                i += 1
                continue
            run.append(c)
            last_literal = True
            i += 1
    flush()
    return best.lower()


class FilenameMatcher:
    """Filename regexes; match() returns every indicator whose regex is found in the text."""

    def __init__(self) -> None:
        self._inds: list[Indicator] = []
        self._regexes: list[re.Pattern[str]] = []
        self._fps: list[re.Pattern[str] | None] = []
        self._literals: list[str] = []
        self._by_literal: list[tuple[str, list[int]]] = []
        self._always: list[int] = []
        self._dirty = False

    def add(self, ind: Indicator) -> bool:
        """Add one filename IOC; False (and nothing added) when a regex does not compile."""
        if ind.type is not IndicatorType.FILENAME:
            raise ValueError(f"not a filename indicator: {ind.type.value} {ind.value[:80]!r}")
        try:
            regex = compile_ioc(ind.value)
            fp = compile_ioc(ind.fp_regex) if ind.fp_regex else None
        except (re.error, OverflowError, RecursionError):
            return False
        self._inds.append(ind)
        self._regexes.append(regex)
        self._fps.append(fp)
        self._literals.append(required_literal(ind.value))
        self._dirty = True
        return True

    def freeze(self) -> None:
        groups: dict[str, list[int]] = {}
        always: list[int] = []
        for i, lit in enumerate(self._literals):
            if lit:
                groups.setdefault(lit, []).append(i)
            else:
                always.append(i)
        self._by_literal = list(groups.items())
        self._always = always
        self._dirty = False

    def _candidates(self, text: str) -> list[int]:
        if not text.isascii():
            # Unicode case folding (e.g. 'ſ' matches 's' under re.I) defeats str.lower().
            return list(range(len(self._regexes)))
        low = text.lower()
        found = [i for lit, idx in self._by_literal if lit in low for i in idx]
        return found + self._always

    def match(self, text: str) -> list[Indicator]:
        """Indicators whose regex is found in `text` and whose fp-regex is not.

        Loki's regexes are written for Windows paths; a path with '/' is also tried with '\\'
        so that the same list works on files seen from Linux (e.g. a mounted Windows disk).
        """
        if self._dirty:
            self.freeze()
        if not self._regexes:
            return []
        texts = [text]
        if "/" in text:
            texts.append(text.replace("/", "\\"))
        found: set[int] = set()
        for t in texts:
            for i in self._candidates(t):
                if i not in found and self._regexes[i].search(t):
                    found.add(i)
        hits: list[Indicator] = []
        for i in sorted(found):
            fp = self._fps[i]
            if fp is not None and any(fp.search(t) for t in texts):
                continue
            hits.append(self._inds[i])
        return hits

    def __len__(self) -> int:
        return len(self._inds)
