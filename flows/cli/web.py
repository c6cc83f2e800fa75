"""`guidang web`: serve the archive bureau's read-only console; `--hash-password` makes a users' entry.

Exit 2 before serving when the config has no `web:` section or the signing key's environment
variable (web.secret_key_env) is unset or short, naming the variable. The password for
`--hash-password` is read from a hidden prompt on a terminal, else from the first line of stdin;
it is never echoed, logged or passed on the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import ConfigOpt, fail, load_config
from schemas.findings import GuidangError


def _read_password() -> str:
    if sys.stdin.isatty():
        first = typer.prompt("密码 password", hide_input=True)
        if typer.prompt("再输一次 again", hide_input=True) != first:
            raise fail("the two passwords differ", 2)
        return str(first)
    return sys.stdin.readline().rstrip("\r\n")


def web(
    config: ConfigOpt = Path("guidang.yaml"),
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8000,
    hash_password: Annotated[bool, typer.Option("--hash-password", help="read a password (prompt or stdin), "
                                                "print its argon2 hash for web.users[].password_hash, exit")] = False,
) -> None:
    """The bureau's console (概览, 检索, 隔离, 审计, 下载…) over the ledger and the archive, read-only."""
    if hash_password:
        from argon2 import PasswordHasher

        password = _read_password()
        if len(password) < 8:
            raise fail("a console password needs at least 8 characters", 2)
        typer.echo(PasswordHasher().hash(password))
        return
    import uvicorn

    from custody.web.app import create_app

    settings = load_config(config)
    try:
        application = create_app(settings)
    except GuidangError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(f"guidang console on http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
