"""Public endpoints: the platform's SM2 public key (well-known URL), code verification, health."""

from __future__ import annotations

from fastapi import APIRouter, Response

from medrisk.crypto import DEFAULT_UID
from medrisk.platform import authcode
from medrisk.web.common import ERRORS
from medrisk.web.deps import Ctx
from medrisk.web.schemas import PublicKeyOut, VerifyIn, VerifyOut

router = APIRouter(tags=["public"], responses=ERRORS)

KEY_PATH = "/.well-known/medrisk/platform-key.pem"


@router.get(
    KEY_PATH,
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}},
    summary="The platform's SM2 public key (PEM), for offline verification",
)
def public_key_pem(ctx: Ctx) -> Response:
    return Response(ctx.keys.public_pem(), media_type="application/x-pem-file")


@router.get("/.well-known/medrisk/platform-key.json", response_model=PublicKeyOut, summary="The public key with its id")
def public_key_json(ctx: Ctx) -> PublicKeyOut:
    return PublicKeyOut(
        kid=ctx.keys.kid,
        algorithm="SM2 with SM3 (GB/T 32918.2)",
        uid=DEFAULT_UID.decode(),
        public_key_pem=ctx.keys.public_pem().decode(),
    )


@router.post(
    "/api/v1/authcodes/verify", response_model=VerifyOut, summary="Verify an authorisation code (no login needed)"
)
def verify_code(body: VerifyIn, ctx: Ctx) -> VerifyOut:
    with ctx.db.session() as db:
        return VerifyOut.model_validate(authcode.verify(ctx, db, body.code).to_dict())


@router.get("/healthz", summary="Liveness", response_model=dict[str, str])
def healthz() -> dict[str, str]:
    return {"status": "ok"}
