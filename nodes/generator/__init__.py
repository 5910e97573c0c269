"""The generator: the rules and the search space of feasible action sequences (core board)."""
