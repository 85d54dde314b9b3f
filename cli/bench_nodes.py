"""The simulated nodes of ``clearance bench propagation``: many light but honest nodes per process.

Each node is an asyncio task with its own connection and ``Watch`` stream,
authenticated with its own access token, and its own
:class:`~clearance.trust.TrustStore` pinned to the registry's root: the
bundle and full list are verified on arrival, and each delta's signature is
checked and applied on top of the held list, as ``clearance node run`` does
(without the node's SQLite store). A node comes up after a random delay and
reconnects with backoff and jitter, telling the registry what it holds.

A process reports to its parent over queues: when all its nodes are ready,
when all of them hold each revocation (with each node's time), and the bytes
they received.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any

CONNECTS_PER_SECOND = 1_000
"""Nodes come up spread over ``nodes / CONNECTS_PER_SECOND`` seconds (the jitter a node adds to its reconnection)."""


@dataclass
class _Node:
    node_id: str
    key_pem: bytes
    trust: Any
    received: int = 0
    ready: bool = False
    refused: int = 0
    """Documents its trust core refused (each makes it reconnect from what it holds)."""
    revoked: set[int] = field(default_factory=set)
    """Which of the benchmark's revocations this node holds."""


def _forward(commands: Any, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[str]) -> None:
    """Hand each command from the parent to the worker's event loop (a thread: the queue blocks)."""
    while True:
        command = commands.get()
        loop.call_soon_threadsafe(inbox.put_nowait, command)
        if command == "stop":
            return


def run_nodes(
    endpoint: str,
    root_jwk: str,
    audience: str,
    total: int,
    nodes: list[tuple[str, bytes]],
    targets: list[tuple[str, int]],
    commands: Any,
    events: Any,
) -> None:
    """Run ``nodes`` as asyncio tasks until told to stop; report readiness, revocations and bytes."""
    asyncio.run(_simulate(endpoint, root_jwk, audience, total, nodes, targets, commands, events))


async def _simulate(
    endpoint: str,
    root_jwk: str,
    audience: str,
    total: int,
    nodes: list[tuple[str, bytes]],
    targets: list[tuple[str, int]],
    commands: Any,
    events: Any,
) -> None:
    import grpc

    from clearance.access import sign_access_token
    from clearance.errors import ClearanceError
    from clearance.keys import PublicKey, SigningKey
    from clearance.statuslist import Status
    from clearance.trust import TrustStore
    from clearance.v1 import registry_pb2 as pb
    from clearance.v1 import registry_pb2_grpc as rpc

    root = PublicKey.from_jwk(json.loads(root_jwk))
    ramp = total / CONNECTS_PER_SECOND
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    inbox: asyncio.Queue[str] = asyncio.Queue()
    threading.Thread(target=_forward, args=(commands, loop, inbox), daemon=True).start()
    simulated = [_Node(node_id, pem, TrustStore(root)) for node_id, pem in nodes]
    seen: list[list[float]] = [[] for _ in targets]
    ready = [0]

    def check(node: _Node, now: float) -> None:
        if not node.ready and node.trust.status_lists:
            node.ready = True
            ready[0] += 1
            if ready[0] == len(simulated):
                events.put(("ready", len(simulated), now))
        for number, (uri, index) in enumerate(targets):
            held = node.trust.status_lists.get(uri)
            if number not in node.revoked and held is not None and held.status_of(index) == Status.REVOKED:
                node.revoked.add(number)
                seen[number].append(now)
                if len(seen[number]) == len(simulated):
                    events.put(("revoked", number, seen[number]))

    def apply(node: _Node, kind: str, token: str) -> bool:
        """Whether the trust core accepted the document (a refusal changes nothing, as at a node)."""
        now = int(time.time())
        trust = node.trust
        try:
            if kind == "trust_bundle":
                trust.update_bundle(token, now)
            elif kind == "status_list":
                trust.update_status_list(token, now)
            elif kind == "status_delta":
                trust.apply_status_delta(token, now)
        except ClearanceError:
            node.refused += 1
            return False
        return True

    async def run(node: _Node) -> None:
        # Nodes come up as nodes do after an outage: each after a random delay (full jitter).
        await asyncio.sleep(random.random() * ramp)
        key = SigningKey.from_pem(node.key_pem)
        channel = grpc.aio.insecure_channel(endpoint, options=[("grpc.use_local_subchannel_pool", 1)])
        stub = rpc.PublicationServiceStub(channel)
        failures = 0
        while not stop.is_set():
            token = sign_access_token(key, principal=node.node_id, audience=audience, now=int(time.time()))
            trust = node.trust
            request = pb.WatchRequest(
                bundle_version=trust.home.version if trust.home else 0,
                status_lists=[
                    pb.HeldStatusList(uri=u, sequence=t.seq) for u, t in trust.status_lists.items()
                ],
            )
            try:
                call = stub.Watch(request, metadata=(("authorization", f"Bearer {token}"),))
                async for message in call:
                    node.received += message.ByteSize()
                    kind = message.WhichOneof("update")
                    if (
                        kind is not None
                        and kind != "heartbeat"
                        and not apply(node, kind, getattr(message, kind))
                    ):
                        call.cancel()  # start again from what it holds, as a node repairs
                        break
                    check(node, time.monotonic())
                    failures = 0
            except grpc.aio.AioRpcError:
                if stop.is_set():
                    break
            failures += 1  # back off with jitter, as a node should: a storm spreads out
            await asyncio.sleep(min(10.0, 0.25 * 2 ** min(failures, 6)) * (0.5 + random.random() / 2))
        await channel.close()

    tasks = [asyncio.create_task(run(node)) for node in simulated]
    marks = [0] * len(simulated)
    while True:
        command = await inbox.get()
        if command == "mark":
            marks = [node.received for node in simulated]
            events.put(("marked", len(simulated), 0.0))
        elif command == "report":
            received = sum(n.received - m for n, m in zip(simulated, marks, strict=True))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            events.put(("bytes", received, peak, sum(n.refused for n in simulated)))
        else:
            break
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
