"""`python -m edge.run NODE`: run one node from the environment (launcher and systemd).

NODE is a node's name (`universe` runs `nodes.universe.node:node`; a node with a package of
its own at the top, `dashboard`, runs `dashboard.node:node`) or `module:attr`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m edge.run NODE|module:attr")
    load_node(args[0]).main()


if __name__ == "__main__":
    main()
