"""What every registry servicer shares: the context, and the status-list URI of a credential."""

from __future__ import annotations

import json

from clearance.v1 import registry_pb2 as pb
from registry.api.conversions import credential_pb
from registry.context import RegistryContext
from registry.publication import publisher
from registry.store.models import (
    CredentialLike,
    StatusListRow,
)


class ServicerBase:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx
        self._uris: dict[int, str] = {}

    def credential_message(self, credential: CredentialLike) -> pb.CredentialRecord:
        uri = self._uris.get(credential.status_list_id)
        if uri is None:
            with self.ctx.db.transaction() as session:
                row = session.get(StatusListRow, credential.status_list_id)
                uri = self._uris[credential.status_list_id] = row.uri if row else ""
        return credential_pb(credential, uri, self.ctx.now())


def root_jwk_json(ctx: RegistryContext) -> str:
    from clearance.bundle import TrustBundle

    token = publisher.bundle_token(ctx)
    return json.dumps(TrustBundle.header_root(token).jwk)
