"""`maas feeds validate`: exit statuses, JSON findings, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from maas.cli import main
from tests.conftest import derive_feed
from tests.helpers import edit_line


def test_validate_exit_status_and_json(small_feed: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["feeds", "validate", str(small_feed), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["valid"] is True
    broken = derive_feed(small_feed, tmp_path / "broken.zip", {"stop_times.txt": edit_line(3, "arrival_time", "7h")})
    bad = runner.invoke(main, ["feeds", "validate", str(broken), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["valid"] is False
    assert {
        "severity": "error",
        "code": "invalid_time",
        "file": "stop_times.txt",
        "line": 3,
        "field": "arrival_time",
    }.items() <= report["findings"][0].items()
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    res = runner.invoke(main, ["feeds", "validate", str(not_zip)])
    assert res.exit_code == 1
    assert "not a zip archive" in res.output
    assert "Traceback" not in res.output
