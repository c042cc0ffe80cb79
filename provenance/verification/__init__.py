"""Verification: the one verifier of evidence bundles, the trust file it pins keys from, bulk verification
of exports, and the tile monitor. Reads the log's formats (``provenance.log``); never talks to a chain."""
