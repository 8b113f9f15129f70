"""``ticketd users add|passwd|disable|enable|list``: the people who sign in to the console.

The first admin is made here (the console has nobody to sign in as before);
every change is audited with the operator (``--by``).  Passwords are read from
the terminal (asked twice) or, for scripts, from the first line of stdin
(``--password-stdin``), never from the command line, where ``ps`` would show it.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from ticketing.cli.context import Context, pass_context
from ticketing.cli.operator import by_option, operator_actor
from ticketing.cli.output import emit_json, emit_table
from ticketing.desk.accounts import (
    MIN_PASSWORD,
    ROLES,
    Role,
    add_account,
    disable_account,
    list_accounts,
    set_password,
)
from ticketing.store.db import transaction
from ticketing.store.migrate import require_current

__all__ = ["users_group"]

_password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    prompt = f"Password ({MIN_PASSWORD} characters or more)"
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


@click.group("users")
def users_group() -> None:
    """The people who sign in to the console (staff of the directory only)."""


@users_group.command("add")
@click.argument("address")
@click.option("--name", default=None, help="Their name, if [staff] people does not list them.")
@click.option("--role", type=click.Choice(ROLES), default=None, help="Likewise their role.")
@click.option("--team", default=None, help="Likewise their team (a key of [teams]).")
@click.option("--sso-only", is_flag=True, help="No password: they sign in through the proxy.")
@_password_stdin
@by_option
@pass_context
def add_command(
    ctx: Context,
    address: str,
    name: str | None,
    role: Role | None,
    team: str | None,
    sso_only: bool,
    password_stdin: bool,
    by: str | None,
) -> None:
    """Give a person of the staff directory a console account."""
    require_current(ctx.engine)
    password = None if sso_only else _password(password_stdin)
    with transaction(ctx.engine) as session:
        account = add_account(
            session,
            ctx.loaded.config.staff,
            address,
            actor=operator_actor(by),
            password=password,
            name=name,
            role=role,
            team=team,
        )
    click.echo(f"{account.address}: {account.name}, {account.role}, may sign in")


@users_group.command("passwd")
@click.argument("address")
@_password_stdin
@by_option
@pass_context
def passwd_command(ctx: Context, address: str, password_stdin: bool, by: str | None) -> None:
    """Set a new password (the person is signed out everywhere)."""
    require_current(ctx.engine)
    password = _password(password_stdin)
    with transaction(ctx.engine) as session:
        account = set_password(session, address, password, actor=operator_actor(by))
    click.echo(f"{account.address}: new password set")


def _switch(name: str, disabled: bool, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("address")
    @by_option
    @pass_context
    def command(ctx: Context, address: str, by: str | None) -> None:
        require_current(ctx.engine)
        with transaction(ctx.engine) as session:
            account = disable_account(session, address, actor=operator_actor(by), disabled=disabled)
        click.echo(f"{account.address}: {'disabled' if account.disabled else 'enabled'}")

    return command


users_group.add_command(_switch("disable", True, "Disable an account; its sessions end."))
users_group.add_command(_switch("enable", False, "Enable a disabled account again."))


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def list_command(ctx: Context, as_json: bool) -> None:
    """Every console account."""
    require_current(ctx.engine)
    with transaction(ctx.engine, readonly=True) as session:
        accounts = list_accounts(session)
    if as_json:
        emit_json([asdict(a) for a in accounts])
        return
    emit_table(
        ("ADDRESS", "NAME", "ROLE", "TEAM", "STATE"),
        [
            (a.address, a.name, a.role, a.team or "-", _state(a.disabled, a.has_password))
            for a in accounts
        ],
    )


def _state(disabled: bool, has_password: bool) -> str:
    return "disabled" if disabled else ("password" if has_password else "sso-only")
