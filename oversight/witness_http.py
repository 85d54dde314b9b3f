"""The witness's HTTP interface: ``POST /add-checkpoint`` (c2sp.org/tlog-witness), served by :mod:`clearance.web`.

The body is read under the server's cap, then checked in a worker thread
(signature checks and an fsync'd SQLite write); the reply is the cosignature
lines (200), or a refusal with the status :data:`oversight.witness.STATUS_BY_REASON`
gives, a 409 carrying the witness's latest size as ``text/x.tlog.size``.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clearance.errors import ClearanceError, VerificationError
from clearance.web import WebLimits
from oversight.witness import MAX_REQUEST_SIZE, STATUS_BY_REASON, CheckpointConflictError, Witness

log = logging.getLogger("clearance.witness")

WITNESS_LIMITS = WebLimits(
    max_body_bytes=MAX_REQUEST_SIZE,
    allowed_methods=frozenset({"GET", "HEAD", "POST"}),
)


def witness_app(witness: Witness) -> Starlette:
    """The Starlette app of one witness."""

    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        try:
            lines = await run_in_threadpool(witness.add_checkpoint, body)
        except CheckpointConflictError as exc:
            log.info("refused %s: %s", exc.reason.value, exc.detail)
            return Response(
                f"{exc.latest_size}\n", status_code=409, headers={"content-type": "text/x.tlog.size"}
            )
        except VerificationError as exc:
            log.info("refused %s: %s", exc.reason.value, exc.detail)
            status = STATUS_BY_REASON.get(exc.reason, 400)
            return PlainTextResponse(f"{exc.reason.value}: {exc.detail}\n", status_code=status)
        except ClearanceError:
            log.exception("add-checkpoint failed")
            return PlainTextResponse("internal error\n", status_code=500)
        return PlainTextResponse(lines)

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])
