"""Agencies: upload GTFS feed versions, read their validation reports, publish them; network versions and rollback."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from feeds.gtfs import feed_id_from_path, validate_gtfs
from feeds.model import ValidationReport
from maas.auth import roles
from maas.db import audit
from maas.db.database import Database
from maas.db.feeds import create_version, find_other_owner, find_version, list_versions
from maas.errors import Conflict, Invalid, NotFound
from maas.model import FeedVersion, NetworkVersion, User
from maas.publish import NetworkService, can_see

_FEED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_DISPOSITION_NAME = re.compile(r"""filename\*?=(?:UTF-8'')?["']?([^"';]+)""", re.IGNORECASE)


def _findings(report: dict[str, Any], severity: str) -> list[dict[str, Any]]:
    return [
        {k: f.get(k) for k in ("code", "file", "line", "field", "message")}
        for f in report.get("findings", [])
        if f.get("severity") == severity
    ]


def version_out(v: FeedVersion, with_report: bool = True) -> dict[str, Any]:
    errors, warnings = _findings(v.report, "error"), _findings(v.report, "warning")
    out: dict[str, Any] = {
        "id": str(v.id),
        "agency": v.agency,
        "feed_id": v.feed_id,
        "status": v.status,
        "error": v.error,
        "sha256": v.sha256,
        "size_bytes": v.size_bytes,
        "uploaded_by": str(v.uploaded_by),
        "created_at": v.created_at.isoformat(),
        "published_at": v.published_at.isoformat() if v.published_at else None,
        "errors": len(errors),
        "warnings": len(warnings),
    }
    if with_report:
        out["report"] = {"ok": not errors, "errors": errors, "warnings": warnings}
    return out


def network_out(n: NetworkVersion, user: User) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": n.id,
        "status": n.status,
        "active": n.active,
        "error": n.error,
        "feeds": [
            {"feed_id": f.feed_id, "version_id": str(f.version_id) if f.version_id else None, "agency": f.agency}
            for f in n.feeds
        ],
        "created_by": str(n.created_by) if n.created_by else None,
        "build_seconds": n.build_seconds,
        "created_at": n.created_at.isoformat(),
        "built_at": n.built_at.isoformat() if n.built_at else None,
        "activated_at": n.activated_at.isoformat() if n.activated_at else None,
        "pruned_at": n.pruned_at.isoformat() if n.pruned_at else None,
    }
    if user.role == "admin":
        out["directory"], out["osm"] = n.directory, n.osm
    return out


def _validate(content: bytes, feed_id: str, name: str) -> ValidationReport:
    """The validation report of an uploaded zip; whatever the bytes are, a report and never an exception."""
    with tempfile.TemporaryDirectory(prefix="maas-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            report = validate_gtfs(path, feed_id)
        except Exception as exc:  # noqa: BLE001 - hostile input must give a report, not a 500
            report = ValidationReport(feed_id=feed_id, source=name)
            report.add("error", "unusable_feed", name, f"the feed cannot be read: {exc}")
    # Messages name the temporary copy; the agency knows the file by its own name.
    findings = [msgspec.structs.replace(f, message=f.message.replace(str(path), name)) for f in report.findings]
    return ValidationReport(feed_id=feed_id, source=name, findings=findings)


async def _upload(request: Request[User, Any, Any], feed_id: str | None) -> tuple[bytes, str | None, str | None]:
    """(zip bytes, file name, feed id) from a multipart form (field `file`, optional `feed_id`) or a raw body."""
    if request.content_type[0] == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("send the GTFS zip in the form field 'file'")
        form_id = form.get("feed_id")
        return await upload.read(), upload.filename, feed_id or (form_id if isinstance(form_id, str) else None)
    match = _DISPOSITION_NAME.search(request.headers.get("content-disposition", ""))
    return await request.body(), match.group(1) if match else None, feed_id


class FeedController(Controller):
    path = "/feeds"
    guards = [roles("agency", "admin")]

    @post("/")
    async def upload(
        self,
        request: Request[User, Any, Any],
        db: NamedDependency[Database],
        feed_id: FromQuery[str | None] = None,
        agency: FromQuery[str | None] = None,
    ) -> Response[dict[str, Any]]:
        """Upload a GTFS zip (body application/zip, or multipart field `file`) and validate it.

        The version is stored as 'uploaded', or 'rejected' when its report has errors; the feed id
        defaults to the file name without extensions. Admins upload for the agency given in `agency`.
        """
        user = request.user
        owner = user.agency if user.role == "agency" else agency
        if not owner:
            raise Invalid(
                "an admin uploads for an agency: give ?agency="
                if user.role == "admin"
                else "this agency user has no agency to publish for"
            )
        content, filename, feed_id = await _upload(request, feed_id)
        if not content:
            raise Invalid("the upload is empty: send the GTFS zip as the body or in the form field 'file'")
        name = Path(filename).name if filename else ""
        feed_id = feed_id or (feed_id_from_path(name) if name else None)
        if not feed_id:
            raise Invalid("give the feed id (?feed_id=) or a file name to take it from")
        if not _FEED_ID.match(feed_id):
            raise Invalid(
                f"feed id {feed_id!r}: use up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        # The report names the file as the agency called it, when that name is a plain file name.
        shown = name if _FILE_NAME.match(name) else f"{feed_id}.gtfs.zip"
        report = await asyncio.to_thread(_validate, content, feed_id, shown)
        async with db.pool.acquire() as conn, conn.transaction():
            other = await find_other_owner(conn, feed_id, owner)
            if other is not None:
                raise Conflict(f"feed id {feed_id!r} is taken by agency {other}; choose another (?feed_id=)")
            version = await create_version(
                conn,
                agency=owner,
                feed_id=feed_id,
                uploaded_by=user.id,
                sha256=hashlib.sha256(content).hexdigest(),
                content=content,
                report=report,
                status="uploaded" if report.ok else "rejected",
            )
            await audit.record(
                conn,
                user.id,
                "upload_feed",
                str(version.id),
                {
                    "agency": owner,
                    "feed_id": feed_id,
                    "status": version.status,
                    "errors": len(report.errors),
                    "warnings": len(report.warnings),
                },
            )
        return Response(version_out(version), status_code=201)

    @get("/")
    async def list_feeds(self, request: Request[User, Any, Any], db: NamedDependency[Database]) -> list[dict[str, Any]]:
        """The caller's agency's feed versions (every agency's for admins), newest first, without reports."""
        user = request.user
        async with db.pool.acquire() as conn:
            versions = await list_versions(conn, None if user.role == "admin" else user.agency or "")
        return [version_out(v, with_report=False) for v in versions]

    @get("/{version_id:uuid}")
    async def get_feed(
        self, request: Request[User, Any, Any], db: NamedDependency[Database], version_id: FromPath[uuid.UUID]
    ) -> dict[str, Any]:
        """One feed version with its status, publishing error and validation report."""
        async with db.pool.acquire() as conn:
            version = await find_version(conn, version_id)
        if version is None or not can_see(request.user, version):
            raise NotFound(f"no feed version {version_id}")
        return version_out(version)

    @post("/{version_id:uuid}/publish", status_code=202)
    async def publish(
        self,
        request: Request[User, Any, Any],
        networks: NamedDependency[NetworkService],
        version_id: FromPath[uuid.UUID],
    ) -> dict[str, Any]:
        """Build a network with this version (replacing its feed's published one) in the background and serve it.

        Publishing an earlier version again rolls the feed back. Poll GET /feeds/{id} for
        'published' or 'failed'; until then the current network keeps serving.
        """
        return version_out(await networks.publish(request.user, version_id))


class NetworkController(Controller):
    path = "/networks"

    @get("/", guards=[roles("agency", "operator", "admin")])
    async def list_networks(
        self, request: Request[User, Any, Any], networks: NamedDependency[NetworkService]
    ) -> list[dict[str, Any]]:
        """Every network version, newest first: its feeds, when it was built, whether it is active or pruned."""
        return [network_out(n, request.user) for n in await networks.list()]

    @post("/{network_id:int}/activate", status_code=200, guards=[roles("operator", "admin")])
    async def activate(
        self, request: Request[User, Any, Any], networks: NamedDependency[NetworkService], network_id: FromPath[int]
    ) -> dict[str, Any]:
        """Serve an earlier (or later) built network again, atomically; its feed versions become the published ones."""
        return network_out(await networks.activate(request.user, network_id), request.user)
