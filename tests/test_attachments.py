"""Attachments: listed with name, type, size and hash; winmail.dat unpacked."""

from __future__ import annotations

import hashlib
import struct

from mailer.parsing import parse_message

from .mail import make_mail


def _tnef_attribute(level: int, attribute: int, data: bytes) -> bytes:
    header = struct.pack("<BII", level, attribute, len(data))
    return header + data + struct.pack("<H", sum(data) % 65536)


def winmail_dat(filename: bytes, data: bytes) -> bytes:
    """A minimal TNEF stream holding one file (MS-OXTNEF: signature, then attributes)."""
    return (
        struct.pack("<IH", 0x223E9F78, 1)
        + _tnef_attribute(1, 0x00089006, struct.pack("<I", 0x00010000))  # attTnefVersion
        + _tnef_attribute(2, 0x00069002, b"\x01\x00" + b"\x00" * 12)  # attAttachRendData
        + _tnef_attribute(2, 0x00018010, filename + b"\x00")  # attAttachTitle
        + _tnef_attribute(2, 0x0006800F, data)  # attAttachData
    )


def test_attachments_are_listed() -> None:
    raw = make_mail(attachments=[("form.pdf", "application/pdf", b"%PDF-1.4 fake")])
    (attachment,) = parse_message(raw).attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "form.pdf",
        "application/pdf",
        13,
    )
    assert attachment.sha256 == hashlib.sha256(b"%PDF-1.4 fake").hexdigest()
    assert not attachment.is_tnef


def test_winmail_dat_is_recognised_and_unpacked() -> None:
    tnef = winmail_dat(b"claim notes.txt", b"please call back")
    raw = make_mail(attachments=[("winmail.dat", "application/ms-tnef", tnef)])
    wrapper, inner = parse_message(raw).attachments
    assert wrapper.is_tnef and wrapper.filename == "winmail.dat"
    assert (inner.filename, inner.content_type, inner.payload) == (
        "claim notes.txt",
        "text/plain",
        b"please call back",
    )


def test_damaged_winmail_dat_is_kept_as_it_is() -> None:
    raw = make_mail(attachments=[("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22junk")])
    (wrapper,) = parse_message(raw).attachments
    assert wrapper.is_tnef and wrapper.size == 8
