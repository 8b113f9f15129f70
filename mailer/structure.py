"""What a message's raw bytes look like before the stdlib parser reads them.

Two questions the parser cannot answer safely by itself:

* where the header starts.  Some MTAs (Exchange's bounces among them) send a
  blank line before the first header, some clients a UTF-8 byte-order mark;
  the parser takes either as the end of an empty header and reads the whole
  message as a body.  ``header_start`` skips those and nothing else: a message
  whose first non-blank line is no header field still has no header.
* how deeply its parts nest.  The parser recurses once for every nested part
  (a ``message/rfc822`` inside a multipart inside ...) and fails with a
  ``RecursionError`` near a thousand levels; writing an embedded message back
  (``as_bytes``) fails near 250.  ``too_deeply_nested`` says whether a message
  nests beyond ``MAX_NESTING`` without running the parser: almost always by
  counting its ``Content-Type`` fields (a part that holds others declares so in
  one; only a digest's parts go without, every other level), else by following
  its boundaries as the parser would.

Neither changes the bytes: the raw message, its hash and its dedup key stay
those of the bytes as received.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from itertools import islice

from mailer.headers import READ_POLICY

__all__ = ["MAX_NESTING", "header_start", "too_deeply_nested"]

# Real mail nests a few levels (a forward of a forward: two each); a hundred leaves the
# parser, the generator that re-serialises embedded messages and the walkers far from
# Python's recursion limit.
MAX_NESTING = 100

_BLANK_LINES = rb"(?:[ \t]*(?:\r\n|\n|\r))*"
_LEADING = re.compile(_BLANK_LINES + rb"(?:\xef\xbb\xbf)?" + _BLANK_LINES)  # a mark among them
_TYPE_FIELD = re.compile(rb"-[Tt][Yy][Pp][Ee]:")  # every Content-Type field has one
_EOL = re.compile(rb"\r\n|\r|\n")
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")  # the feedparser's headerRE
_LINE_START_DASHES = re.compile(rb"(?:^|(?<=[\r\n]))--")


def header_start(raw: bytes) -> int:
    """Where the first header field of ``raw`` begins: after blank lines (empty, or spaces
    and tabs only) and a UTF-8 byte-order mark among them, if any."""
    found = _LEADING.match(raw)
    return found.end() if found else 0


def too_deeply_nested(raw: bytes, limit: int = MAX_NESTING) -> bool:
    """Whether the parser would nest the parts of ``raw`` (read from its header on) more
    than ``limit`` levels deep, the message itself being level 1."""
    start = header_start(raw)
    fields = sum(1 for _ in islice(_TYPE_FIELD.finditer(raw, start), limit))
    if 2 * fields + 1 <= limit:  # no message of so few Content-Type fields nests deeper
        return False
    return _Scan(raw).deepest(start, limit) > limit


@dataclass
class _Level:
    """An open part that holds others: a multipart (``--`` and its boundary) or a
    message/* (``b""``: no line ends it but an enclosing boundary)."""

    dashes: bytes
    digest: bool = False  # a multipart/digest: its parts are message/rfc822 by default


@dataclass
class _Scan:
    """The parser's nesting, followed over the raw bytes without building the tree.

    Each part's header is read with the parser's own policy (its content type and
    boundary); a body is skipped to the next line that could be a boundary.  A line
    that is the boundary of an open multipart ends every part inside it, the
    outermost such multipart taking it first, as the parser's end-of-input checks do.
    """

    raw: bytes
    stack: list[_Level] = field(default_factory=list)

    def deepest(self, position: int, limit: int) -> int:
        """The deepest level a part reaches, the header at ``position`` being level 1;
        the reading stops once it is past ``limit``."""
        deepest = 1
        while deepest <= limit:
            deepest = max(deepest, len(self.stack) + 1)  # the part that starts here
            lines, position = self._header(position)
            kind, part = self._kind(lines)
            if kind == "message/delivery-status":  # blocks of fields: two levels more at most
                deepest = max(deepest, len(self.stack) + 3)
            elif kind.startswith("message/"):
                self.stack.append(_Level(b""))
                continue  # the embedded message's header follows at once (even at the end)
            elif kind.startswith("multipart/") and (dashes := _dashes(part)) is not None:
                self.stack.append(_Level(dashes, kind == "multipart/digest"))
            next_part = self._body(position)
            if next_part is None:
                break
            position = next_part
        return deepest

    def _header(self, position: int) -> tuple[list[bytes], int]:
        """The header lines from ``position`` and where the body starts: after the blank
        line that ends the header, or at the first line that is no header field."""
        lines: list[bytes] = []
        while position < len(self.raw):
            line, after = self._line(position)
            if not line:
                return lines, after
            if self._boundary_level(line) is not None or not _HEADER_LINE.match(line):
                return lines, position
            lines.append(line)
            position = after
        return lines, position

    def _kind(self, lines: list[bytes]) -> tuple[str, Message]:
        """The content type of a part with these header lines, as the parser decides it."""
        part = BytesHeaderParser(policy=READ_POLICY).parsebytes(b"\n".join([*lines, b""]))
        if self.stack and self.stack[-1].digest:
            part.set_default_type("message/rfc822")
        try:
            return part.get_content_type(), part
        except (ValueError, IndexError, AttributeError):
            return "text/plain", part

    def _body(self, position: int) -> int | None:
        """Past the next boundary line that starts a part (closing what it ends); ``None``
        at the end of the input."""
        while (found := _LINE_START_DASHES.search(self.raw, position)) is not None:
            line, position = self._line(found.start())
            level = self._boundary_level(line)
            if level is None:
                continue
            closing = line.rstrip(b" \t") != self.stack[level].dashes
            del self.stack[level + (0 if closing else 1) :]
            if not closing:
                return self._past_repeats(position, level)
        return None

    def _past_repeats(self, position: int, level: int) -> int:
        """The parser takes boundary lines that follow a part's boundary (its closing one
        too) as repeats of it: the part starts after them."""
        while position < len(self.raw):
            line, after = self._line(position)
            if self._boundary_level(line) != level:
                break
            position = after
        return position

    def _boundary_level(self, line: bytes) -> int | None:
        """The outermost open multipart whose boundary ``line`` is, else ``None``."""
        if not line.startswith(b"--"):
            return None
        bare = line.rstrip(b" \t")
        for level, open_part in enumerate(self.stack):
            if open_part.dashes and bare in (open_part.dashes, open_part.dashes + b"--"):
                return level
        return None

    def _line(self, position: int) -> tuple[bytes, int]:
        """The line at ``position`` without its ending, and where the next one starts."""
        end = _EOL.search(self.raw, position)
        if end is None:
            return self.raw[position:], len(self.raw)
        return self.raw[position : end.start()], end.end()


def _dashes(part: Message) -> bytes | None:
    """``--`` and the boundary of a multipart as the parser matches lines against it: an
    empty boundary is one; one the parser cannot read is none (the part holds no parts);
    one no line can match (not ASCII) holds no parts either, as a level of its own."""
    try:
        boundary = part.get_boundary()
    except (ValueError, IndexError, AttributeError, LookupError):
        return None
    if boundary is None:
        return None
    try:
        return b"--" + boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return b""
