"""`maas bench dispatch` as a user runs it: quote latency on a booked fleet, against the oracle."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from maas.cli import main


def test_bench_dispatch_times_quotes_against_the_oracle(network_dir: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "bench",
            "dispatch",
            str(network_dir),
            "--vehicles",
            "5",
            "--requests",
            "30",
            "--quotes",
            "20",
            "--oracle-quotes",
            "1",
            "--reoptimize-s",
            "0.3",
        ],
    )
    assert result.exit_code == 0, result.output
    quote = next(line for line in result.output.splitlines() if "quote (20 requests" in line)
    p50, p95 = (float(x) for x in quote.split("│")[2:4])
    assert 0 < p50 <= p95
    assert "1 agree" in result.output and "saved" in result.output


def test_bench_dispatch_needs_a_drive_graph(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "dispatch", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
