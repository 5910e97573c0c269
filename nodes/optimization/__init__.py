"""The optimization node: target weights with PyPortfolioOpt (execution board)."""
