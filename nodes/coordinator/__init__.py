"""The coordinator: runs planning cycles over the evaluator workers (core board)."""
