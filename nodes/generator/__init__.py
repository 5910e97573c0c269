"""The generator: feasible action sequences from the candidates (core board)."""
