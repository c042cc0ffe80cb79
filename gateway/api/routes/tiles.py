"""The log as C2SP tlog-tiles: ``/tiles/checkpoint`` and immutable ``/tiles/tile/...`` paths.

The checkpoint and the hash tiles are public: they are hashes and a signed size, what witnesses and anyone
checking a bundle's proof need, and a leaf hash cannot be tested against a guess (the entry it hashes holds
an SM2 signature). The entry bundles are the signed envelopes themselves (organisation, kind, subject:
``rx:<id>``, time): they answer only an auditor's, a regulator's or a log operator's API token, or the
monitor token (``PROV_GW_MONITOR_TOKEN``), as the read matrix would (``docs/security.md``).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.api.deps import BearerDep, GatewayDep, SessionDep, require_oversight
from gateway.errors import NotYetLogged, error_responses
from gateway.services.tiles import tile_bytes
from gateway.services.witnessing import cosigned_note, published
from provenance.errors import FormatError, NotFound
from provenance.log.tiles import Tile

router = APIRouter(prefix="/tiles", tags=["tiles"])

IMMUTABLE = "public, max-age=31536000, immutable"
# Entry bundles answer some tokens only: no shared cache may keep one for the next client.
IMMUTABLE_PRIVATE = "private, max-age=31536000, immutable"


@router.get("/checkpoint", response_class=Response)
def checkpoint(gw: GatewayDep, session: SessionDep) -> Response:
    """The newest checkpoint with the witness quorum (else the newest), with its cosignature lines."""
    row = published(session, gw.settings.witness_quorum)
    if row is None:
        raise NotYetLogged("no checkpoint has been signed yet")
    # Mutable: caches must ask again (tlog-tiles: no caching beyond a few seconds).
    headers = {"Cache-Control": "no-cache"}
    return Response(cosigned_note(session, row), media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/tile/{path:path}", response_class=Response, responses=error_responses(401, 403, 404))
def tile(path: str, gw: GatewayDep, session: SessionDep, creds: BearerDep) -> Response:
    """A hash tile (``<L>/<N>[.p/<W>]``, public) or an entry bundle (``entries/<N>[.p/<W>]``: the API token
    of an auditor, a regulator or a log operator, or the monitor token): never changes once served."""
    try:
        t = Tile.parse("tile/" + path)
    except FormatError as exc:
        raise NotFound(f"no such tile: {exc.message}", details={"path": path}) from exc
    cache = IMMUTABLE
    if t.entries:
        require_oversight(gw, creds, what="an entry bundle", service_token=gw.settings.monitor_token)
        cache = IMMUTABLE_PRIVATE
    data = tile_bytes(session, t)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": cache})
