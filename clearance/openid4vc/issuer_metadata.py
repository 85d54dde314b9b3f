"""Credential issuer metadata and authorization server metadata (RFC 8414).

The registry is its own authorization server (pre-authorized code flow only). Endpoints,
relative to the credential issuer identifier (the registry's issuer URL)::

    /.well-known/openid-credential-issuer[/path]   credential issuer metadata
    /.well-known/oauth-authorization-server[/path] authorization server metadata
    /openid4vci/token                              token endpoint (pre-authorized code)
    /openid4vci/nonce                              nonce endpoint (c_nonce)
    /openid4vci/credential                         credential endpoint
    /openid4vci/offers/{secret}                    credential offers by reference

The well-known paths are inserted between host and path (RFC 8414 section 3.1), so an issuer
URL with a path (``https://host/jp``) publishes at ``/.well-known/openid-credential-issuer/jp``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from clearance.credentialtypes import CredentialKind, type_metadata, vct_for
from clearance.errors import MalformedError
from clearance.keys import Alg
from clearance.openid4vc.offers import PRE_AUTHORIZED_GRANT

ISSUER_METADATA_PATH = "/.well-known/openid-credential-issuer"
AUTHORIZATION_SERVER_METADATA_PATH = "/.well-known/oauth-authorization-server"
TOKEN_PATH = "/openid4vci/token"  # noqa: S105  (a path, not a secret)
NONCE_PATH = "/openid4vci/nonce"
CREDENTIAL_PATH = "/openid4vci/credential"
OFFERS_PATH = "/openid4vci/offers"
PERSONNEL_CONFIGURATION = "clearance_personnel_v1"
"""The credential configuration id of a personnel clearance as a ``dc+sd-jwt``."""
SD_JWT_VC_FORMAT = "dc+sd-jwt"


def well_known_path(prefix: str, issuer: str) -> str:
    """``prefix`` inserted before the issuer URL's path (RFC 8414 section 3.1)."""
    path = urlsplit(issuer).path.rstrip("/")
    return prefix + path


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """What the issuer endpoints need to know about the registry.

    Attributes:
        credential_issuer: the credential issuer identifier: the registry's https issuer URL.
        credential_algs: the ``alg`` of the registry's issuing keys (``ES256`` on HAIP).
        proof_algs: the ``alg`` values accepted for proofs of possession.
        display_name: the registry's name, in English and Japanese.
    """

    credential_issuer: str
    credential_algs: tuple[Alg, ...] = ("EdDSA",)
    proof_algs: tuple[str, ...] = ("ES256", "EdDSA", "Ed25519")
    display_name: tuple[str, str] = ("Security clearance registry", "セキュリティ・クリアランス登録機関")

    def __post_init__(self) -> None:
        parts = urlsplit(self.credential_issuer)
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
            raise MalformedError("the credential issuer identifier must be an https URL without query")
        if not self.proof_algs:
            raise MalformedError("at least one proof algorithm must be accepted")

    def url(self, path: str) -> str:
        """An endpoint under the issuer identifier."""
        return self.credential_issuer.rstrip("/") + path

    def origin_url(self, path: str) -> str:
        """A URL on the issuer's host (for the well-known documents)."""
        parts = urlsplit(self.credential_issuer)
        return f"{parts.scheme}://{parts.netloc}{path}"

    @property
    def configuration_ids(self) -> Sequence[str]:
        return (PERSONNEL_CONFIGURATION,)


def _display(names: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": names[0], "locale": "en-US"}, {"name": names[1], "locale": "ja-JP"}]


def credential_issuer_metadata(config: IssuerConfig) -> dict[str, Any]:
    """The credential issuer metadata document."""
    types = type_metadata(CredentialKind.PERSONNEL, config.credential_issuer)
    return {
        "credential_issuer": config.credential_issuer,
        "credential_endpoint": config.url(CREDENTIAL_PATH),
        "nonce_endpoint": config.url(NONCE_PATH),
        "display": _display(config.display_name),
        "credential_configurations_supported": {
            PERSONNEL_CONFIGURATION: {
                "format": SD_JWT_VC_FORMAT,
                "vct": vct_for(CredentialKind.PERSONNEL, config.credential_issuer),
                "cryptographic_binding_methods_supported": ["jwk"],
                "credential_signing_alg_values_supported": list(config.credential_algs),
                "proof_types_supported": {
                    "jwt": {"proof_signing_alg_values_supported": list(config.proof_algs)}
                },
                "credential_metadata": {
                    "display": [
                        {"name": d["name"], "locale": d["locale"], "description": d["description"]}
                        for d in types["display"]
                    ],
                    "claims": [
                        {
                            "path": c["path"],
                            "mandatory": c["mandatory"],
                            "display": [{"name": d["label"], "locale": d["locale"]} for d in c["display"]],
                        }
                        for c in types["claims"]
                    ],
                },
            }
        },
    }


def authorization_server_metadata(config: IssuerConfig) -> dict[str, Any]:
    """The authorization server metadata document (pre-authorized code flow only)."""
    return {
        "issuer": config.credential_issuer,
        "token_endpoint": config.url(TOKEN_PATH),
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }
