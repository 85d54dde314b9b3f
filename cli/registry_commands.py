"""``clearance registry``: create, serve and upgrade a registry (these act on its directory).

Every other registry command is a client of the running registry's API and
lives in a module of its own group (``org``, ``staff``, ``person``,
``assessment`` and ``appeal``, ``credential``, ``audit``). Heavy modules
(grpc, the registry package) are imported inside the commands so
``clearance --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.audit_commands import audit
from cli.connection import json_option
from cli.output import emit

# -- registry: init, serve, migrate ---------------------------------------------


@click.group("registry")
def registry() -> None:
    """Run a national registry: create it, serve it, upgrade it, check its audit log."""


@registry.command("init")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Registry directory to create.",
)
@click.option("--jurisdiction", required=True, metavar="CODE", help="ISO 3166 code of the country, e.g. JP.")
@click.option("--database-url", metavar="URL", help="PostgreSQL URL; default: embedded SQLite in DIR.")
@click.option("--issuer", metavar="URL", help="Public URL identifying the registry (credential iss).")
@click.option(
    "--endpoint",
    default="127.0.0.1:7443",
    show_default=True,
    metavar="HOST:PORT",
    help="Where staff and nodes will reach the registry.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="Extra DNS name or IP for the TLS certificate (repeatable).",
)
@json_option
def init(
    directory: Path,
    jurisdiction: str,
    database_url: str | None,
    issuer: str | None,
    endpoint: str,
    hosts: tuple[str, ...],
    json_output: bool,
) -> None:
    """Create a registry: root and issuing keys, TLS, database schema, first administrator."""
    from registry.setup import init_registry

    ctx, _admin = init_registry(
        directory,
        jurisdiction=jurisdiction,
        database_url=database_url,
        issuer=issuer,
        endpoint=endpoint,
        hosts=list(hosts),
    )
    root = ctx.keys.root
    data = {
        "directory": str(directory),
        "jurisdiction": ctx.config.jurisdiction,
        "issuer": ctx.config.issuer,
        "database": "sqlite (embedded)" if ctx.config.database_url.startswith("sqlite") else "postgresql",
        "root_fingerprint": root.kid if root else "",
        "admin_credential": str(directory / "admin.json"),
        "endpoint": endpoint,
    }
    ctx.db.dispose()
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"Registry {d['jurisdiction']} created in {d['directory']}\n"
            f"  root fingerprint   {d['root_fingerprint']}   (give it to node operators out of band)\n"
            f"  administrator      {d['admin_credential']}   (keep it secret; move it to the administrator)\n"
            f"  database           {d['database']}\n"
            f"Next: clearance registry serve --dir {d['directory']} --listen {d['endpoint']}"
        ),
    )


@registry.command("serve")
@click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--listen", default="127.0.0.1:7443", show_default=True, metavar="HOST:PORT")
@click.option("--insecure", is_flag=True, help="Serve plaintext (refused unless HOST is loopback).")
@click.option("--metrics-port", type=int, metavar="PORT", help="Serve Prometheus metrics on 127.0.0.1:PORT.")
@click.option("--database-url", metavar="URL", help="Override the configured database.")
@click.option("--workers", default=256, show_default=True, help="Threads for calls and watch streams.")
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Replica processes sharing the port (SO_REUSEPORT); use one per core.",
)
def serve(
    directory: Path,
    listen: str,
    insecure: bool,
    metrics_port: int | None,
    database_url: str | None,
    workers: int,
    processes: int,
) -> None:
    """Serve the v1 API (with health checking and reflection) until SIGTERM or Ctrl-C."""
    import logging
    import sys

    from registry.api import server

    server.check_listen_address(listen, insecure=insecure)
    if processes > 1:
        from registry.api.replicas import run_replicas

        if listen.endswith(":0"):
            raise click.BadParameter("replicas share one port: give it explicitly", param_hint="--listen")
        child = [
            sys.executable,
            "-m",
            "cli.main",
            "registry",
            "serve",
            "--dir",
            str(directory),
            "--listen",
            listen,
        ]
        child += ["--workers", str(workers)] + (["--insecure"] if insecure else [])
        child += ["--database-url", database_url] if database_url else []
        sys.exit(run_replicas(child, processes, metrics_port=metrics_port))
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)

    ctx = server.open_context(directory, database_url=database_url)
    running = server.start(
        ctx, listen, insecure=insecure, metrics_port=metrics_port, max_workers=workers, warm_signing=True
    )
    click.echo(
        f"registry {ctx.config.jurisdiction} serving on {listen.rpartition(':')[0]}:{running.port} ({'plaintext' if insecure else 'TLS'})",
        err=True,
    )
    server.serve_forever(running)


@registry.command("migrate")
@click.option(
    "--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--database-url", metavar="URL", help="Override the configured database.")
@json_option
def migrate(directory: Path, database_url: str | None, json_output: bool) -> None:
    """Upgrade the database schema to this version."""
    from registry.setup import migrate as run_migrate

    before, after = run_migrate(directory, database_url)
    emit(
        {"before": before, "after": after},
        json_output=json_output,
        human=lambda d: f"schema {d['before'] or 'empty'} -> {d['after']}",
    )


registry.add_command(audit)
