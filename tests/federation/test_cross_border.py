"""Across the border, end to end, through the ``clearance`` command: a US lab and a JP company.

Two registries (``registry init`` + ``registry serve``, TLS, each on its own
database: on PostgreSQL, its own schema), a node each (``node init`` +
``node run``), an agreement proposed by JP, countersigned by the US and
imported at both, people assessed and issued credentials into their wallets,
all through the CLI. Then what a user relies on:

* a US-cleared researcher gets a JP item releasable to the US at the level the
  agreement maps, and is refused an item not releasable to the US and one above
  the mapped level;
* a revocation by the US registry crosses both registries and the JP node
  refuses her from then on;
* once the US ends the agreement, the JP node refuses every US presentation;
* a visit assurance signed by the US registry admits her to the JP
  organization it names, inside its window, and nowhere else or later.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from clearance.keys import read_private_key
from clearance.sdjwt import present
from cli import exits
from tests.cli.conftest import Run, run_cli
from tests.federation.world import CATEGORIES, Federation, clearance
from tests.node.harness import wait_until

pytestmark = [pytest.mark.database, pytest.mark.slow]

DAY = 86_400
AGREEMENT = "JP-US-2026"
RELEASABLE_TO_US = {
    "jurisdiction": "JP",
    "level": "SECRET",
    "category": "joint-research",
    "releasable_to": ["US"],
}
JP_ONLY = {"jurisdiction": "JP", "level": "SECRET", "category": "joint-research", "releasable_to": []}
TOP_SECRET_TO_US = {
    "jurisdiction": "JP",
    "level": "TOP_SECRET",
    "category": "joint-research",
    "releasable_to": ["US"],
}


def allowed(run: Run) -> dict[str, Any]:
    assert run.exit_code == exits.OK, run.stdout + run.stderr
    decision: dict[str, Any] = run.json()
    assert decision["allowed"] is True
    return decision


def denied(run: Run) -> dict[str, Any]:
    """Exit 3, one ``error:`` line naming the first reason, and the decision with all of them."""
    assert run.exit_code == exits.REFUSED, run.stdout + run.stderr
    decision: dict[str, Any] = run.json()
    assert decision["allowed"] is False
    assert run.stderr == f"error: {decision['reasons'][0]}\n"
    return decision


def test_a_us_researcher_gets_a_jp_item_releasable_to_the_us_until_revoked_or_the_agreement_ends(
    build_world: Callable[..., Federation],
) -> None:
    world = build_world(jp_staleness={"SECRET": DAY})
    jp, us = world.jp, world.us
    assert jp.node is not None
    jp_node = jp.node
    ada = us.clear("Ada", "Lovelace")
    grace = us.clear("Grace", "Hopper")

    # A JP SECRET item releasable to the US: allowed, through the agreement's SECRET<->SECRET row.
    shared = allowed(world.peer_present(ada, RELEASABLE_TO_US, "ada-joint"))
    assert (shared["presenter_jurisdiction"], shared["agreement_id"], shared["mapped_level"]) == (
        "US",
        AGREEMENT,
        "SECRET",
    )
    assert f"agreement {AGREEMENT} maps US SECRET to JP SECRET" in shared["reasons"]
    assert any("Lakeshore National Laboratory" in reason for reason in shared["reasons"])  # the recipient

    # Not releasable to the US: denied, and the reason says so.
    jp_only = denied(world.peer_present(ada, JP_ONLY, "ada-jp-only"))
    assert jp_only["reasons"] == [
        "not_releasable: the item is releasable to ['JP'], not to US-cleared people"
    ]

    # Above the mapped level: US SECRET is JP SECRET, below JP TOP_SECRET (which has no row).
    top = denied(world.peer_present(ada, TOP_SECRET_TO_US, "ada-top"))
    assert "level_insufficient: SECRET is below the item's TOP_SECRET" in top["reasons"]
    assert top["mapped_level"] == "SECRET"

    # Why node to node: asked at the JP node's local API, the recipient is the JP company,
    # which is neither cleared by the US registry nor her employer.
    challenge = clearance("node", "challenge", "--dir", jp_node.dir)
    local = ada.present(challenge["nonce"], challenge["audience"], world.work / "ada-local.sd-jwt")
    at_company = denied(
        run_cli(
            [
                "node",
                "authorize",
                str(local),
                "--label",
                json.dumps(RELEASABLE_TO_US),
                "--dir",
                jp_node.dir,
                "--json",
            ]
        )
    )
    assert at_company["reasons"][0].startswith("recipient_other_registry:")
    assert any(reason.startswith("employer_mismatch:") for reason in at_company["reasons"])

    # The US revokes Ada: the change crosses the US registry, the JP registry, then the JP node.
    before = jp_node.list_status(us.list_uri)["sequence"]
    revoked_at = time.monotonic()
    us.adjudicate("credential", "revoke", ada.credential_id, "--reason", "left the programme")
    wait_until(
        lambda: jp_node.list_status(us.list_uri)["sequence"] > before,
        30,
        "the US revocation did not reach the JP node",
    )
    print(f"\nrevocation: US registry -> JP registry -> JP node in {time.monotonic() - revoked_at:.2f}s")
    assert denied(world.peer_present(ada, RELEASABLE_TO_US, "ada-revoked"))["reasons"] == [
        "revoked: credential has been revoked"
    ]
    allowed(world.peer_present(grace, RELEASABLE_TO_US, "grace-joint"))  # the revocation is Ada's alone

    # The US ends the agreement; the JP registry sees it at its next sync, ends it too, and its
    # node drops the US: every US presentation is refused.
    us.admin("agreement", "terminate", AGREEMENT, "--reason", "the programme has ended")
    wait_until(
        lambda: not any(f["jurisdiction"] == "US" for f in jp_node.status()["foreign"]),
        30,
        "the JP node still trusts the US after the agreement ended",
    )
    assert us.agreement(AGREEMENT)["state"] == "terminated"
    assert jp.agreement(AGREEMENT)["state"] == "terminated"
    session = world.peer_present(grace, RELEASABLE_TO_US, "grace-after")
    # The JP node no longer authenticates the US lab's node: no session, so nothing is presented.
    assert session.exit_code == exits.NOT_ALLOWED, session.stdout + session.stderr
    assert session.stderr == (
        "error: facility presentation refused: untrusted_issuer: "
        "issuer 'https://registry.us.clearance.example' is not trusted\n"
    )
    assert us.node is not None
    nonce = clearance("node", "challenge", "--dir", jp_node.dir)
    facility = world.work / "lakeshore-facility.sd-jwt"
    run_cli(
        [
            "node",
            "present-facility",
            "--dir",
            us.node.dir,
            "--aud",
            nonce["audience"],
            "--nonce",
            nonce["nonce"],
            "--out",
            str(facility),
        ]
    )
    after = denied(
        run_cli(
            [
                "node",
                "authorize",
                str(world.at_jp_node(grace, "grace-local")),
                "--label",
                json.dumps(RELEASABLE_TO_US),
                "--facility",
                str(facility),
                "--dir",
                jp_node.dir,
                "--json",
            ]
        )
    )
    assert after["reasons"][0].startswith("untrusted_issuer:")

    # Every decision, allow or deny, is in the JP node's hash-chained log.
    log = clearance("node", "log", "list", "--dir", jp_node.dir)
    assert [entry["allowed"] for entry in log] == [True, False, False, False, False, True, False]
    assert clearance("node", "log", "verify", "--dir", jp_node.dir)["intact"] is True


def test_a_visit_assurance_from_the_us_admits_the_researcher_to_the_named_jp_host_in_its_window(
    build_world: Callable[..., Federation],
) -> None:
    # The JP node reads a clock file that follows the wall clock, so that the test can take it past
    # the window (which ends at a midnight, UTC). Its SECRET staleness bound is two days, so that
    # what refuses then is the window, not the age of the US status list.
    world = build_world(jp_staleness={"SECRET": 2 * DAY}, jp_clock=True, with_us_node=False)
    jp, us = world.jp, world.us
    assert jp.node is not None
    assert world.clock is not None
    jp_node, clock = jp.node, world.clock
    ada = us.clear("Ada", "Lovelace")
    elsewhere = jp.found("Fuji Optics KK", "company")
    today = datetime.datetime.now(datetime.UTC).date()
    tomorrow = today + datetime.timedelta(days=1)

    def visit(host: str, name: str) -> str:
        path = world.work / f"{name}.jwt"
        us.adjudicate(
            "visit",
            "issue",
            ada.credential_id,
            "--host-jurisdiction",
            "JP",
            "--host-org",
            host,
            "--programme",
            "quantum-sensing-2027",
            "--kind",
            "one_time",
            "--from",
            today.isoformat(),
            "--until",
            tomorrow.isoformat(),
            "--out",
            str(path),
        )
        return str(path)

    def verify_visit(presentation: str, assurance: str) -> Run:
        return run_cli(
            ["node", "verify-visit", presentation, "--assurance", assurance, "--dir", jp_node.dir, "--json"]
        )

    to_kaiyo, to_fuji = visit(jp.organization, "visit-kaiyo"), visit(elsewhere, "visit-fuji")

    admitted = verify_visit(str(world.at_jp_node(ada, "ada-at-gate")), to_kaiyo)
    assert admitted.exit_code == exits.OK, admitted.stdout + admitted.stderr
    checked = admitted.json()
    assert checked["allowed"] is True
    assert (checked["visitor_jurisdiction"], checked["programme"], checked["visit_kind"]) == (
        "US",
        "quantum-sensing-2027",
        "one_time",
    )
    assert checked["clearance"] == {"jurisdiction": "US", "level": "SECRET", "categories": list(CATEGORIES)}

    wrong_host = verify_visit(str(world.at_jp_node(ada, "ada-at-gate-2")), to_fuji)
    assert wrong_host.exit_code == exits.REFUSED
    assert wrong_host.json()["reasons"] == ["invalid_claim: visit assurance is for another host organization"]

    # A minute after the window: the wallet stamps its key binding with the wall clock, so here
    # the holder's key signs with the node's time, as the wallet would on that day.
    window = clearance("inspect", to_kaiyo)["window"]
    clock.set_offset(window["exp"] + 60 - int(time.time()))
    challenge = clearance("node", "challenge", "--dir", jp_node.dir)
    late = world.work / "ada-late.sd-jwt"
    late.write_text(
        present(
            next((ada.wallet / "credentials").glob("*.sd-jwt")).read_text().strip(),
            read_private_key(ada.wallet / "holder.pem"),
            audience=challenge["audience"],
            nonce=challenge["nonce"],
            issued_at=clock.now(),
        )
    )
    too_late = verify_visit(str(late), to_kaiyo)
    assert too_late.exit_code == exits.REFUSED, too_late.stdout + too_late.stderr
    assert too_late.json()["reasons"] == ["expired: the visit window has ended"]

    log = clearance("node", "log", "list", "--dir", jp_node.dir)
    assert [(entry["allowed"], entry["code"]) for entry in log] == [
        (True, "visit_allowed"),
        (False, "invalid_claim"),
        (False, "expired"),
    ]
