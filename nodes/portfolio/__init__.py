"""The portfolio node: positions, cash, deposits and the value of the account (execution board)."""
