"""Gateway core: settings, database, security."""
