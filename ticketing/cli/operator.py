"""Who runs an operator's command, for the audit trail: ``--by NAME``, else the account.

The audit actor is ``operator:NAME``; the name defaults to ``$USER``,
``$LOGNAME``, then the OS account.
"""

from __future__ import annotations

import getpass
import os

import click

__all__ = ["by_option", "operator_actor"]

_MAX_OPERATOR = 200  # the audit actor column holds 254 characters with "operator:"


def _check_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    name = value.strip()
    if not name or len(name) > _MAX_OPERATOR or not name.isprintable():
        raise click.BadParameter(f"a name of 1 to {_MAX_OPERATOR} printable characters")
    return name


by_option = click.option(
    "--by",
    metavar="NAME",
    default=None,
    callback=_check_by,
    help="Who does this, for the audit trail (default: $USER, $LOGNAME, the OS account).",
)


def _account_name() -> str | None:
    """The person at the terminal.  Under systemd or in a container $USER and $LOGNAME are
    often unset, so the OS account comes next; a uid with no account name gives none."""
    name = os.environ.get("USER") or os.environ.get("LOGNAME")
    if name:
        return name
    try:
        return getpass.getuser() or None
    except (OSError, KeyError):  # KeyError before Python 3.13, OSError since
        return None


def operator_actor(by: str | None) -> str:
    """The audit actor of an operator's command."""
    return f"operator:{by or _account_name() or 'unknown'}"
