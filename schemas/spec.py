"""Documents derived from the catalog: a JSON Schema per model and an AsyncAPI 3 document.

They are generated, never written by hand, so they cannot drift from the code
(FastStream's habit); a test validates the AsyncAPI document against the official
AsyncAPI 3.0.0 JSON Schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .topics import PER_NODE, Catalog, Command, State, Topic, Topics, Work

REF = "#/components/schemas/{model}"


def models(catalog: Catalog) -> list[type[BaseModel]]:
    """Every payload model of the catalog and the runtime, each once, in a stable order."""
    from .runtime import ErrorReply

    seen: dict[str, type[BaseModel]] = {}
    for entry in (*PER_NODE, *catalog):
        for model in (entry.model, *([entry.reply] if isinstance(entry, Command) else [])):
            seen.setdefault(model.__name__, model)
    seen.setdefault(ErrorReply.__name__, ErrorReply)
    return [seen[k] for k in sorted(seen)]


def json_schemas(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema (draft 2020-12, with its own $defs) per model."""
    out = {}
    for model in models(catalog):
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[model.__name__] = schema
    return out


def _channel_id(entry: Topic) -> str:
    return entry.path.replace("{node}", "node").replace("/", ".")


def _op_binding(entry: Topic) -> dict[str, Any]:
    return {"mqtt": {"qos": entry.qos, "retain": entry.retained, "bindingVersion": "0.2.0"}}


def asyncapi(
    catalog: Catalog, *, root: str = "trader", version: str = "0.1.0", server: str = "localhost:1883"
) -> dict[str, Any]:
    topics = Topics(root)
    all_models = models(catalog)
    _, top = models_json_schema([(m, "validation") for m in all_models], ref_template=REF)
    schemas = dict(top.get("$defs", {}))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {
        m.__name__: {
            "name": m.__name__,
            "title": m.__name__,
            "contentType": "application/json",
            "summary": (m.__doc__ or m.__name__).strip().splitlines()[0],
            "payload": {"$ref": REF.format(model=m.__name__)},
        }
        for m in all_models
    }
    node_param = {"node": {"description": "the node's name (`evaluator_2` for an instance)"}}

    def add_channel(cid: str, address: str, model: type[BaseModel], doc: str, params: bool) -> None:
        channels[cid] = {
            "address": address,
            "description": doc or address,
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
        if params:
            channels[cid]["parameters"] = node_param

    for entry in (*PER_NODE, *catalog):
        cid = _channel_id(entry)
        templated = "{node}" in entry.path
        address = f"{root}/{entry.path}"
        if isinstance(entry, Work):
            address = topics.of(entry)
        add_channel(cid, address, entry.model, entry.doc, templated)
        ref = {"$ref": f"#/channels/{cid}"}
        msg_ref = [{"$ref": f"#/channels/{cid}/messages/{entry.model.__name__}"}]
        if isinstance(entry, Command):
            reply_cid = cid.replace("cmd.", "reply.", 1)
            reply_addr = address.replace(f"{root}/cmd/", f"{root}/reply/", 1)
            add_channel(
                reply_cid, reply_addr, entry.reply, f"replies of {address} when no response topic was set", templated
            )
            channels[reply_cid]["messages"]["ErrorReply"] = {"$ref": "#/components/messages/ErrorReply"}
            senders = ", ".join(sorted(entry.senders)).replace("*", "any node or the operator")
            operations[f"{cid}.handle"] = {
                "action": "receive",
                "channel": ref,
                "messages": msg_ref,
                "bindings": _op_binding(entry),
                "summary": entry.doc or f"command to {entry.node}",
                "description": f"Sent by: {senders}. Idempotent: {entry.idempotent}. The reply goes to the "
                "MQTT v5 response topic, or to the reply channel when none was set.",
                "reply": {
                    "address": {"location": "$message.header#/responseTopic"},
                    "channel": {"$ref": f"#/channels/{reply_cid}"},
                },
            }
        else:
            kind = "retained state" if isinstance(entry, State) or entry.retained else entry.kind
            who = ", ".join(sorted(entry.publishers))
            operations[f"{cid}.publish"] = {
                "action": "send",
                "channel": ref,
                "messages": msg_ref,
                "bindings": _op_binding(entry),
                "summary": entry.doc or f"{kind} of {who}",
                "description": f"{kind}; published by {who}"
                + ("; workers read it through a shared subscription" if isinstance(entry, Work) else ""),
            }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "edge trader",
            "version": version,
            "description": "Every topic of the trader's MQTT nodes. Payloads are the JSON of the "
            "message's schema; metadata (msg-id, source, trace-id) is in MQTT v5 "
            "user properties.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "dev": {
                "host": server,
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "the local broker that `make up` starts",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
