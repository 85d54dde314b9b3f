"""Enrolling a node (``clearance node init``): one-time token, pinned root, nothing trusted before the pin.

Steps, all or nothing:

1. Generate the node's Ed25519 key (kept in memory until the end).
2. Call ``EnrollmentService.EnrollNode`` with the one-time token and the
   public key. The registry answers with the node's id, its current root
   JWK, its trust bundle and, if the organization is cleared, a facility
   credential bound to the node key.
3. Check that the root's RFC 7638 thumbprint equals the fingerprint the
   operator was given out of band, **before anything else is looked at**. A
   registry whose root does not match is refused and nothing is written.
4. Verify the bundle with that root (signature, expiry) and the facility
   credential with the bundle's issuing key (and that it binds our key).
5. Write the directory (0700): key, pinned root, local token, facility
   credential, the registry's TLS CA, the store with the bundle, peer TLS
   material if the peer API listens beyond loopback, and ``node.toml`` last;
   every file but the CA and certificates is 0600 (see
   :func:`node.config.check_private_files`). If any step fails, what was
   created is removed.

The token is spent at step 2 even when step 3 refuses: a registry that does
not match the pin is not one whose tokens matter.
"""

from __future__ import annotations

import hmac
import json
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from clearance.channel import open_channel
from clearance.credentials import FACILITY_VCT, SD_JWT_VC_TYP, CredentialClaims
from clearance.encoding import parse_json
from clearance.errors import ConflictError, Reason, VerificationError
from clearance.jws import decode_compact, verify_compact
from clearance.keys import PublicKey, SigningKey, atomic_write, write_private_key
from clearance.rpc import to_error
from clearance.sdjwt import resolve_claims, split
from clearance.tls import create_tls
from clearance.trust import TrustStore
from clearance.v1 import registry_pb2 as pb
from clearance.v1 import registry_pb2_grpc as rpc
from node import config as files
from node.clock import Clock, system_clock
from node.config import NodeConfig, is_loopback_host
from node.store import NodeStore


@dataclass(frozen=True)
class Enrollment:
    config: NodeConfig
    root_fingerprint: str
    bundle_version: int
    facility: bool


def enroll(
    directory: Path,
    *,
    registry: str,
    root_fingerprint: str,
    token: str,
    name: str,
    registry_ca: bytes | None = None,
    registry_insecure: bool = False,
    listen: str = "127.0.0.1:7600",
    peer_listen: str = "",
    peer_insecure: bool = False,
    settings: Mapping[str, object] | None = None,
    clock: Clock = system_clock,
) -> Enrollment:
    """Enroll a node with the registry at ``registry`` and create ``directory``.

    Raises:
        ConflictError: ``directory`` already holds a node.
        VerificationError: the registry's root does not match ``root_fingerprint``
            (``root_mismatch``), or its bundle or facility credential does not verify.
        AuthenticationError: the token is unknown, used or expired.
        TransportError: the registry cannot be reached.
        InvalidArgumentError: a bad option (named).
    """
    directory = Path(directory)
    if (directory / files.CONFIG_NAME).exists():
        raise ConflictError(f"{directory} already holds a node; use another --dir")
    options: dict[str, Any] = {
        "registry": registry,
        "root_fingerprint": root_fingerprint,
        "registry_insecure": registry_insecure,
        "listen": listen,
        "peer_listen": peer_listen,
        "peer_insecure": peer_insecure,
        **dict(settings or {}),
    }
    # Validate the options before spending the token (the ids are placeholders).
    NodeConfig(
        directory=directory, node_id="pending", organization_id="pending", jurisdiction="XX", **options
    )
    key = SigningKey.generate()
    channel = open_channel(registry, ca_pem=registry_ca, insecure=registry_insecure)
    try:
        response = rpc.EnrollmentServiceStub(channel).EnrollNode(
            pb.EnrollNodeRequest(token=token, name=name, public_jwk=json.dumps(key.public.jwk)), timeout=30
        )
    except grpc.RpcError as exc:
        raise to_error(exc, peer=f"registry {registry}") from None
    finally:
        channel.close()

    root = PublicKey.from_jwk(parse_json(response.root_jwk, what="registry root JWK"))
    if not hmac.compare_digest(root.thumbprint.encode(), root_fingerprint.encode()):
        raise VerificationError(
            Reason.ROOT_MISMATCH,
            f"the registry's root {root.thumbprint} does not match the fingerprint you pinned "
            f"({root_fingerprint}); nothing was written",
        )
    now = clock()
    trust = TrustStore(root)
    bundle = trust.update_bundle(response.trust_bundle, now)
    organization_name = ""
    if response.facility_credential:
        organization_name = _check_facility(response.facility_credential, trust, key)

    created = not directory.exists()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # it will hold the node's secrets, whoever made it
    written: list[Path] = []
    try:
        config = NodeConfig(
            directory=directory,
            node_id=response.node.id,
            organization_id=response.node.organization_id,
            organization_name=organization_name,
            jurisdiction=bundle.jurisdiction,
            **options,
        )
        secrets_and_material = {
            files.TOKEN_NAME: ((secrets.token_urlsafe(32) + "\n").encode(), 0o600),
            files.FACILITY_NAME: ((response.facility_credential + "\n").encode(), 0o600),
            files.REGISTRY_CA_NAME: (registry_ca or b"", 0o644),
        }
        written.append(directory / files.KEY_NAME)
        write_private_key(directory / files.KEY_NAME, key)
        for name, (data, mode) in secrets_and_material.items():
            if data.strip():
                written.append(directory / name)
                atomic_write(directory / name, data, mode=mode)
        written.append(directory / files.STORE_NAME)
        store = NodeStore(directory / files.STORE_NAME)
        try:
            store.set_meta("root_jwk", json.dumps(root.jwk))
            store.record("trust_bundle", bundle.jurisdiction, response.trust_bundle, now, trust)
        finally:
            store.close()
        if peer_listen and not peer_insecure:
            host = peer_listen.rpartition(":")[0].strip("[]")
            written.append(directory / files.TLS_DIR)
            hosts = sorted({"localhost", "127.0.0.1", host} if is_loopback_host(host) else {host})
            (directory / files.TLS_DIR).mkdir(mode=0o700, exist_ok=True)
            create_tls(directory / files.TLS_DIR, common_name=f"clearance node {config.node_id}", hosts=hosts)
        written.append(directory / files.CONFIG_NAME)
        config.save()
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for path in written:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    for extra in ("", "-wal", "-shm"):
                        Path(f"{path}{extra}").unlink(missing_ok=True)
        raise
    return Enrollment(config, root.thumbprint, bundle.version, bool(response.facility_credential))


def _check_facility(sd_jwt: str, trust: TrustStore, key: SigningKey) -> str:
    """Check the facility credential enrollment returned; return the organization's name.

    Its status is not checked here (no list is synced yet): every use checks it.

    Raises:
        VerificationError: not signed by an issuing key of the bundle, not a
            facility credential, or bound to another key than ours.
    """
    assert trust.home is not None
    parts = split(sd_jwt)
    jws = decode_compact(parts.jwt, what="facility credential", typ=SD_JWT_VC_TYP)
    verify_compact(jws, trust.home.issuing_key(jws.kid).key, what="facility credential")
    claims = CredentialClaims.from_payload(resolve_claims(jws.payload, parts.disclosures))
    if claims.kind != FACILITY_VCT or claims.issuer != trust.home.issuer:
        raise VerificationError(
            Reason.WRONG_TYPE, "enrollment returned something other than our facility credential"
        )
    if claims.holder_key != key.public:
        raise VerificationError(
            Reason.INVALID_CLAIM, "the facility credential binds another key than this node's"
        )
    name = (claims.organization or {}).get("name", "")
    return name if isinstance(name, str) else ""


def import_facility(config: NodeConfig, sd_jwt: str, key: SigningKey, trust: TrustStore) -> str:
    """Replace the node's facility credential (a renewed one from the registry).

    Raises:
        VerificationError: as :func:`_check_facility`.
    """
    name = _check_facility(sd_jwt.strip(), trust, key)
    atomic_write(config.path(files.FACILITY_NAME), (sd_jwt.strip() + "\n").encode(), mode=0o600)
    return name
