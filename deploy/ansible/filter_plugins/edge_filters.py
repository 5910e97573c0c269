"""Filters for the edge trader roles (loaded by Ansible, next to site.yml).

- `string_template`: fill a `string.Template` (`${name}` placeholders), as edge.broker does
  for mosquitto/dev.conf, so that mosquitto/core.conf stays one template for both. A missing
  name is an error, never an empty string.
- `edge_units`: the systemd units of one host from its placement (`edge_nodes`,
  `edge_instances`), the same rule as edge.inventory: a node placed with instance numbers
  runs as `<node>_<k>` per number, and a node is deployed only once it is built, that is,
  once `nodes/<node>/node.py` exists in the checkout on the controller (or `<node>/node.py`
  for a node with a package of its own at the top, the dashboard).
- `edge_unbuilt`: the placed nodes that are not built yet (for a message).
- `edge_extras`: the project's extras a board installs: the ones asked for, and those its
  nodes need (`dashboard` where the dashboard runs).
- `edge_unit_inputs`: what a unit runs, as one line of checksums (the current release's
  record, its unit file, its node's env file, the CA): the edge_nodes role restarts a unit
  when it differs from the line it was last started with.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from string import Template
from typing import Any


def string_template(text: str, mapping: Mapping[str, Any]) -> str:
    try:
        return Template(str(text)).substitute({str(k): str(v) for k, v in mapping.items()})
    except KeyError as exc:
        raise ValueError(f"string_template: no value for placeholder {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ValueError(f"string_template: {exc}") from None


NOT_NODES = ("edge", "schemas", "nodes", "tests", "bench", "deploy", "docs", "mosquitto")
NODE_EXTRAS = {"dashboard": "dashboard"}  # node -> the project's extra it needs (pyproject)


def is_built(node: str, src: str) -> bool:
    node = str(node)
    return os.path.isfile(os.path.join(str(src), "nodes", node, "node.py")) or (
        node not in NOT_NODES and os.path.isfile(os.path.join(str(src), node, "node.py"))
    )


def edge_extras(extras: Iterable[str] | None, nodes: Iterable[str] | None) -> list[str]:
    wanted = [str(e) for e in extras or []]
    wanted += [NODE_EXTRAS[str(n)] for n in nodes or [] if str(n) in NODE_EXTRAS]
    return sorted(set(wanted))


def edge_units(
    nodes: Iterable[str] | None,
    instances: Mapping[str, Any] | None,
    src: str,
    memory_max: Mapping[str, Any] | None = None,
    memory_default: str = "128M",
) -> list[dict[str, Any]]:
    memory_max = memory_max or {}
    instances = instances or {}
    out: list[dict[str, Any]] = []
    for node in nodes or []:
        node = str(node)
        if not is_built(node, src):
            continue
        numbers = instances.get(node) or [None]
        for k in numbers:
            instance = None if k is None else int(k)
            ident = node if instance is None else f"{node}_{instance}"
            out.append(
                {
                    "node": node,
                    "instance": instance,
                    "ident": ident,
                    "unit": f"edge-{ident}.service",
                    "memory_max": str(memory_max.get(ident) or memory_max.get(node) or memory_default),
                }
            )
    return out


def edge_unbuilt(nodes: Iterable[str] | None, src: str) -> list[str]:
    return [str(n) for n in nodes or [] if not is_built(str(n), src)]


def edge_unit_inputs(
    unit: Mapping[str, Any],
    release: str,
    unit_files: Mapping[str, str],
    inputs: Mapping[str, str],
    ca: str = "",
) -> str:
    """`release=<sha1> unit=<sha1> env=<sha1> ca=<sha1>` (`-` for a file that is not there)."""
    node, name = str(unit["node"]), str(unit["unit"])
    parts = {
        "release": release,
        "unit": unit_files.get(name),
        "env": inputs.get(f"{node}.env"),
        "ca": ca,
    }
    return " ".join(f"{k}={v or '-'}" for k, v in parts.items())


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "string_template": string_template,
            "edge_units": edge_units,
            "edge_unbuilt": edge_unbuilt,
            "edge_extras": edge_extras,
            "edge_unit_inputs": edge_unit_inputs,
        }
