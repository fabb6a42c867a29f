"""`python -m maas.cli ...` (how tests and maas/bench/server.py start `maas serve` in a child process)."""

from maas.cli import main

main()
