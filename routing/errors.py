"""The root of routing's errors: every error the router, the dispatcher, the builder and the network
loader raise on purpose derives from RoutingError, and its message names the input at fault."""

from __future__ import annotations


class RoutingError(Exception):
    """Input routing cannot use: a plan request, a ride, a network directory, build inputs."""
