"""The transparency log core: Merkle proofs, tiles, signed notes, checkpoints, cosignatures, entries.

Every trust event a registry makes is appended to a log (RFC 6962 / RFC 9162
hashing, served as C2SP ``tlog-tiles``); the log signs checkpoints (C2SP
``tlog-checkpoint``, a C2SP ``signed-note``) and witnesses cosign them (C2SP
``tlog-cosignature``, asked through C2SP ``tlog-witness``). Modules:

- :mod:`~clearance.transparency.merkle`: hashing, roots, proof generation from
  stored hashes and verification.
- :mod:`~clearance.transparency.tiles`: tile coordinates, paths, bundles, checks.
- :mod:`~clearance.transparency.tile_writer`: appending from the right edge.
- :mod:`~clearance.transparency.tile_reader`: proofs from tiles authenticated
  against a checkpoint's root.
- :mod:`~clearance.transparency.note`: signed notes and verifier keys.
- :mod:`~clearance.transparency.checkpoint`: checkpoints.
- :mod:`~clearance.transparency.cosignature`: ``cosignature/v1``.
- :mod:`~clearance.transparency.entries`: the log entry of a trust event.

Nothing here does I/O or reads a clock: stores, transports and time are the
caller's.
"""
