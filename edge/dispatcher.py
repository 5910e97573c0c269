"""Handling a message on the handler thread, and the one place its fate is decided.

`handle` routes a message to its handler, validates it against the catalog entry's
model, answers a redelivered idempotent command from the dedupe store, runs the handler
and validates its reply. Whatever happens it returns an `Outcome` (a reply, perhaps an
error reply, and perhaps a dedupe record) or raises `CancelledError` when shutdown
interrupted the handler. `settle` applies the outcome, always in this order: the dedupe
record is committed (SQLite, FULL sync), then on the network loop the reply is handed
to paho and the message acknowledged (`AckPolicy.ACK`: every message in the handler
queue comes from such a subscription). An interrupted message is never settled, so the
broker delivers it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas import runtime as rt
from schemas.common import Id, utcnow
from schemas.topics import Command, Topic, Topics

from .context import Context, hand_over, log_refusal
from .delivery import Outcome, Record, Reply
from .errors import PublishRefused, Rejected
from .message import Incoming, Meta
from .metrics import Metrics

if TYPE_CHECKING:
    from .client import Client
    from .dedupe import DedupeStore

log = logging.getLogger("edge.dispatcher")


Queued = tuple[int, int, Incoming]  # (priority: 0 for mirrors, 1 else; arrival number; the message)


@dataclass(frozen=True)
class Route:
    entry: Topic
    handler: Callable[..., Any]
    idempotent: bool = False
    mirror: bool = False  # node.keep: applied before other queued messages

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)


class Dispatcher:
    def __init__(
        self,
        *,
        name: str,
        ident: str,
        commands: dict[str, Route],
        events: dict[str, Route],
        ctx: Context[Any],
        client: Client,
        topics: Topics,
        dedupe: DedupeStore | None,
        metrics: Metrics,
        io_loop: asyncio.AbstractEventLoop,
        background: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.name, self.ident = name, ident
        self.commands, self.events = commands, events
        self.ctx, self.client, self.topics = ctx, client, topics
        self.dedupe, self.metrics = dedupe, metrics
        self._io_loop, self._background = io_loop, background
        self._draining = False
        self.idle = threading.Event()  # no handler running: a stop can cancel without interrupting one
        self.idle.set()

    async def run_forever(self, queue: asyncio.PriorityQueue[Queued]) -> None:
        """One message at a time: mirrors of retained state first (a restarted node's
        session may hold commands that arrived before the state they need), then
        everything else in arrival order. After `drain` nothing new is started."""
        while True:
            _, _, msg = await queue.get()
            if self._draining:
                continue  # not handled, not acknowledged: the broker delivers it again
            self.idle.clear()
            started = time.perf_counter()
            try:
                outcome = await self.handle(msg)
            except asyncio.CancelledError:
                raise  # shutting down inside a handler: not settled, so redelivered
            except Exception:  # a bug in the runtime itself: report, never die, never loop on it
                log.exception("%s: failed to handle %s", self.ident, msg.topic)
                outcome = Outcome()
            finally:
                self.idle.set()
            self.settle(msg, outcome)
            self.metrics.record(time.perf_counter() - started)

    def drain(self) -> None:
        """Start no new message (a stop is coming); the one in hand may finish."""
        self._draining = True

    # -- the outcome ----------------------------------------------------------------------------
    def settle(self, msg: Incoming, outcome: Outcome) -> None:
        """Apply a handled message's outcome: commit, reply, acknowledge."""
        if outcome.record is not None and self.dedupe is not None:
            r = outcome.record
            self.dedupe.put(r.topic, r.msg_id, r.body, r.digest)
        self._io_loop.call_soon_threadsafe(self._reply_and_ack, msg, outcome.reply)

    def _reply_and_ack(self, msg: Incoming, reply: Reply | None) -> None:
        """On the network loop: hand the reply to paho (not awaited: the effect is committed,
        and a lost reply is recovered by the caller's retry, which idempotent commands answer
        from the dedupe store), then acknowledge the message."""
        if reply is not None:
            try:
                ack = self.client.send_nowait(reply.topic, reply.body, qos=1, meta=reply.meta)
            except PublishRefused as exc:
                log.error("%s: reply refused: %s", self.ident, exc)
                ack = None
            if ack is False:  # every in-flight slot is taken: wait for one in the background
                self._background(self._reply_later(reply))
            elif isinstance(ack, asyncio.Future):
                ack.add_done_callback(lambda f: log_refusal(self.ident, reply.topic, f))
        self.client.ack(msg)

    async def _reply_later(self, reply: Reply) -> None:
        try:
            await hand_over(self.client, self.ident, reply.topic, reply.body, qos=1, retain=False, meta=reply.meta)
        except PublishRefused as exc:
            log.error("%s: reply refused: %s", self.ident, exc)

    # -- handling -------------------------------------------------------------------------------
    async def handle(self, msg: Incoming) -> Outcome:
        parsed = self.topics.parse_command(msg.topic)
        if parsed is not None and parsed[0] == self.name:
            return await self._command(msg, parsed[1])
        route = self.events.get(self.topics.relative(msg.topic))
        if route is None:
            return Outcome()
        try:
            payload = route.entry.model.model_validate_json(msg.payload)
        except ValidationError as exc:
            return self.reject(msg, _kind(exc), _reason(exc, route.entry), exc.errors())
        try:
            await self._invoke(route, payload, msg)
        except Exception as exc:
            return self.reject(msg, *_failure(exc, self.ident, msg.topic), [])
        return Outcome()

    async def _command(self, msg: Incoming, verb: str) -> Outcome:
        route = self.commands.get(verb)
        if route is None:
            known = ", ".join(sorted(self.commands))
            return self.reject(
                msg, "unknown_verb", f"{self.name} has no command {verb!r}; it knows: {known}", [], verb=verb
            )
        entry = route.entry
        assert isinstance(entry, Command)
        try:
            request = entry.model.model_validate_json(msg.payload)
        except ValidationError as exc:
            return self.reject(msg, _kind(exc), _reason(exc, entry), exc.errors(), verb=verb)
        key = msg.msg_id if route.idempotent and self.dedupe is not None else None
        digest = ""
        if key is not None and self.dedupe is not None:
            digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
            previous = self.dedupe.get(msg.topic, key)
            if previous is not None:
                if not previous.same_request(digest):
                    return self.reject(
                        msg,
                        "conflict",
                        f"msg-id {key!r} was used before for another "
                        f"{entry.model.__name__} on {msg.topic}; a new request needs a new msg-id "
                        "(the first one was not changed)",
                        [],
                        verb=verb,
                    )
                log.info("%s: %s msg-id %s handled before; answering from the dedupe store", self.ident, msg.topic, key)
                return Outcome(reply=self._reply(msg, verb, previous.reply, "ok"))
        try:
            result = await self._invoke(route, request, msg)
            if not isinstance(result, entry.reply):
                result = entry.reply.model_validate(result)
            body = result.model_dump_json().encode()
        except Exception as exc:
            return self.reject(msg, *_failure(exc, self.ident, msg.topic), [], verb=verb)
        record = Record(msg.topic, key, body, digest) if key is not None else None
        return Outcome(reply=self._reply(msg, verb, body, "ok"), record=record)

    async def _invoke(self, route: Route, payload: BaseModel, msg: Incoming) -> Any:
        self.ctx.message = msg
        try:
            if route.is_async:
                return await route.handler(payload, self.ctx)
            return route.handler(payload, self.ctx)  # this is the handler thread: blocking is fine
        finally:
            self.ctx.message = None

    def _reply(self, msg: Incoming, verb: str, body: bytes, status: str) -> Reply:
        topic = msg.response_topic or self.topics.reply(self.name, verb)
        return Reply(
            topic, body, Meta(source=self.ident, trace_id=msg.trace_id, status=status, correlation=msg.correlation)
        )

    # -- rejections -----------------------------------------------------------------------------
    def reject(self, msg: Incoming, kind: str, reason: str, errors: list[Any], *, verb: str | None = None) -> Outcome:
        """Report a rejected message on `error/<node>`; answer the sender if it asked."""
        self.metrics.errors += 1
        details = rt.error_details(errors)
        report = rt.ErrorReport(
            node=self.ident,
            topic=msg.topic,
            kind=kind,  # type: ignore[arg-type]
            reason=reason,
            errors=details,
            correlation_id=msg.correlation_id,
            message_id=_safe_id(msg.msg_id),
            at=utcnow(),
        )
        if kind not in ("refused", "handler_error"):  # those were logged where they were raised (`_failure`)
            log.warning("%s: rejected %s: %s", self.ident, msg.topic, reason)
        self._io_loop.call_soon_threadsafe(self._background, self._publish_report(report))
        if verb is None:
            return Outcome()
        body = rt.ErrorReply(error=reason, kind=kind, errors=details).model_dump_json().encode()
        return Outcome(reply=self._reply(msg, verb, body, "error"))

    def report_invalid(self, msg: Incoming, exc: ValidationError, entry: Topic) -> None:
        """For `Context.listen` (on the network loop): a side-channel message that failed
        validation is reported like any other."""
        self.reject(msg, _kind(exc), _reason(exc, entry), exc.errors())

    async def _publish_report(self, report: rt.ErrorReport) -> None:
        try:
            await self.client.publish(self.topics.error(self.ident), report, qos=1, timeout=5)
        except Exception as exc:
            log.error("%s: could not publish the error report: %s", self.ident, exc)


def _failure(exc: Exception, ident: str, topic: str) -> tuple[str, str]:
    """(kind, reason) of a handler's exception: `Rejected` is a refusal the handler meant,
    anything else a failure, logged with its traceback."""
    if isinstance(exc, Rejected):
        log.info("%s: refused %s: %s", ident, topic, exc)
        return "refused", str(exc)
    log.error("%s: handler for %s raised", ident, topic, exc_info=exc)
    return "handler_error", f"{type(exc).__name__}: {exc}"


def _kind(exc: ValidationError) -> str:
    return "bad_json" if any(e.get("type") == "json_invalid" for e in exc.errors()) else "invalid"


def _reason(exc: ValidationError, entry: Topic) -> str:
    if _kind(exc) == "bad_json":
        return f"payload is not valid JSON (expected a {entry.model.__name__} object)"
    n = exc.error_count()
    return f"payload is not a valid {entry.model.__name__}: {n} validation error{'s' if n != 1 else ''}"


_ID = TypeAdapter(Id)


def _safe_id(value: str | None) -> str | None:
    """The sender's msg-id for the report, if it is a well-formed id."""
    if value is None:
        return None
    try:
        return _ID.validate_python(value)
    except ValidationError:
        return None
