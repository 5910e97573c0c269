"""The trading node: the outbox, the limits and the only way to the broker (execution board)."""
