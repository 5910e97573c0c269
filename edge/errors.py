"""One error root for the runtime, as aiomqtt does: callers catch `EdgeError`."""

from __future__ import annotations

from schemas.runtime import ErrorReply


class EdgeError(Exception):
    """Base of every runtime error."""


class Rejected(EdgeError):
    """Raised by a handler to refuse a valid-looking request (unknown symbol, a limit):
    the sender gets the message as an error reply of kind `refused`, nothing changes."""


class ConnectError(EdgeError):
    """The broker could not be reached or refused the connection."""


class PublishRefused(EdgeError):
    """The broker answered a publish with a failure reason code (e.g. not authorised)."""

    def __init__(self, topic: str, reason: str, code: int) -> None:
        super().__init__(f"publish to {topic} refused by the broker: {reason} ({code})")
        self.topic, self.reason, self.code = topic, reason, code


class SubscribeRefused(EdgeError):
    def __init__(self, topic_filter: str, reason: str) -> None:
        super().__init__(f"subscription to {topic_filter} refused by the broker: {reason}")
        self.topic_filter, self.reason = topic_filter, reason


class CallTimeout(EdgeError, TimeoutError):
    """No reply came within the timeout: the node may be down or busy."""


class RemoteError(EdgeError):
    """The node rejected the request; `reply` says why."""

    def __init__(self, topic: str, reply: ErrorReply) -> None:
        details = "; ".join(f"{'.'.join(map(str, d.loc)) or '(payload)'}: {d.msg}" for d in reply.errors)
        super().__init__(f"{topic}: {reply.error}" + (f" [{details}]" if details else ""))
        self.topic, self.reply = topic, reply
