"""Agencies' GTFS uploads: validated once, stored with their report, listed and read by their agency."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import uuid
from pathlib import Path

import asyncpg
import msgspec

from feeds.gtfs import feed_id_from_path, validate_gtfs
from feeds.model import ValidationReport
from maas.db import Connection, audit
from maas.db.database import Database
from maas.db.feeds import claim_feed, create_version, find_owner, find_version, list_versions
from maas.errors import Conflict, Invalid, NotFound
from maas.model import FeedVersion, User
from maas.publish import can_see

FEED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


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


class FeedService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upload(
        self, user: User, agency: str | None, content: bytes, filename: str | None, feed_id: str | None
    ) -> FeedVersion:
        """Validate and store a GTFS zip as 'uploaded', or 'rejected' when its report has errors. The feed
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
        report = await asyncio.to_thread(_validate, content, feed_id, shown)
        async with self.db.pool.acquire() as conn, conn.transaction():
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
