"""The broker's users and ACL, generated from the topic catalog.

Every node has a user of its own and may publish only what the catalog says it owns:
its status, heartbeat, errors and replies, the events, states and work it publishes,
and answers into callers' inboxes. Commands: anyone may write `cmd/#` (so an unknown
verb reaches the node and gets a clear error), except commands whose catalog entry
restricts its senders, which are denied to everybody else (Mosquitto applies `deny`
lines before grants). The `operator` user (the CLI, `mosquitto_pub`) reads everything
and sends commands, within the same restrictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.topics import ANY_SENDER, Catalog, Command, Topics

OPERATOR = "operator"


def users(catalog: Catalog) -> list[str]:
    return sorted(catalog.nodes | {OPERATOR})


def identities(node: str, scalable: Mapping[str, int]) -> list[str]:
    """The names a node's processes appear under: `evaluator`, `evaluator_1`, ..."""
    return [node] + [f"{node}_{k}" for k in range(1, scalable.get(node, 0) + 1)]


def _restricted(catalog: Catalog) -> list[Command]:
    return [c for c in catalog.commands() if ANY_SENDER not in c.senders]


def render_acl(catalog: Catalog, topics: Topics, *, extra_users: Iterable[str] = ()) -> str:
    lines = [f"# Generated from the topic catalog by edge.acl for root '{topics.root}'. Do not edit.", ""]
    restricted = _restricted(catalog)

    def deny_for(user: str) -> list[str]:
        return [f"topic deny {topics.of(c)}" for c in restricted if user not in c.senders and user != c.node]

    for node in sorted(catalog.nodes):
        lines.append(f"user {node}")
        lines += deny_for(node)
        for ident in identities(node, catalog.scalable):
            lines.append(f"topic write {topics.node_all(ident)}")
            lines.append(f"topic write {topics.error(ident)}")
        lines.append(f"topic write {topics.replies_of(node)}")
        lines.append(f"topic write {topics.all_inboxes()}")
        lines.append(f"topic write {topics.all_commands()}")
        for entry in catalog.published_by(node):
            lines.append(f"topic write {topics.of(entry)}")
        lines.append(f"topic read {topics.all()}")
        lines.append("")

    for user in [OPERATOR, *extra_users]:
        lines.append(f"user {user}")
        lines += deny_for(user)
        lines.append(f"topic write {topics.all_commands()}")
        lines.append(f"topic read {topics.all()}")
        lines.append("")
    return "\n".join(lines)
