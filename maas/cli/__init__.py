"""The `maas` command line: build and inspect networks, validate feeds, replay GTFS-Realtime, run the demo and benchmarks."""

from __future__ import annotations

import click

from maas.cli.bench import bench
from maas.cli.common import exit_on_termination
from maas.cli.darp import darp
from maas.cli.demo import demo
from maas.cli.feeds import feeds
from maas.cli.network import network
from maas.cli.plan import plan
from maas.cli.retention import retention
from maas.cli.rt import rt
from maas.cli.serve import serve
from maas.cli.users import user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="maas")
def main() -> None:
    """maas: on-demand rural mobility - multimodal networks, journey planning, dispatch, booking."""
    exit_on_termination()


for command in (network, plan, feeds, rt, demo, darp, bench, user, serve, retention):
    main.add_command(command)
