"""The log as C2SP tlog-tiles: ``/tiles/checkpoint`` and immutable ``/tiles/tile/...`` paths. Public."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from gateway.api.deps import GatewayDep, SessionDep
from gateway.errors import NotYetLogged
from gateway.services.tiles import tile_bytes
from gateway.services.witnessing import cosigned_note, published
from provenance.errors import FormatError, NotFound
from provenance.log.tiles import Tile

router = APIRouter(prefix="/tiles", tags=["tiles"])

IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/checkpoint", response_class=Response)
def checkpoint(gw: GatewayDep, session: SessionDep) -> Response:
    """The newest checkpoint with the witness quorum (else the newest), with its cosignature lines."""
    row = published(session, gw.settings.witness_quorum)
    if row is None:
        raise NotYetLogged("no checkpoint has been signed yet")
    # Mutable: caches must ask again (tlog-tiles: no caching beyond a few seconds).
    headers = {"Cache-Control": "no-cache"}
    return Response(cosigned_note(session, row), media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/tile/{path:path}", response_class=Response)
def tile(path: str, session: SessionDep) -> Response:
    """A tile (``<L>/<N>[.p/<W>]``) or entry bundle (``entries/<N>[.p/<W>]``): never changes once served."""
    try:
        t = Tile.parse("tile/" + path)
    except FormatError as exc:
        raise NotFound(f"no such tile: {exc.message}", details={"path": path}) from exc
    data = tile_bytes(session, t)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE})
