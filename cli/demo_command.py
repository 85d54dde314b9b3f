"""``clearance demo``: the whole story on the embedded default, narrated, with its artifacts.

See :mod:`cli.demo` for the story. With ``--out DIR`` every artifact stays in
DIR (``registry-jwks.json``, ``trust-bundle.jwt``, ``agreement.jwt``,
``credential.sd-jwt``, ``presentation.sd-jwt``, ``revoked-credential.sd-jwt``,
``status-list.jwt``, ``statistics.jwt`` with its charts ``statistics.svg`` and
``statistics.png``, ``demo.json``) along with the registries' and nodes'
directories under ``DIR/work``; without it everything goes to a temporary
directory that is removed at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from cli import output


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep every artifact here (must be empty or not exist).",
)
@click.option("--json", "json_output", is_flag=True, help="Print demo.json instead of the narration.")
def demo(out: Path | None, json_output: bool) -> None:
    """Run the whole story end to end on loopback: two registries, two nodes, wallets, an agreement.

    JP and US registries (each on its own SQLite file, TLS), a JP company's
    node and a US lab's node: consent, the seven findings, decisions,
    credentials in wallets, an agreement between the registries, a
    cross-border share allowed and one denied for releasability, a revocation
    the other country's node picks up within a second, an appeal resolved
    by oversight, the registry's signed statistics with their charts, and the
    oversight monitor finding nothing, then catching a planted credential.
    """
    import logging

    from clearance.errors import ConflictError
    from cli.demo import run_demo

    logging.getLogger().setLevel(logging.WARNING)
    keep = out is not None
    target = out if out is not None else Path(tempfile.mkdtemp(prefix="clearance-demo-"))
    if keep and target.exists() and any(target.iterdir()):
        raise ConflictError(f"{target} is not empty; give a new --out directory")
    target.mkdir(parents=True, exist_ok=True)
    narrate = (lambda _text: None) if json_output else click.echo
    try:
        story = run_demo(target, narrate)
        if json_output:
            click.echo((target / "demo.json").read_text().rstrip())
            return
        click.echo("")
        click.echo(output.heading("Summary"))
        click.echo(
            output.table(
                [[f"{s.seconds:.1f}s", s.title, s.outcome] for s in story.steps], ["at", "step", "outcome"]
            )
        )
        allowed = sum(1 for d in story.decisions if d["outcome"] == "allow")
        click.echo(
            f"\n{len(story.decisions)} sharing decisions ({allowed} allowed, {len(story.decisions) - allowed} denied), "
            f"revocation crossed two registries to the other country's node in {story.facts['revocation_seconds']:.3f}s."
        )
        if keep:
            click.echo(
                f"Artifacts in {target}: "
                + ", ".join(sorted(p.name for p in target.iterdir() if p.is_file()))
            )
            click.echo(
                f"Try: clearance inspect {target / 'presentation.sd-jwt'} --jwks {target / 'registry-jwks.json'}"
            )
        else:
            click.echo("Run with --out DIR to keep the artifacts.")
    finally:
        if not keep:
            shutil.rmtree(target, ignore_errors=True)
