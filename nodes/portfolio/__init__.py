"""The portfolio node: positions, cash, the money moved in and out (deposits, withdrawals,
dividends, fees, taxes) and the value of the account (execution board)."""
