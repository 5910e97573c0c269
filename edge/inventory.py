"""Placement: which node runs on which board, read from the Ansible inventory.

The inventory (`deploy/ansible/inventory/*.yml`) is the one source of truth: Ansible
renders a systemd unit per node from it, and the local launcher starts the same
nodes as child processes. A host's `edge_nodes` lists its nodes; `edge_instances`
gives the instance numbers of nodes that run as several workers (`evaluator: [1, 2]`);
`edge_process_groups` names groups of nodes, light at rest, that share one process and one
systemd unit (`planner: [generator, opportunity, planning, scheduler]`, `evaluators:
[evaluator_2, evaluator_3]`: `edge/process.py` says what they share and what not); every
other node runs in a process of its own. `edge_node_modules` may point a node at another
module (tests use it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .settings import REPO_ROOT

INVENTORY_DIR = REPO_ROOT / "deploy" / "ansible" / "inventory"
DEFAULT_INVENTORY = INVENTORY_DIR / "single-board.yml"
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
ALONE = ("dashboard",)  # runs a main of its own (the web app): never in a process group


@dataclass(frozen=True)
class Placement:
    node: str
    board: str
    host: str
    instance: int | None = None
    module: str | None = None  # `module:attr` of the Node; default `nodes.<node>.node:node`
    group: str | None = None  # the process group it shares a process with (edge_process_groups)

    @property
    def ident(self) -> str:
        return self.node if self.instance is None else f"{self.node}_{self.instance}"

    @property
    def process(self) -> str:
        """The name of the process (and of its systemd unit, `edge-<process>.service`)."""
        return self.group or self.ident

    @property
    def spec(self) -> str:
        """How `python -m edge.run` names it beside others in one process."""
        if self.module is None:
            return self.ident
        return self.module if self.instance is None else f"{self.module}@{self.instance}"


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def board(self) -> str:
        return str(self.vars.get("edge_board") or (self.groups[0] if self.groups else self.name))

    def placements(self) -> list[Placement]:
        out: list[Placement] = []
        instances = self.vars.get("edge_instances") or {}
        modules = self.vars.get("edge_node_modules") or {}
        for node in self.vars.get("edge_nodes") or []:
            numbers = instances.get(node) or [None]
            out += [
                Placement(node, self.board, self.name, None if k is None else int(k), modules.get(node))
                for k in numbers
            ]
        group_of = self.groups_of_idents({p.ident for p in out}, {p.node for p in out})
        return [replace(p, group=group_of.get(p.ident)) for p in out]

    def groups_of_idents(self, placed: set[str], nodes: set[str]) -> dict[str, str]:
        """`edge_process_groups` as ident -> group, checked: each member placed on this host
        and in one group only, each name free (not a node's), each group of two or more, and
        no node that runs a main of its own (the dashboard) in any."""
        out: dict[str, str] = {}
        for group, members in (self.vars.get("edge_process_groups") or {}).items():
            where = f"{self.name}: edge_process_groups.{group}"
            if not _NAME.match(str(group)) or group in placed | nodes:
                raise ValueError(f"{where}: a group needs a name of its own ([a-z][a-z0-9-]*, not a node's)")
            if not isinstance(members, list) or len(members) < 2:
                raise ValueError(f"{where}: list two or more of the nodes placed here")
            for ident in map(str, members):
                if ident not in placed:
                    raise ValueError(f"{where}: {ident} is not placed on this host ({', '.join(sorted(placed))})")
                if ident in out:
                    raise ValueError(f"{where}: {ident} is in {out[ident]} already")
                if ident.rsplit("_", 1)[0] in ALONE or ident in ALONE:
                    raise ValueError(
                        f"{where}: {ident} runs a main of its own (the web app): give it a process of its own"
                    )
                out[ident] = str(group)
        return out


def load(path: Path | str = DEFAULT_INVENTORY) -> list[Host]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    hosts: dict[str, Host] = {}

    def walk(group: str, body: dict[str, Any], inherited: dict[str, Any]) -> None:
        gvars = {**inherited, **(body.get("vars") or {})}
        for hname, hvars in (body.get("hosts") or {}).items():
            prev = hosts.get(hname)
            merged = {**gvars, **(prev.vars if prev else {}), **(hvars or {})}
            groups = (*prev.groups, group) if prev else (group,)
            hosts[hname] = Host(hname, groups, merged)
        for child, cbody in (body.get("children") or {}).items():
            walk(child, cbody or {}, gvars)

    for group, body in data.items():
        walk(group, body or {}, {})
    return list(hosts.values())


def placements(path: Path | str = DEFAULT_INVENTORY, board: str | None = None) -> list[Placement]:
    """Every node placement, or those of one board (a group like `core`, or a host name)."""
    out: list[Placement] = []
    for host in load(path):
        if board is None or board in host.groups or board == host.name or board == host.board:
            out += host.placements()
    return out


def processes(placements: list[Placement]) -> dict[str, list[Placement]]:
    """The placements by the process that runs them (in placement order)."""
    out: dict[str, list[Placement]] = {}
    for p in placements:
        out.setdefault(p.process, []).append(p)
    return out


def is_built(node: str) -> bool:
    """Whether the node's package exists yet (`nodes/<node>/node.py`, or `<node>/node.py` for a
    node with a package of its own, such as the dashboard)."""
    return (REPO_ROOT / "nodes" / node / "node.py").exists() or (
        node not in ("edge", "schemas", "nodes", "tests", "bench") and (REPO_ROOT / node / "node.py").exists()
    )
