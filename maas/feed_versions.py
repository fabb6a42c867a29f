"""Agencies' GTFS uploads: validated once, stored with their report, listed and read by their agency."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import asyncpg

from feeds.gtfs import feed_id_from_path
from maas.db import Connection, audit
from maas.db.database import Database
from maas.db.feeds import (
    REJECTED_KEPT_BYTES,
    claim_feed,
    create_version,
    delete_version,
    find_owner,
    find_version,
    list_versions,
    lock_storage,
    stored_bytes,
)
from maas.errors import Conflict, Invalid, NotFound
from maas.feed_check import CheckLimits, validate_upload
from maas.model import FeedStatus, FeedVersion, User
from maas.publish import can_see
from maas.settings import Settings

FEED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
# Versions that no network contains, and that no rollback can need: their agency may delete them.
DELETABLE: tuple[FeedStatus, ...] = ("uploaded", "rejected", "failed")
_MB = 1024 * 1024


async def _claim(conn: Connection, feed_id: str, agency: str) -> None:
    """Take `feed_id` for `agency` unless another agency uploads under it (Conflict)."""
    owner = await find_owner(conn, feed_id)
    if owner is None:
        try:
            async with conn.transaction():  # a savepoint: the upload goes on if the id is ours after all
                await claim_feed(conn, feed_id, agency)
            return
        except asyncpg.UniqueViolationError:  # another upload took the new id first
            owner = await find_owner(conn, feed_id)
    if owner != agency:
        raise Conflict(f"feed id {feed_id!r} is taken by agency {owner}; choose another (?feed_id=)")


async def _within_quota(conn: Connection, agency: str, adding: int, quota: int) -> None:
    """Conflict (409) when `adding` bytes would take `agency` past its storage quota."""
    used = await stored_bytes(conn, agency)
    if used + adding > quota:
        raise Conflict(
            f"agency {agency} stores {used / _MB:.1f} MB of feed versions of its quota of {quota / _MB:.0f} MB;"
            f" this upload of {adding / _MB:.1f} MB does not fit. Free space by deleting versions you no longer"
            f" need (DELETE /feeds/{{id}}: uploaded, rejected or failed ones)",
            used_bytes=used,
            quota_bytes=quota,
        )


class FeedService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.quota_bytes = settings.agency_quota_bytes
        self.limits = CheckLimits(memory_mb=settings.feed_check_memory_mb, cpu_s=settings.feed_check_cpu_s)

    async def upload(
        self, user: User, agency: str | None, content: bytes, filename: str | None, feed_id: str | None
    ) -> FeedVersion:
        """Validate (in a child process, within limits) and store a GTFS zip as 'uploaded', or 'rejected' with
        its report and first bytes only when the report has errors; within the agency's storage quota. The feed
        id defaults to the file name without extensions; admins upload for `agency`, agencies for their own."""
        owner = user.agency if user.role == "agency" else agency
        if not owner:
            raise Invalid(
                "an admin uploads for an agency: give ?agency="
                if user.role == "admin"
                else "this agency user has no agency to publish for"
            )
        if not content:
            raise Invalid("the upload is empty: send the GTFS zip as the body or in the form field 'file'")
        name = Path(filename).name if filename else ""
        feed_id = feed_id or (feed_id_from_path(name) if name else None)
        if not feed_id:
            raise Invalid("give the feed id (?feed_id=) or a file name to take it from")
        if not FEED_ID.match(feed_id):
            raise Invalid(
                f"feed id {feed_id!r}: use up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        # The report names the file as the agency called it, when that name is a plain file name.
        shown = name if FILE_NAME.match(name) else f"{feed_id}.gtfs.zip"
        async with self.db.pool.acquire() as conn:  # refused before any work when it cannot fit
            await _within_quota(conn, owner, len(content), self.quota_bytes)
        report = await validate_upload(content, feed_id, shown, self.limits)
        async with self.db.pool.acquire() as conn, conn.transaction():
            await lock_storage(conn, owner)
            kept = len(content) if report.ok else min(len(content), REJECTED_KEPT_BYTES)
            await _within_quota(conn, owner, kept, self.quota_bytes)
            await _claim(conn, feed_id, owner)
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
        return version

    async def list_versions(self, user: User) -> list[FeedVersion]:
        """The user's agency's feed versions (every agency's for admins), newest first."""
        async with self.db.pool.acquire() as conn:
            return await list_versions(conn, None if user.role == "admin" else user.agency or "")

    async def get(self, user: User, version_id: uuid.UUID) -> FeedVersion:
        """One feed version the user may see; NotFound otherwise."""
        async with self.db.pool.acquire() as conn:
            version = await find_version(conn, version_id)
        if version is None or not can_see(user, version):
            raise NotFound(f"no feed version {version_id}")
        return version

    async def delete(self, user: User, version_id: uuid.UUID) -> FeedVersion:
        """Delete a version no network contains (uploaded, rejected or failed), freeing its agency's storage."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            version = await find_version(conn, version_id, for_update=True)
            if version is None or not can_see(user, version):
                raise NotFound(f"no feed version {version_id}")
            if version.status not in DELETABLE:
                raise Conflict(
                    f"feed version {version_id} is {version.status}: networks contain it (publishing, published or"
                    f" kept for rollback); only {', '.join(DELETABLE)} versions can be deleted",
                    state=version.status,
                )
            await delete_version(conn, version_id)
            await audit.record(
                conn, user.id, "delete_feed", str(version_id), {"agency": version.agency, "feed_id": version.feed_id}
            )
        return version
