"""Benchmarks (`maas bench ...`) and the helper that starts `maas serve` in a child process.

Each benchmark prints tables with a reference measured in the same run; none is a timed assertion.
They benchmark `routing` and the running service from outside, so nothing in the service imports them.
"""
