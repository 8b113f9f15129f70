"""The faster intake paths read mail exactly as the plain library calls did."""

from __future__ import annotations

from email import message_from_bytes, policy

from mailer.parsing import parse_message

_ATTACHMENT = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b'--b1\r\nContent-Type: text/plain; charset="utf-8"\r\n\r\nhello\r\n'
    b"--b1\r\nContent-Type: application/pdf; name*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b1--\r\n"
)


def test_reused_header_objects_read_like_the_default_policy() -> None:
    parsed = parse_message(_ATTACHMENT)
    plain = message_from_bytes(_ATTACHMENT, policy=policy.default)
    ours = list(parsed.message.walk())
    theirs = list(plain.walk())
    assert len(ours) == len(theirs) == 3
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.get_content_type() == reference.get_content_type()
        assert mine.get_filename() == reference.get_filename()
        assert mine.get_payload(decode=True) == reference.get_payload(decode=True)
    assert [a.filename for a in parsed.attachments] == ["résumé.pdf"]
