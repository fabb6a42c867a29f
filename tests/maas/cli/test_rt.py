"""`maas rt replay` posts recorded GTFS-Realtime messages to a running `maas serve`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from maas.cli import main
from tests.conftest import shared
from tests.helpers import S1_TRIP, delayed_s1
from tests.maas.conftest import Users

pytestmark = pytest.mark.usefixtures("no_stored_realtime")


def test_replay_posts_a_file_and_plans_take_it(server: str, users: Users, tmp_path: Path) -> None:
    _, operator = users.make("operator")
    token = operator["Authorization"].removeprefix("Bearer ")
    recording = tmp_path / "s1-late.pb"
    recording.write_bytes(delayed_s1())
    result = CliRunner().invoke(
        main, ["rt", "replay", str(recording), "--feed", "vvs-s1-only", "--url", server, "--token", token]
    )
    assert result.exit_code == 0, result.output
    assert "s1-late.pb: stored as vvs-s1-only's latest trip updates" in result.output
    assert "1 trip runs retimed, 0 cancelled" in result.output
    plan = httpx.get(
        f"{server}/plan",
        headers=operator,
        params={
            "from": "stop:vvs-s1-only:de:08115:5773:1:1",
            "to": "stop:vvs-s1-only:de:08115:7100:2:3",
            "depart": "2020-10-06T07:50:00+02:00",
            "max_walk_m": 0,
        },
        timeout=30,
    ).json()
    leg = plan["itineraries"][0]["legs"][0]
    assert (leg["trip"], leg["delay_s"]) == (f"vvs-s1-only:{S1_TRIP}", 360)


def test_replay_of_a_folder_goes_in_name_order_and_fresh_restamps(server: str, users: Users, tmp_path: Path) -> None:
    _, admin = users.make("admin")
    token = admin["Authorization"].removeprefix("Bearer ")
    (tmp_path / "2-late.pb").write_bytes(delayed_s1())
    (tmp_path / "1-caltrain.pb").write_bytes(shared("rt", "caltrain-trip-updates.pb").read_bytes())
    (tmp_path / "notes.txt").write_text("not a message")
    args = ["rt", "replay", str(tmp_path), "--feed", "vvs-s1-only", "--url", server, "--token", token]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "give --interval" in result.output
    result = CliRunner().invoke(main, [*args, "--interval", "0.2", "--json"])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert (first["trip_updates"], first["applied"]["used"]) == (19, False) and "stale" in first["applied"]["ignored"]
    assert second["trip_updates"] == 1 and second["applied"]["used"] and second["version"] > first["version"]
    # Restamped, the Caltrain recording is fresh: used, though its trips are not the S1's.
    result = CliRunner().invoke(main, [*args[:2], str(tmp_path / "1-caltrain.pb"), *args[3:], "--fresh"])
    assert result.exit_code == 0, result.output
    assert "0 trip runs retimed, 0 cancelled, 19 unknown trips" in result.output


def test_replay_refusals_are_messages_not_tracebacks(server: str, users: Users, tmp_path: Path) -> None:
    _, rider = users.make("rider")
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"<html>502</html>")
    base = ["rt", "replay", str(garbage), "--feed", "vvs-s1-only", "--url", server]
    result = CliRunner().invoke(main, base, env={"MAAS_TOKEN": ""})
    assert result.exit_code == 2 and "give --token" in result.output
    _, operator = users.make("operator")
    result = CliRunner().invoke(main, [*base, "--token", operator["Authorization"].removeprefix("Bearer ")])
    assert result.exit_code == 2 and "422" in result.output and "not a GTFS-Realtime FeedMessage" in result.output
    result = CliRunner().invoke(main, [*base, "--token", rider["Authorization"].removeprefix("Bearer ")])
    assert result.exit_code == 2 and "403" in result.output
    result = CliRunner().invoke(main, [*base, "--token", "x", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2 and "cannot post to http://127.0.0.1:9/realtime/gtfs-rt/vvs-s1-only" in result.output
    assert "Traceback" not in result.output
