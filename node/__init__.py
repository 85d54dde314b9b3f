"""The node: an organization's agent that syncs trust material and decides, offline, what may be shared.

Modules, from the outside in::

    agent.py         the process: assembles everything, runs sync and the APIs, stops on SIGTERM
    server.py        gRPC servers (grpc.aio): the local API (loopback/Unix socket, local token) and the
                     peer API; admission, deadlines and size limits before a worker is spent
    servicers.py     thin servicers: wire types in and out, domain calls
    client.py        a client of a running node's local API (the CLI uses it)
    enrollment.py    `node init`: one-time token, root pinned by fingerprint, directory written
    config.py        DIR/node.toml and the directory's files, validated on load
    clock.py         time, injected everywhere (and the unsafe file clock for tests of processes)
    sync.py          the registry's push stream, polling, repairs; the applier of signed documents
    state.py         the current TrustStore snapshot, replaced whole after each accepted update
    store.py         the accepted signed documents in SQLite; the TrustStore rebuilt from them
    gatekeeper.py    challenge, verify, authorize (logged): what both APIs call
    decisions.py     the sharing rule: a pure function of trust, label, presentations and time
    facility.py      this organization's facility credential, and checking other organizations'
    peers.py         node to node: mutual authentication by facility credentials, sessions
    ratelimit.py     the peer port's per-address and per-prefix limits
    decision_log.py  the append-only, hash-chained log of every decision
    status.py        what `node status` reports

Errors are :mod:`clearance.errors`' tree. Nothing here calls the registry to
decide: a decision rests only on what :mod:`node.sync` accepted and stored.
"""
