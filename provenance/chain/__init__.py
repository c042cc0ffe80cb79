"""The chain client (web3.py): contract artifacts and calls, the one JSON-RPC connection, the live anchor
check, the trust file read from ``OrgRegistry``, the block seal format and chain re-verification, and the
auditors' event reads."""
