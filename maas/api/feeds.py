"""Agencies: upload GTFS feed versions, read their validation reports, publish them; network versions and rollback."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, PathParameter

from feeds.model import Finding
from maas.auth import roles
from maas.errors import Invalid
from maas.feed_versions import FeedService
from maas.model import FeedStatus, FeedVersion, NetworkStatus, NetworkVersion, User
from maas.publish import NetworkService
from maas.wire import MAX_INT32, Timestamp, iso, iso_or_none

_DISPOSITION_NAME = re.compile(r"""filename\*?=(?:UTF-8'')?["']?([^"';]+)""", re.IGNORECASE)


class FindingOut(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    file: str
    line: int | None
    field: str | None
    message: str


class ReportOut(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    errors: list[FindingOut]
    warnings: list[FindingOut]


class FeedVersionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    agency: str
    feed_id: str
    status: FeedStatus
    error: str | None
    sha256: str
    size_bytes: int
    uploaded_by: uuid.UUID
    created_at: Timestamp
    published_at: Timestamp | None
    errors: int
    warnings: int
    report: ReportOut | msgspec.UnsetType = msgspec.UNSET  # left out of lists


class NetworkFeedOut(msgspec.Struct, frozen=True, kw_only=True):
    feed_id: str
    version_id: uuid.UUID | None
    agency: str | None


class NetworkOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    status: NetworkStatus
    active: bool
    error: str | None
    feeds: list[NetworkFeedOut]
    created_by: uuid.UUID | None
    build_seconds: float | None
    created_at: Timestamp
    built_at: Timestamp | None
    activated_at: Timestamp | None
    pruned_at: Timestamp | None
    # Where it lives on the server: shown to admins only.
    directory: str | msgspec.UnsetType = msgspec.UNSET
    osm: str | msgspec.UnsetType | None = msgspec.UNSET


def _finding_out(f: Finding) -> FindingOut:
    return FindingOut(code=f.code, file=f.file, line=f.line, field=f.field, message=f.message)


def version_out(v: FeedVersion, with_report: bool = True) -> FeedVersionOut:
    errors, warnings = v.report.errors, v.report.warnings
    return FeedVersionOut(
        id=v.id,
        agency=v.agency,
        feed_id=v.feed_id,
        status=v.status,
        error=v.error,
        sha256=v.sha256,
        size_bytes=v.size_bytes,
        uploaded_by=v.uploaded_by,
        created_at=iso(v.created_at),
        published_at=iso_or_none(v.published_at),
        errors=len(errors),
        warnings=len(warnings),
        report=ReportOut(
            ok=not errors, errors=[_finding_out(f) for f in errors], warnings=[_finding_out(f) for f in warnings]
        )
        if with_report
        else msgspec.UNSET,
    )


def network_out(n: NetworkVersion, user: User) -> NetworkOut:
    admin = user.role == "admin"
    return NetworkOut(
        id=n.id,
        status=n.status,
        active=n.active,
        error=n.error,
        feeds=[NetworkFeedOut(feed_id=f.feed_id, version_id=f.version_id, agency=f.agency) for f in n.feeds],
        created_by=n.created_by,
        build_seconds=n.build_seconds,
        created_at=iso(n.created_at),
        built_at=iso_or_none(n.built_at),
        activated_at=iso_or_none(n.activated_at),
        pruned_at=iso_or_none(n.pruned_at),
        directory=n.directory if admin else msgspec.UNSET,
        osm=n.osm if admin else msgspec.UNSET,
    )


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
        feed_versions: NamedDependency[FeedService],
        feed_id: FromQuery[str | None] = None,
        agency: FromQuery[str | None] = None,
    ) -> Response[FeedVersionOut]:
        """Upload a GTFS zip (body application/zip, or multipart field `file`) and validate it.

        The version is stored as 'uploaded', or 'rejected' when its report has errors; the feed id
        defaults to the file name without extensions. Admins upload for the agency given in `agency`.
        """
        content, filename, feed_id = await _upload(request, feed_id)
        version = await feed_versions.upload(request.user, agency, content, filename, feed_id)
        return Response(version_out(version), status_code=201)

    @get("/")
    async def list_feeds(
        self, request: Request[User, Any, Any], feed_versions: NamedDependency[FeedService]
    ) -> list[FeedVersionOut]:
        """The caller's agency's feed versions (every agency's for admins), newest first, without reports."""
        return [version_out(v, with_report=False) for v in await feed_versions.list_versions(request.user)]

    @get("/{version_id:uuid}")
    async def get_feed(
        self,
        request: Request[User, Any, Any],
        feed_versions: NamedDependency[FeedService],
        version_id: FromPath[uuid.UUID],
    ) -> FeedVersionOut:
        """One feed version with its status, publishing error and validation report."""
        return version_out(await feed_versions.get(request.user, version_id))

    @delete("/{version_id:uuid}", status_code=200)
    async def delete_feed(
        self,
        request: Request[User, Any, Any],
        feed_versions: NamedDependency[FeedService],
        version_id: FromPath[uuid.UUID],
    ) -> FeedVersionOut:
        """Delete a feed version that no network contains (uploaded, rejected or failed) to free the agency's
        storage quota; the answer is the version deleted. Published and retired versions stay (409), for rollback."""
        return version_out(await feed_versions.delete(request.user, version_id))

    @post("/{version_id:uuid}/publish", status_code=202)
    async def publish(
        self,
        request: Request[User, Any, Any],
        networks: NamedDependency[NetworkService],
        version_id: FromPath[uuid.UUID],
    ) -> FeedVersionOut:
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
    ) -> list[NetworkOut]:
        """Every network version, newest first: its feeds, when it was built, whether it is active or pruned."""
        return [network_out(n, request.user) for n in await networks.list_networks()]

    @post("/{network_id:int}/activate", status_code=200, guards=[roles("operator", "admin")])
    async def activate(
        self,
        request: Request[User, Any, Any],
        networks: NamedDependency[NetworkService],
        network_id: Annotated[int, PathParameter(ge=1, le=MAX_INT32)],
    ) -> NetworkOut:
        """Serve an earlier (or later) built network again, atomically; its feed versions become the published ones."""
        return network_out(await networks.activate(request.user, network_id), request.user)
