"""When the partner registry is unreachable: keep deciding on what it last signed, up to the staleness bound.

With the US registry down, the JP registry keeps the US material it last
verified and keeps serving it to its node; the JP node keeps deciding on US
presentations until the US status list it holds is older than its staleness
bound, then refuses with that reason. When the US registry comes back, partner
sync resumes (``agreement list`` shows a recent sync and no problem), fresh US
material reaches the node, and it decides again.

Time is real here: the US registry republishes its status list every few
seconds (``status_freshness_interval = 1`` in its ``registry.toml``; ``registry
serve`` checks every five seconds) and the JP node's bound for SECRET is 15
seconds, so the list goes stale about 15 seconds after the US goes down.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from clearance.bundle import TrustBundle
from clearance.channel import open_channel
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from cli import exits
from tests.federation.world import Federation, seconds_of
from tests.node.harness import wait_until

pytestmark = [pytest.mark.database, pytest.mark.slow]

AGREEMENT = "JP-US-2026"
BOUND = 15
JOINT = {"jurisdiction": "JP", "level": "SECRET", "category": "joint-research", "releasable_to": ["US"]}


def republish_often(directory: Path) -> None:
    """Tell the US registry (before it is served) to renew its status lists at every freshness check."""
    config = directory / "registry.toml"
    text = config.read_text()
    assert "status_freshness_interval = 300" in text
    config.write_text(text.replace("status_freshness_interval = 300", "status_freshness_interval = 1"))


def partner_bundle_held_by(world: Federation) -> TrustBundle:
    """The US trust bundle the JP registry republishes to its nodes (its public API)."""
    registry = world.jp.registry
    channel = open_channel(registry.endpoint, ca_pem=registry.ca.read_bytes())
    try:
        response = rpc.PublicationServiceStub(channel).GetTrustBundle(
            pb.GetTrustBundleRequest(jurisdiction="US"), timeout=10
        )
    finally:
        channel.close()
    return TrustBundle.parse(response.bundle)[0]


def test_the_jp_node_decides_on_us_material_until_the_staleness_bound_and_sync_resumes(
    build_world: Callable[..., Federation],
) -> None:
    world = build_world(jp_staleness={"SECRET": BOUND}, us_configure=republish_often)
    jp, us = world.jp, world.us
    assert jp.node is not None
    jp_node = jp.node
    ada = us.clear("Ada", "Lovelace")
    assert world.peer_present(ada, JOINT, "ada-before").exit_code == exits.OK
    held = partner_bundle_held_by(world)

    us.registry.kill()
    went_down = time.monotonic()
    wait_until(
        lambda: bool(jp.agreement(AGREEMENT).get("partner_problem")),
        30,
        "the JP registry did not notice that the US registry is unreachable",
    )
    # JP keeps what the US root signed, and keeps serving it to its node.
    assert partner_bundle_held_by(world).version == held.version
    assert jp.agreement(AGREEMENT)["state"] == "in_force"
    still = world.peer_present(ada, JOINT, "ada-while-down")
    assert still.exit_code == exits.OK, still.stdout + still.stderr
    assert time.monotonic() - went_down < BOUND  # it decided on material from a registry already gone

    wait_until(
        lambda: "SECRET" in jp_node.list_status(us.list_uri)["stale_for"],
        BOUND + 30,
        "the US status list never went stale at the JP node",
    )
    stale = world.peer_present(ada, JOINT, "ada-stale")
    # The US lab's facility credential rests on the same list: the JP node refuses to open a session.
    assert stale.exit_code != exits.OK
    match = re.search(r"status_list_stale: status list \S+ is (\d+)s old; policy allows 15s", stale.stderr)
    assert match is not None, stale.stderr
    assert int(match.group(1)) > BOUND

    us.registry.start()
    back = int(time.time())
    wait_until(
        lambda: (
            seconds_of(jp.agreement(AGREEMENT).get("last_partner_sync")) >= back
            and not jp.agreement(AGREEMENT).get("partner_problem")
        ),
        60,
        "partner sync did not resume when the US registry came back",
    )
    print(f"\nUS registry down for {time.monotonic() - went_down:.1f}s; partner sync resumed")
    wait_until(
        lambda: "SECRET" in jp_node.list_status(us.list_uri)["fresh_for"],
        30,
        "no fresh US status list reached the JP node",
    )
    again = world.peer_present(ada, JOINT, "ada-after")
    assert again.exit_code == exits.OK, again.stdout + again.stderr
