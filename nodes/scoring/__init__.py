"""The scoring node: a documented composite score per security (core board)."""
