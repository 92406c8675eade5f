"""Uploads (multipart) and signed, expiring file downloads."""

from __future__ import annotations

import mimetypes
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from nodeloom.api import models as m
from nodeloom.api.deps import BaseUrl, ExecuteScope, FilesDep, SettingsDep
from nodeloom.api.openapi import answers, upload_body
from nodeloom.errors import PayloadTooLarge, ValidationFailed
from nodeloom.services.files import FILE_HEADERS

router = APIRouter(prefix="/api/v1", tags=["files"])

ALLOWED_PREFIXES = ("image/", "video/", "audio/", "text/", "application/json", "application/pdf",
                    "application/octet-stream")


@router.post("/uploads", status_code=201, summary="Upload a file (multipart field `file`)",
             description="Pass the `fileId` as an image, video, audio or file input.", openapi_extra=upload_body(),
             responses=answers(201, m.UploadedFile, description="Stored", errors={
                 413: ["payload_too_large"], 422: ["validation_error"]}))
async def upload(request: Request, files: FilesDep, settings: SettingsDep, p: ExecuteScope,
                 base: BaseUrl) -> dict[str, Any]:
    form = await request.form(max_files=1, max_fields=10, max_part_size=settings.max_upload_bytes)
    file = form.get("file")
    if not isinstance(file, UploadFile):  # starlette's, which a form hands out (fastapi's is a subclass)
        raise ValidationFailed("send the file as multipart/form-data field 'file'",
                               [{"path": "file", "message": "missing file field"}])
    limit = settings.max_upload_bytes
    data = await file.read(limit + 1)
    await form.close()
    if len(data) > limit:
        raise PayloadTooLarge(f"uploads are limited to {limit} bytes")
    if not data:
        raise ValidationFailed("the file is empty", [{"path": "file", "message": "empty file"}])
    ctype = (getattr(file, "content_type", None) or mimetypes.guess_type(getattr(file, "filename", "") or "")[0]
             or "application/octet-stream").split(";")[0].strip().lower()
    if not ctype.startswith(ALLOWED_PREFIXES):
        raise ValidationFailed(f"unsupported content type {ctype}", [{"path": "file", "message": "unsupported type"}])
    stored = await run_in_threadpool(files.store, account_id=p.account_id, data=data, content_type=ctype,
                                     name=getattr(file, "filename", None))
    out: dict[str, Any] = {"fileId": stored.id, "url": files.url(stored.id, base),
                           "contentType": stored.content_type, "size": stored.size}
    if stored.width is not None:
        out["width"], out["height"] = stored.width, stored.height
    return out


@router.get("/files/{file_id}", summary="Download a stored file (a signed link)", response_class=Response,
            description="Needs no header while the signature is valid and unexpired. Not rate limited.",
            responses={**answers(200, description="The file", content={
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "image/*": {"schema": {"type": "string", "format": "binary"}}},
                errors={403: ["invalid_signature"], 404: ["not_found"]}),
                307: {"description": "Object storage: a presigned URL that expires with ours",
                      "headers": {"Location": {"schema": {"type": "string"}}}}})
def download(file_id: str, files: FilesDep, exp: str | None = None, sig: str | None = None) -> Response:
    """A signed download, served so that no browser runs it on our origin: the server's own idea of the type
    (sniffed at store), `attachment` unless it is plain media, `nosniff` and a sandboxing CSP (API.md "Files")."""
    found = files.download(file_id, exp, sig)
    headers = {**FILE_HEADERS, "Content-Disposition": found.disposition}
    if found.redirect_url is not None:  # object storage: a presigned URL that expires with ours
        return RedirectResponse(found.redirect_url, status_code=307, headers=FILE_HEADERS)
    headers["Cache-Control"] = "private, max-age=3600"
    if found.path is not None:
        return FileResponse(found.path, media_type=found.content_type, headers=headers)
    return Response(found.data or b"", media_type=found.content_type, headers=headers)
