"""form-js `validate.pattern` (JavaScript regular expressions) matched in linear time with RE2.

form-js checks a pattern with `new RegExp(pattern).test(value)`: no flags (so no `u`, Annex B syntax), and a
*search* (the pattern may match anywhere unless it is anchored). Python's `re` backtracks, so a pattern like
`^(a+)+$` takes exponential time; RE2 never does. This module translates the JavaScript syntax into RE2's, keeping
JavaScript's meaning where the two differ (`.`, `\\s`, identity escapes, `[]`, `[^]`, literal `{`), and refuses
what RE2 cannot do (backreferences, lookaround) or what would silently mean something else, naming the construct.

Known remaining difference: values are matched by Unicode characters, whereas JavaScript without the `u` flag
sees a character outside the Basic Multilingual Plane (an emoji) as two UTF-16 halves; such characters are
therefore refused inside patterns.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2  # type: ignore[import-untyped]

MAX_PATTERN_CHARS = 1_000
# RE2's memory budget for one compiled pattern (its default is 8 MiB); beyond it compilation fails.
MAX_PATTERN_MEMORY = 1 << 20
# Matching costs at most O(len(value) * program size) (RE2 instructions) even when RE2 falls back from its DFA to
# the NFA: measured ~5 ns per unit with `[ab]*a[ab]{200}c`, a pattern made to defeat the DFA; usual patterns run
# in microseconds whatever their size. So a value is checked only within a budget of program size x characters
# (~12 ms at worst), and a pattern too big to check even 1,000 characters is refused at deploy.
CHECK_BUDGET = 2_500_000
MAX_PROGRAM_SIZE = CHECK_BUDGET // 1_000

# JavaScript's WhiteSpace and LineTerminator (what `\s` means there); RE2's `\s` is only [\t\n\f\r ].
_JS_SPACE = r"\x{9}-\x{D}\x{20}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}"
_JS_DOT = r"[^\x{A}\x{D}\x{2028}\x{2029}]"  # `.` without the s flag: anything but a line terminator
_ANYTHING = r"[\x{0}-\x{10FFFF}]"
_NOTHING = r"[^\x{0}-\x{10FFFF}]"
_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ASCII_LETTER = re.compile(r"[A-Za-z]")


class PatternError(ValueError):
    """A pattern that cannot be matched here; the text names the construct and says why."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = MAX_PATTERN_MEMORY
    options.log_errors = False  # errors come back as exceptions; RE2 would also print them to stderr
    options.never_capture = True  # a yes/no test: no submatches to keep
    return options


_OPTIONS = _options()


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The RE2 regex for a form-js pattern, or PatternError. Use `.search(value)`: form-js uses RegExp.test."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"is longer than {MAX_PATTERN_CHARS} characters")
    translated = translate(pattern)
    try:
        compiled = re2.compile(translated, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        if "repetition size" in str(detail):
            detail = f"{detail} (a repetition count, or counts nested inside each other multiplied, is at most 1000)"
        raise PatternError(f"is no valid regular expression: {detail}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise PatternError(f"is too complex to check quickly (about {compiled.programsize} steps per character, "
                           f"at most {MAX_PROGRAM_SIZE})")
    return compiled


def max_checked_chars(pattern: str) -> int:
    """The longest value this pattern is checked against within CHECK_BUDGET; longer values are refused."""
    return CHECK_BUDGET // max(compile_pattern(pattern).programsize, 1)


def matches(pattern: str, value: str) -> bool:
    """form-js semantics: true when the pattern matches anywhere in `value` (RegExp.prototype.test)."""
    return compile_pattern(pattern).search(value) is not None


def translate(pattern: str) -> str:
    """JavaScript (no flags) regex source -> equivalent RE2 source, or PatternError naming the construct."""
    return _Translator(pattern).run()


def _char(cp: int) -> str:
    return f"\\x{{{cp:X}}}"


def _literal(ch: str) -> str:
    if ch.isalnum() or (ord(ch) > 127 and ch.isprintable()):
        return ch
    return _char(ord(ch))


class _Translator:
    def __init__(self, pattern: str):
        self.src = pattern
        self.i = 0
        self.out: list[str] = []
        self.names: set[str] = set()

    def refuse(self, construct: str, why: str) -> PatternError:
        return PatternError(f"uses {construct}: {why}")

    def invalid(self, detail: str) -> PatternError:
        return PatternError(f"is no valid regular expression: {detail}")

    def run(self) -> str:
        src = self.src
        for ch in src:
            if ord(ch) > 0xFFFF:
                raise self.refuse(f"the character {ch!r} (outside the Basic Multilingual Plane)",
                                  "JavaScript without the u flag matches it as two halves; use \\uXXXX pairs")
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise self.refuse("a lone surrogate character", "it is no text character")
        while self.i < len(src):
            ch = src[self.i]
            if ch == "\\":
                self.out.append(self.escape(in_class=False)[1])
            elif ch == "[":
                self.out.append(self.char_class())
            elif ch == "(":
                self.group()
            elif ch == ".":
                self.out.append(_JS_DOT)
                self.i += 1
            elif ch == "{":
                m = _QUANTIFIER.match(src, self.i)
                if m:  # a quantifier, copied as is (RE2 refuses it if nothing precedes it)
                    self.out.append(m.group())
                    self.i = m.end()
                else:  # Annex B: a `{` that starts no quantifier is a literal
                    self.out.append(_literal(ch))
                    self.i += 1
            elif ch in "^$|*+?)":
                self.out.append(ch)
                self.i += 1
            else:  # includes a lone `}` or `]`, literal in JavaScript without the u flag
                self.out.append(_literal(ch))
                self.i += 1
        return "".join(self.out)

    def group(self) -> None:
        src, i = self.src, self.i
        if not src.startswith("(?", i):
            self.out.append("(")
            self.i += 1
            return
        if src.startswith("(?:", i):
            self.out.append("(?:")
            self.i += 3
            return
        for opener, what in (("(?=", "a lookahead (?=...)"), ("(?!", "a negative lookahead (?!...)"),
                             ("(?<=", "a lookbehind (?<=...)"), ("(?<!", "a negative lookbehind (?<!...)")):
            if src.startswith(opener, i):
                raise self.refuse(what, "lookaround cannot be checked in linear time (RE2 has none)")
        if src.startswith("(?<", i):
            end = src.find(">", i + 3)
            name = src[i + 3:end] if end >= 0 else ""
            if end < 0 or not _GROUP_NAME.fullmatch(name):
                raise self.invalid(f"the group name in {src[i:i + 20]!r} must be letters, digits and _ "
                                   "(not starting with a digit)")
            if name in self.names:
                raise self.invalid(f"the group name {name!r} is used twice")
            self.names.add(name)
            self.out.append(f"(?P<{name}>")
            self.i = end + 1
            return
        raise self.invalid(f"{src[i:i + 3]!r} is no JavaScript group (inline flags such as (?i) do not exist there)")

    def escape(self, in_class: bool) -> tuple[str, str]:
        """The escape at self.i (a backslash): ("char", RE2 text) for one character or ("set", RE2 text) for a
        class escape (\\d, \\w, \\s and their negations); `\\S` inside a class comes back as ("notspace", "")."""
        src = self.src
        i = self.i + 1
        if i >= len(src):
            raise self.invalid("a backslash at the end escapes nothing")
        ch = src[i]
        self.i = i + 1
        if ch in "dDwW":
            return "set", "\\" + ch
        if ch == "s":
            return "set", (_JS_SPACE if in_class else f"[{_JS_SPACE}]")
        if ch == "S":
            return ("notspace", "") if in_class else ("set", f"[^{_JS_SPACE}]")
        if ch in "bB" and not in_class:
            return "set", "\\" + ch  # word boundaries: ASCII in both JavaScript and RE2
        if ch == "b":
            return "char", _char(8)  # backspace inside a class
        controls = {"f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if ch in controls:
            return "char", _char(controls[ch])
        if ch == "c":
            nxt = src[i + 1:i + 2]
            if _ASCII_LETTER.fullmatch(nxt) or (in_class and nxt != "" and nxt in "0123456789_"):
                self.i += 1
                return "char", _char(ord(nxt) % 32)
            self.i = i  # Annex B: `\c` not followed by a letter is a backslash, then the c
            return "char", _char(ord("\\"))
        if ch == "x":
            if _HEX2.fullmatch(src[i + 1:i + 3]):
                self.i = i + 3
                return "char", _char(int(src[i + 1:i + 3], 16))
            return "char", "x"
        if ch == "u":
            if not _HEX4.fullmatch(src[i + 1:i + 5]):
                return "char", "u"  # Annex B (\u{...} needs the u flag): a plain u
            cp = int(src[i + 1:i + 5], 16)
            self.i = i + 5
            if 0xD800 <= cp <= 0xDBFF and src.startswith("\\u", self.i) and _HEX4.fullmatch(src[self.i + 2:self.i + 6]):
                low = int(src[self.i + 2:self.i + 6], 16)
                if 0xDC00 <= low <= 0xDFFF:
                    self.i += 6
                    return "char", _char(0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00))
            if 0xD800 <= cp <= 0xDFFF:
                raise self.refuse(f"the lone surrogate \\u{cp:04X}", "values are text, they never contain one")
            return "char", _char(cp)
        if ch == "0" and src[i + 1:i + 2] not in tuple("0123456789"):
            return "char", _char(0)
        if ch in "0123456789":
            if in_class or ch == "0":
                digits = re.match(r"[0-9]{1,3}", src[i:])
                assert digits is not None
                raise self.refuse(f"the octal escape \\{digits.group()}", "legacy octal escapes are not supported; "
                                                                          "use \\xHH")
            raise self.refuse(f"the backreference \\{ch}",
                              "backreferences cannot be checked in linear time (RE2 has none)")
        if ch == "k":
            raise self.refuse("the named backreference \\k", "backreferences cannot be checked in linear time")
        if ch in "pP":
            raise self.refuse(f"\\{ch}", "Unicode property escapes need the u flag, which form-js does not use "
                                         f"(there \\{ch} is just the letter {ch})")
        return "char", _literal(ch)  # identity escape: the character itself

    def char_class(self) -> str:
        src = self.src
        start = self.i
        self.i += 1
        negated = src.startswith("^", self.i)
        if negated:
            self.i += 1
        items: list[tuple[str, str, int | None]] = []  # (kind, RE2 text, code point for single characters)
        while True:
            if self.i >= len(src):
                raise self.invalid(f"the class {src[start:start + 20]!r} has no closing ]")
            ch = src[self.i]
            if ch == "]":  # in JavaScript the first `]` always closes, even right after `[` or `[^`
                self.i += 1
                break
            if ch == "\\":
                kind, text = self.escape(in_class=True)
                cp = _code_point(text) if kind == "char" else None
                items.append((kind, text, cp))
            else:  # an unescaped `-` may join a range; `\-` never does
                items.append(("dash" if ch == "-" else "char", _char(ord(ch)), ord(ch)))
                self.i += 1
        parts: list[str] = []
        not_space = False
        k = 0
        while k < len(items):
            kind, text, cp = items[k]
            if kind == "notspace":
                not_space = True
            elif (k + 2 < len(items) and items[k + 1][0] == "dash" and kind in ("char", "dash")
                  and items[k + 2][0] in ("char", "dash")):
                hi = items[k + 2][2]
                assert cp is not None and hi is not None
                if cp > hi:
                    raise self.invalid(f"in {src[start:self.i]!r} a range starts after its end")
                parts.append(f"{_char(cp)}-{_char(hi)}")
                k += 3
                continue
            else:  # a character, a class escape, or a `-` that joins no range (Annex B: literal)
                parts.append(text)
            k += 1
        body = "".join(parts)
        if not_space:
            if negated:
                raise self.refuse("\\S inside a negated class [^...]", "write the class without it")
            return f"(?:[{body}]|[^{_JS_SPACE}])" if body else f"[^{_JS_SPACE}]"
        if not body:
            return _ANYTHING if negated else _NOTHING
        return f"[{'^' if negated else ''}{body}]"


def _code_point(text: str) -> int | None:
    m = re.fullmatch(r"\\x\{([0-9A-F]+)\}", text)
    if m:
        return int(m.group(1), 16)
    return ord(text) if len(text) == 1 else None
