"""`python -m edge.run NODE [NODE ...]`: run one node, or several in one process
(`edge/process.py`), from the environment (launcher and systemd).

NODE is a node's name (`universe` runs `nodes.universe.node:node`; a node with a package of
its own at the top, `dashboard`, runs `dashboard.node:node`), an instance of a worker pool
(`evaluator_2`), or `module:attr` (`module:attr@2` for an instance). A single NODE without
one takes its instance from `EDGE_INSTANCE`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

from . import process
from .node import Node


def module_of(name: str) -> str:
    """The module of a node called `name`: `nodes.<name>.node`, else `<name>.node`."""
    return f"nodes.{name}.node" if importlib.util.find_spec(f"nodes.{name}") is not None else f"{name}.node"


def load_node(spec: str) -> Node:
    module_name, _, attr = spec.partition(":") if ":" in spec else (module_of(spec), ":", "node")
    node = getattr(importlib.import_module(module_name), attr or "node")
    if not isinstance(node, Node):
        raise TypeError(f"{spec} is not an edge Node")
    return node


def load(spec: str, instance: int | None = None) -> tuple[Node, int | None]:
    """A NODE argument: the node, and its instance (`evaluator_2`, `module:attr@2`, else `instance`)."""
    if ":" in spec:
        module, _, number = spec.partition("@")
        return load_node(module), int(number) if number else instance
    name, numbered = process.split_ident(spec)
    return load_node(name), numbered if numbered is not None else instance


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        sys.exit("usage: python -m edge.run NODE [NODE ...]   (NODE: name, name_<k>, module:attr[@k])")
    if len(args) == 1:  # a node alone runs its own main (the dashboard's serves the web app too)
        node, instance = load(args[0])
        if instance is not None:
            os.environ["EDGE_INSTANCE"] = str(instance)
        node.main()
        return
    nodes = [load(spec) for spec in args]
    alone = [n.name for n, _ in nodes if type(n).main is not Node.main]
    if alone:
        sys.exit(f"edge.run: {', '.join(alone)} runs a main of its own: give it a process of its own")
    process.main(process.hosted(nodes))


if __name__ == "__main__":
    main()
