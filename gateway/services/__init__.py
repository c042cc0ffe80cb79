"""Gateway services: write path, SQL-backed log, workers, ledger client, key cache."""
