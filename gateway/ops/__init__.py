"""Operations: backup and restore, the log checked against the chain after a restore, key rotation."""
