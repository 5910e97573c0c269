"""The scheduler: cadences for every recurring job (core board)."""
