"""The opportunity node: candidate actions from scores, targets and the portfolio (core board)."""
