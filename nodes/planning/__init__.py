"""The planning node: plans, their approval and their orders, exactly once (core board)."""
