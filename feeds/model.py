"""Types the feed readers hand to the rest of the system, and their errors."""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["error", "warning"]


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One problem in an input file: where it is and what is wrong."""

    severity: Severity
    code: str
    file: str
    line: int | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        return f"{self.severity}: {where}: {self.message} ({self.code})"


class ValidationReport(msgspec.Struct, kw_only=True):
    """All findings of one feed; a feed with errors must not be published."""

    feed_id: str
    source: str
    findings: list[Finding] = msgspec.field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(
        self,
        severity: Severity,
        code: str,
        file: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.findings.append(Finding(severity=severity, code=code, file=file, line=line, field=field, message=message))


class FeedError(Exception):
    """Input that cannot be used at all; the message names the file (and line where known)."""
