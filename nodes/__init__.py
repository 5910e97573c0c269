"""Domain nodes: one package per node (nodes/<name>/node.py wires it to the runtime)."""
