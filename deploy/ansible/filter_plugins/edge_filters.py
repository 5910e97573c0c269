"""Filters for the edge trader roles (loaded by Ansible, next to site.yml).

- `string_template`: fill a `string.Template` (`${name}` placeholders), as edge.broker does
  for mosquitto/dev.conf, so that mosquitto/core.conf stays one template for both. A missing
  name is an error, never an empty string.
- `edge_units`: the systemd units of one host, one per process, from its placement
  (`edge_nodes`, `edge_instances`, `edge_process_groups`), the same rules as edge.inventory:
  a node placed with instance numbers runs as `<node>_<k>` per number; the idents of a process
  group share one process and one unit named after the group, every other ident has its own;
  and a node is deployed only once it is built, that is, once `nodes/<node>/node.py` exists in
  the checkout on the controller (or `<node>/node.py` for a node with a package of its own at
  the top, the dashboard): a group's unbuilt members are left out, a group with none built has
  no unit. The groups are checked as edge.inventory checks them (this file is loaded by
  Ansible on its own: it imports nothing from the project).
- `edge_unbuilt`: the placed nodes that are not built yet (for a message).
- `edge_extras`: the project's extras a board installs: the ones asked for, and those its
  nodes need (`dashboard` where the dashboard runs).
- `edge_env_clashes`: the settings (`edge_node_env`) that two nodes of one unit give
  different values: one process has one environment, so the role refuses them.
- `edge_unit_inputs`: what a unit runs, as one line of checksums (the current release's
  record, its unit file, the env file of each of its nodes, the CA): the edge_nodes role
  restarts a unit when it differs from the line it was last started with.
"""

from __future__ import annotations

import os
import re
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


GROUP_NAME = re.compile(r"^[a-z][a-z0-9-]*$")  # edge.inventory's rule for a group's name
OWN_MAIN = ("dashboard",)  # nodes with a main of their own (the web app): edge.run hosts them alone


def process_groups(groups: Mapping[str, Any] | None, placed: list[tuple[str, str]], host: str = "") -> dict[str, str]:
    """`edge_process_groups` as ident -> group, checked as edge.inventory checks it: each
    member placed on this host and in one group only, each name free (not a node's or an
    ident's), each group of two or more; and none of them a node that runs a main of its own
    (the dashboard), which `python -m edge.run` refuses to host beside others. `placed`: (node,
    ident) of every placement, built or not."""
    if groups is None or groups == "":
        return {}
    where = f"{host}: edge_process_groups" if host else "edge_process_groups"
    if not isinstance(groups, Mapping):
        raise ValueError(f"{where}: a mapping of group names to lists of nodes placed here")
    idents = [ident for _, ident in placed]
    node_of = {ident: node for node, ident in placed}
    taken = set(idents) | {node for node, _ in placed}
    out: dict[str, str] = {}
    for group, members in groups.items():
        here = f"{where}.{group}"
        if not GROUP_NAME.match(str(group)) or str(group) in taken:
            raise ValueError(f"{here}: a group needs a name of its own ([a-z][a-z0-9-]*, not a node's)")
        if not isinstance(members, (list, tuple)) or len(members) < 2:
            raise ValueError(f"{here}: list two or more of the nodes placed here")
        for ident in map(str, members):
            if ident not in idents:
                raise ValueError(f"{here}: {ident} is not placed on this host ({', '.join(sorted(idents))})")
            if ident in out:
                raise ValueError(f"{here}: {ident} is in {out[ident]} already")
            if node_of[ident] in OWN_MAIN:
                raise ValueError(f"{here}: {ident} runs a main of its own (the web app): give it a process of its own")
            out[ident] = str(group)
    return out


def edge_units(
    nodes: Iterable[str] | None,
    instances: Mapping[str, Any] | None,
    groups: Mapping[str, Any] | None,
    src: str,
    memory_max: Mapping[str, Any] | None = None,
    memory_default: str = "128M",
    host: str = "",
) -> list[dict[str, Any]]:
    """One entry per process (in the order of its first placement): `name` (the group's, or the
    ident's), `unit`, the `idents` it hosts, their unique `nodes`, `instance` (the instance number
    of a unit that hosts one ident, an instance of a pool, else None) and `memory_max` (by the
    process's name; a node's own unit falls back to the node's, `evaluator` for `evaluator_2`;
    then the default)."""
    memory_max = memory_max or {}
    instances = instances or {}
    placed: list[tuple[str, str, int | None]] = []
    for node in map(str, nodes or []):
        for k in instances.get(node) or [None]:
            instance = None if k is None else int(k)
            placed.append((node, node if instance is None else f"{node}_{instance}", instance))
    group_of = process_groups(groups, [(node, ident) for node, ident, _ in placed], host)
    processes: dict[str, list[tuple[str, str, int | None]]] = {}
    for node, ident, instance in placed:
        processes.setdefault(group_of.get(ident, ident), []).append((node, ident, instance))
    out: list[dict[str, Any]] = []
    for name, members in processes.items():
        built = [m for m in members if is_built(m[0], src)]
        if not built:
            continue
        own_node = built[0][0] if name == built[0][1] else None  # a unit of one ident, not a group's
        memory = memory_max.get(name) or (own_node and memory_max.get(own_node)) or memory_default
        out.append(
            {
                "name": name,
                "unit": f"edge-{name}.service",
                "idents": [ident for _, ident, _ in built],
                "nodes": list(dict.fromkeys(node for node, _, _ in built)),
                "instance": built[0][2] if len(built) == 1 else None,
                "memory_max": str(memory),
            }
        )
    return out


def edge_unbuilt(nodes: Iterable[str] | None, src: str) -> list[str]:
    return [str(n) for n in nodes or [] if not is_built(str(n), src)]


def edge_env_clashes(units: Iterable[Mapping[str, Any]], node_env: Mapping[str, Any] | None) -> list[str]:
    """`<unit>: <KEY> (<node>, <node>)` for each setting that nodes of one unit set differently."""
    node_env = node_env or {}
    out: list[str] = []
    for unit in units:
        seen: dict[str, dict[str, str]] = {}  # key -> node -> value
        for node in unit["nodes"]:
            for key, value in (node_env.get(node) or {}).items():
                seen.setdefault(str(key), {})[str(node)] = str(value)
        for key, values in sorted(seen.items()):
            if len(set(values.values())) > 1:
                out.append(f"{unit['unit']}: {key} ({', '.join(values)})")
    return out


def edge_unit_inputs(
    unit: Mapping[str, Any],
    release: str,
    unit_files: Mapping[str, str],
    inputs: Mapping[str, str],
    ca: str = "",
) -> str:
    """`release=<sha1> unit=<sha1> env=<sha1>[,<sha1>...] ca=<sha1>`: the env files of the
    unit's nodes in its order (`-` for a file that is not there)."""
    name = str(unit["unit"])
    parts = {
        "release": release,
        "unit": unit_files.get(name),
        "env": ",".join(inputs.get(f"{node}.env") or "-" for node in unit["nodes"]),
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
            "edge_env_clashes": edge_env_clashes,
            "edge_unit_inputs": edge_unit_inputs,
        }
