"""Small disks for the fault tests: a tmpfs for a block, and filling one to its last byte."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import unavailable


@contextmanager
def tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``mount`` for the block (the tests run as root); unavailable otherwise."""
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        unavailable(f"cannot mount a tmpfs to fill: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system has not one byte left; delete it to free the space."""
    filler = directory / "filler"
    size = 1 << 16
    with filler.open("wb", buffering=0) as handle:
        while size:
            try:
                handle.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2
    return filler
