"""Helpers for CLI tests: run ``clearance`` in-process or as its installed script, and artifact files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from clearance.agreement import Agreement, Party
from clearance.bundle import RootRotation
from clearance.keys import SigningKey, jwks
from clearance.statusdelta import sign_status_delta
from cli.main import main
from tests.factories import DAY, NOW, RegistryWorld, present_credential

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """What a user of ``clearance`` sees: the exit status and both streams."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(args: Sequence[str], *, input: str | bytes | None = None) -> Run:
    """Run ``clearance ARGS`` through its console entry point (:func:`cli.main.main`), in-process.

    Unlike ``CliRunner.invoke(cli, ...)``, this goes through the error mapping
    of ``main``: a refused artifact exits 3 with one line on stderr.
    """
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return Run(code, out.getvalue().decode(), err.getvalue().decode())


def clearance_command() -> list[str]:
    """The installed console script (``clearance``), or the module when it is not on PATH."""
    script = shutil.which("clearance") or shutil.which("clearance", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "cli.main"]


def run_script(args: Sequence[str], *, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``clearance`` in a subprocess, as a user's shell would."""
    return subprocess.run(
        [*clearance_command(), *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@dataclass
class Artifacts:
    """One registry's artifacts (and a stranger's keys), written to files."""

    world: RegistryWorld
    other: RegistryWorld
    directory: Path

    def write(self, name: str, content: str | bytes | dict[str, Any]) -> str:
        path = self.directory / name
        if isinstance(content, dict):
            content = json.dumps(content)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return str(path)

    # -- trust material ------------------------------------------------------

    @property
    def jwks(self) -> str:
        return self.write("jwks.json", jwks([self.world.issuing.public]))

    @property
    def bundle(self) -> str:
        return self.write("bundle.jwt", self.world.bundle())

    @property
    def root_jwk(self) -> str:
        return self.write("root.jwk", dict(self.world.root.public.jwk))

    @property
    def root_pem(self) -> str:
        return self.write("root.pem", self.world.root.public.to_pem())

    @property
    def root_thumbprint(self) -> str:
        return self.world.root.kid

    @property
    def other_jwks(self) -> str:
        return self.write("other-jwks.json", jwks([self.other.issuing.public]))

    @property
    def other_root(self) -> str:
        return self.write("other-root.jwk", dict(self.other.root.public.jwk))

    @property
    def stranger_root(self) -> str:
        """A root key that is party to nothing."""
        return self.write("stranger-root.jwk", dict(SigningKey.generate().public.jwk))

    # -- artifacts -----------------------------------------------------------

    def credential(self) -> str:
        credential, _ = self.world.issue()
        return self.write("credential.sd-jwt", credential)

    def credential_without_disclosures(self) -> str:
        credential, _ = self.world.issue(personal={})
        return self.write("bare-credential.sd-jwt", credential)

    def facility(self) -> str:
        return self.write("facility.sd-jwt", self.world.facility(SigningKey.generate()))

    def presentation(self, *, disclose: tuple[str, ...] = ("given_name",)) -> str:
        credential, holder = self.world.issue()
        return self.write(
            "presentation.sd-jwt",
            present_credential(credential, holder, nonce="nonce-1", audience="node-a", disclose=disclose),
        )

    def status_token(self) -> str:
        return self.write("status.jwt", self.world.status_token())

    def status_list(self) -> str:
        return self.write("status.json", self.world.status_list.encode())

    def status_delta(self) -> str:
        token = sign_status_delta(
            self.world.issuing,
            uri=self.world.status_uri,
            issued_at=NOW,
            expires_at=NOW + DAY,
            base_seq=1,
            updates=[(5, 1), (9, 2)],
        )
        return self.write("delta.jwt", token)

    def trust_bundle(self) -> str:
        return self.bundle

    def agreement(self) -> str:
        return self.write("agreement.json", self.world.agree_with(self.other).to_json())

    def proposal(self) -> str:
        """An agreement signed only by the proposing root."""
        proposal = Agreement.propose(
            self.world.root,
            agreement_id="JP-US-2",
            parties=(
                Party("JP", self.world.root.public, self.world.issuer),
                Party("US", self.other.root.public, self.other.issuer),
            ),
            levels=[("SECRET", "SECRET")],
            categories={"JP": ["cyber-threat"], "US": ["cyber-threat"]},
            issued_at=NOW,
            not_before=NOW,
            expires_at=NOW + 365 * DAY,
        )
        return self.write("proposal.json", proposal.to_json())

    def root_rotation(self) -> str:
        rotation = RootRotation.create(
            jurisdiction="JP", version=2, old=self.world.root, new=SigningKey.generate(), issued_at=NOW
        )
        return self.write("rotation.json", rotation.document.to_json())


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    world = RegistryWorld.create("JP")
    world.status_list.set(12, 1)
    world.status_list.set(40, 2)
    world.status_list.set(131_071, 1)
    return Artifacts(world, RegistryWorld.create("US"), tmp_path)
