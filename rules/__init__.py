"""The rules engine: pure, clock-injected logic. Imports nothing from gateway or api."""
