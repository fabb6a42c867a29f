"""`maas bench api` against a real server: what its table reports is what the database holds."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import asyncpg
import msgspec
from click.testing import CliRunner

from maas.bench.server import running_server
from maas.cli import main
from maas.settings import Settings
from tests.maas.conftest import Users, fresh_database


def _count(url: str, sql: str) -> int:
    async def work() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(work())


def _row(output: str, what: str) -> list[str]:
    """The cells of the table row that starts with `what`."""
    line = next(line for line in output.splitlines() if what in line)
    return [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]


def test_bench_api_confirms_bookings_and_ingests_positions_on_a_running_server(
    settings: Settings, network_dir: Path
) -> None:
    assert settings.database_url is not None
    with fresh_database(settings.database_url, "maas_bench") as url:
        own = msgspec.structs.replace(settings, database_url=url)
        env = {
            **os.environ,
            "MAAS_DATABASE_URL": url,
            "MAAS_JWT_SECRET": own.jwt_secret,
            "MAAS_NETWORK_DIR": str(network_dir),
            "MAAS_DATA_DIR": str(own.data_dir),
            "MAAS_RATE_LIMIT_PER_MINUTE": "1000000",
        }
        with running_server(env, workers=1, timeout_s=60) as server:
            _, admin = Users(own).make("admin")
            token = admin["Authorization"].removeprefix("Bearer ")
            result = CliRunner().invoke(
                main,
                [
                    "bench",
                    "api",
                    str(network_dir),
                    "--url",
                    server,
                    "--admin-token",
                    token,
                    "--bookings",
                    "40",
                    "--vehicles",
                    "4",
                    "--positions",
                    "500",
                    "--concurrency",
                    "4",
                ],
                env={"COLUMNS": "200"},
            )
        assert result.exit_code == 0, result.output
        booked = _row(result.output, "bookings confirmed")
        # requests, ok: every booking the table counts as confirmed is a stored, confirmed booking.
        assert int(booked[1]) == 40
        assert int(booked[2]) == _count(url, "SELECT count(*) FROM bookings WHERE status = 'confirmed'") > 0
        assert int(booked[2]) + int(re.search(r"(\d+) refused", result.output)[1]) == 40
        assert "0 other answers" in result.output
        health = _row(result.output, "GET /health")
        assert health[1] == health[2] == "40"
        positions = _row(result.output, "positions ingested")
        assert positions[1] == positions[2] == "5"  # 5 batches of 100, all accepted and stored
        assert _count(url, "SELECT count(*) FROM positions") == 500
        assert _count(url, "SELECT count(*) FROM latest_positions") == 4
