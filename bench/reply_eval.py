"""How often the new text of a reply comes out right, on the corpus sets that say what the
new text should be; and how long the two performance traps take.

    .venv/bin/python bench/reply_eval.py [--shared ../shared] [--misses] [--candidates] [--json]

Parsers compared (each gets the same body text, as ``mailer.parsing`` extracts it):

- **today**: ``new_text_of`` as it was before issue 21 part 4 — mail-parser-reply's
  ``parse_reply`` (en, es, de, fr, it, nl, pl, sv, da, cs) and a ``>``-line stripper —
  replicated here so that the figure stays reproducible after the change (where
  mail-parser-reply, no longer a dependency, is installed).
- **final**: ``mailer.bodies.new_text_of`` of this tree.
- with ``--candidates``, the other kept libraries looked at, where installed (they are not
  dependencies of ticketd: install them in a scratch environment): quotequail's ``quote``
  (the parts it shows), talon's ``quotations.extract_from_plain`` (its no-ML part) and
  email-reply-parser's ``parse_reply``.

Corpora (under ``<shared>/corpus``):

- **talon** ``standard_replies/*.eml``: the text/plain part must reduce to ``Hello``.  The
  companions ``iphone_reply_text`` and ``sparrow_reply_text`` keep the signature under it
  ("Sent from my iPhone", "-- xxx Sent with Sparrow"): talon's quote extractor leaves
  signatures to its signature module, while ticketd's new text cuts them, so ``Hello`` is
  expected there too.
- **trimmer** ``email_reply_trimmer/test/emails/X.txt``: must reduce to ``test/trimmed/X.txt``.
- **erp** ``email_reply_parser/test/emails/*.txt``: the index notes give the fragments
  github's parser finds, not always a text; ``_ERP_EXPECTED`` below writes out the writer's
  own words that those notes imply, in ticketd's terms (quoted lines, the attribution line
  above them, signatures and list footers cut, the writer's indentation kept).  It differs
  from github's ``visible_text`` where that keeps the quote of a bottom-posted reply.

A result is *exact* when it equals the expected text (both without leading and trailing
blank space, CRLF read as LF) and *loose* when the words are the same in the same order
(whitespace ignored).  Timing: the slowest of three runs over ``pathological.txt`` and
``email_long_quote.txt`` (github's parser asks for well under a second each).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailer.bodies import new_text_of
from mailer.parsing import parse_message

REPO = Path(__file__).resolve().parents[1]
Parser = Callable[[str], str]

_ERP_EXPECTED: dict[str, str] = {
    "correct_sig.txt": "this is an email with a correct -- signature.",
    "email_1_1.txt": (
        "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after \n"
        "running a test?\nI am currently using the Java HTTP API."
    ),
    "email_1_2.txt": (
        "Hi,\n\nYou can list the keys for the bucket and call delete for each. Or if you\n"
        "put the keys (and kept track of them in your test) you can delete them\n"
        "one at a time (without incurring the cost of calling list first.)\n\n"
        "Something like:\n\n"
        '        String bucket = "my_bucket";\n'
        "        BucketResponse bucketResponse = riakClient.listBucket(bucket);\n"
        "        RiakBucketInfo bucketInfo = bucketResponse.getBucketInfo();\n"
        "        \n"
        "        for(String key : bucketInfo.getKeys()) {\n"
        "            riakClient.delete(bucket, key);\n"
        "        }\n\n\n"
        "would do it.\n\nSee also \n\nhttp://wiki.basho.com/REST-API.html#Bucket-operations\n\n"
        "which says \n\n"
        '"At the moment there is no straightforward way to delete an entire\n'
        "Bucket. There is, however, an open ticket for the feature. To delete all\n"
        'the keys in a bucket, you\u2019ll need to delete them all individually."'
    ),
    "email_1_3.txt": "Oh thanks.\n\nHaving the function would be great.",
    "email_1_4.txt": "Awesome! I haven't had another problem with it.",
    "email_1_5.txt": "",  # the whole text: nothing to cut
    "email_1_6.txt": "I get proper rendering as well.\n\nSent from a magnificent torch of pixels",
    "email_1_7.txt": ":+1:",
    "email_1_8.txt": "I will reply under this one\n\nand under this.",
    "email_2_1.txt": "Outlook with a reply",
    "email_2_2.txt": "Outlook with a reply directly above line",
    "email_2_3.txt": "Outlook with a reply directly above line",
    "email_BlackBerry.txt": "Here is another email",
    "email_bullets.txt": (
        "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n\n"
        "   - how about bullets\n   - and another"
    ),
    "email_iPhone.txt": "Here is another email",
    "email_multi_word_sent_from_my_mobile_device.txt": "Here is another email",
    "email_one_is_not_on.txt": (
        "Thank, this is really helpful.\n\nOne outstanding question I had:\n\n"
        "Locally (on development), when I run..."
    ),
    "email_sent_from_my_not_signature.txt": (
        "Here is another email\n\nSent from my desk, is much easier then my mobile phone."
    ),
    "email_sig_delimiter_in_middle_of_line.txt": "",  # the whole text
    "greedy_on.txt": (
        "On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\n"
        "This should connect to TextMate (on your Mac, via the tunnel). If that\n"
        "fails, the tunnel is not working."
    ),
    "pathological.txt": (
        "I think you're onto something. I will try to fix the problem as soon as I\n"
        "get back to a computer."
    ),
}
_TIMED = ("pathological.txt", "email_long_quote.txt")


@dataclass(frozen=True)
class Case:
    corpus: str
    name: str
    text: str
    expected: str


@dataclass
class Score:
    exact: int = 0
    loose: int = 0
    total: int = 0
    misses: list[str] = field(default_factory=list)


def _normal(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def exact_match(result: str, expected: str) -> bool:
    return _normal(result) == _normal(expected)


def loose_match(result: str, expected: str) -> bool:
    return result.split() == expected.split()


# --- the corpora ---------------------------------------------------------------------------------


def talon_cases(corpus: Path) -> Iterator[Case]:
    folder = corpus / "talon" / "tests" / "fixtures" / "standard_replies"
    for eml in sorted(folder.glob("*.eml")):
        yield Case("talon", eml.name, parse_message(eml.read_bytes()).text, "Hello")


def trimmer_cases(corpus: Path) -> Iterator[Case]:
    root = corpus / "email_reply_trimmer" / "test"
    for source in sorted((root / "emails").glob("*.txt")):
        expected = (root / "trimmed" / source.name).read_text(encoding="utf-8")
        yield Case("trimmer", source.name, source.read_text(encoding="utf-8"), expected)


def erp_cases(corpus: Path) -> Iterator[Case]:
    folder = corpus / "email_reply_parser" / "test" / "emails"
    for name, expected in sorted(_ERP_EXPECTED.items()):
        text = (folder / name).read_text(encoding="utf-8")
        yield Case("erp", name, text, expected or text)


def all_cases(shared: Path) -> list[Case]:
    corpus = shared / "corpus"
    return [*talon_cases(corpus), *trimmer_cases(corpus), *erp_cases(corpus)]


# --- the parsers -----------------------------------------------------------------------------


def today_parser() -> Parser | None:
    """``new_text_of`` before issue 21 part 4 (mail-parser-reply and a ``>`` stripper);
    None where mail-parser-reply, no longer a dependency, is not installed."""
    try:
        from mailparser_reply import EmailReplyParser
    except ImportError:
        print("today: mail-parser-reply not installed (pip install mail-parser-reply)")
        return None

    languages = ["en", "es", "de", "fr", "it", "nl", "pl", "sv", "da", "cs"]
    library = EmailReplyParser(languages=languages)
    quoted = re.compile(r"^\s*>")
    attribution = re.compile(r"(wrote|escribi[oó]|schrieb|a [ée]crit|написал)\s*:\s*$", re.I)

    def without_quoted(text: str) -> str:
        lines = text.splitlines()
        kept = [
            line
            for i, line in enumerate(lines)
            if not quoted.match(line)
            and not (i + 1 < len(lines) and quoted.match(lines[i + 1]) and attribution.search(line))
        ]
        return "\n".join(kept).strip() if any(quoted.match(x) for x in lines) else text

    def parse(text: str) -> str:
        if not text.strip() or len(text) > 100_000:
            return text.strip()
        reply = str(library.parse_reply(text)).strip()
        return without_quoted(reply) or reply or text.strip()

    return parse


def candidate_parsers() -> dict[str, Parser]:
    """The other libraries, where this environment has them."""
    found: dict[str, Parser] = {}
    try:
        import quotequail

        found["quotequail"] = lambda t: "\n".join(
            part for shown, part in quotequail.quote(t, quote_intro_line=True) if shown
        )
    except ImportError:
        print("quotequail: not installed", file=sys.stderr)
    try:
        from talon import quotations

        found["talon"] = quotations.extract_from_plain
    except ImportError:
        print("talon: not installed", file=sys.stderr)
    try:
        from email_reply_parser import EmailReplyParser

        found["email-reply-parser"] = EmailReplyParser.parse_reply
    except ImportError:
        print("email-reply-parser: not installed", file=sys.stderr)
    return found


# --- running ----------------------------------------------------------------------------------


def _safe(parser: Parser, text: str) -> str:
    try:
        return str(parser(text))
    except Exception as exc:  # noqa: BLE001 - a candidate's crash is a miss, not the end
        return f"<{type(exc).__name__}>"


def score(parser: Parser, cases: list[Case]) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for case in cases:
        result = _safe(parser, case.text)
        tally = scores.setdefault(case.corpus, Score())
        tally.total += 1
        tally.exact += exact_match(result, case.expected)
        tally.loose += loose_match(result, case.expected)
        if not loose_match(result, case.expected):
            tally.misses.append(case.name)
    return scores


def slowest_seconds(parser: Parser, text: str, runs: int = 3) -> float:
    worst = 0.0
    for _ in range(runs):
        start = time.perf_counter()
        _safe(parser, text)
        worst = max(worst, time.perf_counter() - start)
    return worst


def timings(parser: Parser, shared: Path) -> dict[str, float]:
    folder = shared / "corpus" / "email_reply_parser" / "test" / "emails"
    texts = {name: (folder / name).read_text(encoding="utf-8") for name in _TIMED}
    return {name: round(slowest_seconds(parser, text), 4) for name, text in texts.items()}


def report(name: str, scores: dict[str, Score], times: dict[str, float], misses: bool) -> None:
    parts = [f"{c} {s.exact}/{s.loose}/{s.total}" for c, s in scores.items()]
    exact = sum(s.exact for s in scores.values())
    loose = sum(s.loose for s in scores.values())
    total = sum(s.total for s in scores.values())
    clock = ", ".join(f"{n.removesuffix('.txt')} {t:.3f}s" for n, t in times.items())
    print(f"{name:20} {' | '.join(parts)} | all {exact}/{loose}/{total} | {clock}")
    if misses:
        for corpus, tally in scores.items():
            if tally.misses:
                print(f"{'':20}   {corpus} misses: {', '.join(tally.misses)}")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    cases = all_cases(args.shared)
    today = today_parser()
    parsers: dict[str, Parser] = {"today": today} if today else {}
    parsers["final"] = new_text_of
    if args.candidates:
        parsers.update(candidate_parsers())
    results = {}
    if not args.json:
        print(f"{'parser':20} per corpus exact/loose/total; slowest of 3 runs")
    for name, parser in parsers.items():
        scores, times = score(parser, cases), timings(parser, args.shared)
        results[name] = {"scores": {c: vars(s) for c, s in scores.items()}, "seconds": times}
        if not args.json:
            report(name, scores, times, args.misses)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--misses", action="store_true", help="name the files missed")
    parser.add_argument("--candidates", action="store_true", help="also the other libraries")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
