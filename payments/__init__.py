"""Payment records: the pure state machine and the stores that persist it."""
