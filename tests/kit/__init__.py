"""Helpers shared by the test suites, the security suite and the benchmarks: real networks, gateways,
nodes, witnesses and signed records, importable as ``tests.kit.<module>`` (no ``sys.path`` edits)."""
