"""``spinesim users``: the trainees and instructors who may log in to ``spinesim serve``."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from frontends.cli import user_text

out = Console(soft_wrap=True)
_DB_OPTION = click.option("--db", "db_url", help="Database URL (default sqlite:///$SPINESIM_HOME/spinesim.db).")


def _password(prompt: str) -> str:
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


@click.group()
def users() -> None:
    """Add, list and change the passwords of simulator users."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["trainee", "instructor"]), required=True)
@_DB_OPTION
def add(name: str, role: str, db_url: str | None) -> None:
    """Add user NAME (asks for the password twice)."""
    from frontends.store import Store, check_password, check_user_name

    store = Store(db_url)
    check_user_name(name)
    store.add_user(name, role, check_password(_password(f"Password for {name}")))
    out.print(f"Added {role} {user_text(name)}.")


@users.command("list")
@_DB_OPTION
def list_users(db_url: str | None) -> None:
    """The users, their roles and how many attempts they made."""
    from frontends.store import Store

    store = Store(db_url)
    table = Table("name", "role", "can log in", "attempts", "created")
    for user in store.users():
        attempts = len(store.attempts(user_id=user.id))
        table.add_row(user_text(user.name), user.role, "yes" if user.has_password else "local only", str(attempts),
                      user.created.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@users.command("passwd")
@click.argument("name")
@_DB_OPTION
def passwd(name: str, db_url: str | None) -> None:
    """Set a new password for user NAME."""
    from frontends.store import Store, check_password

    store = Store(db_url)
    store.user(name)  # an unknown name fails before the password is typed
    store.set_password(name, check_password(_password(f"New password for {name}")))
    out.print(f"Password of {user_text(name)} changed.")
