"""The private PostgreSQL of the tests: simulators/postgres.py (the benchmarks start it too)."""

from simulators.postgres import SEARCH_PATH, SETTINGS, PostgresServer, executable

__all__ = ["SEARCH_PATH", "SETTINGS", "PostgresServer", "executable"]
