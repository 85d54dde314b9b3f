"""The ``clearance`` command: one entry point, groups loaded only when used.

``clearance --help`` must answer fast, so this module imports nothing heavy:
each group lives in its own module and is imported the first time it is
invoked (its one-line help is kept here).

Errors: every command lets :class:`~clearance.errors.ClearanceError` rise;
:func:`main` prints it as one line naming what to fix and exits with a code
that says what kind of failure it was (see :mod:`cli.exits`). ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from cli import exits

# name -> (module:attribute, one-line help). Order is the order of --help.
_GROUPS: dict[str, tuple[str, str]] = {
    "registry": ("cli.registry_commands:registry", "Run and administer a national registry."),
    "org": (
        "cli.org_commands:org",
        "Organizations, facility clearances, node enrollment tokens.",
    ),
    "staff": ("cli.staff_commands:staff", "Staff accounts and their roles."),
    "person": ("cli.person_commands:person", "Enroll people; read personal data (audited)."),
    "assessment": ("cli.assessment_commands:assessment", "Consent, findings, decisions, notices."),
    "appeal": ("cli.assessment_commands:appeal", "File and resolve appeals."),
    "credential": (
        "cli.credential_commands:credential",
        "Issue, suspend, reinstate, revoke credentials.",
    ),
    "audit": ("cli.audit_commands:audit", "Read and verify the registry's audit log."),
    "agreement": (
        "cli.federation_commands:agreement",
        "Mutual-recognition agreements between registries.",
    ),
    "visit": ("cli.federation_commands:visit", "Visit assurances for cleared people abroad."),
    "node": ("cli.node_commands:node", "Run a node: enroll, sync, verify, authorize."),
    "wallet": (
        "cli.wallet_commands:wallet",
        "A cleared person's wallet: keys, credentials, presentations.",
    ),
    "root": (
        "cli.root_commands:root",
        "Offline root keys: k-of-n root documents and signing ceremonies.",
    ),
    "oversight": (
        "cli.oversight_commands:oversight",
        "The oversight body: monitor the registry's process, read its signed statistics.",
    ),
    "witness": (
        "cli.witness_commands:witness",
        "Run a transparency-log witness: cosign only consistent checkpoints.",
    ),
    "inspect": ("cli.inspect_command:inspect", "Decode and verify any clearance artifact."),
    "bench": ("cli.bench_commands:bench", "Benchmarks that print their figures."),
    "demo": ("cli.demo_command:demo", "Run the whole story end to end on loopback."),
    "completion": (
        "cli.completion_command:completion",
        "Print the shell completion script (bash, zsh, fish).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in _GROUPS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _GROUPS.get(cmd_name)
        if spec is None or not _available(cmd_name):
            return None
        module_name, attribute = spec[0].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _GROUPS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(name: str) -> bool:
    module = _GROUPS[name][0].split(":")[0]
    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clearance", prog_name="clearance")
@click.option("--debug", is_flag=True, envvar="CLEARANCE_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """clearance: a federated registry of security clearances.

    Registries assess and clear people and issue signed credentials; nodes at
    companies and labs verify them offline before designated information is
    shared; registries of different countries recognize each other's
    clearances through signed agreements.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the CLI and turn errors into one line and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("CLEARANCE_DEBUG")
    )
    try:
        return cli.main(args=argv, prog_name="clearance", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(exits.FAILURE)
    except click.UsageError as exc:
        # One line that says what is wrong and where to look, not a usage dump.
        where = exc.ctx.command_path if exc.ctx is not None else "clearance"
        click.echo(f"error: {exc.format_message()} (see: {where} --help)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if debug:
            raise
        code, message = exits.describe(exc)
        click.echo(f"error: {message}", err=True)
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
