"""The planning node's SQLite store: every plan with its steps, evaluation and history.
A step records the order's answer once trading gave it, so that sending resumes where it
stopped and never sends a step twice, and then its order's later states. Every write
writes the status the plan's steps give it (`rules.with_status`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from nodes.sqlite import connect, transaction
from schemas.planning import Plan, PlanStep

from . import rules

SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    plan_id TEXT NOT NULL UNIQUE,
    cycle_id TEXT NOT NULL UNIQUE,
    body    TEXT NOT NULL
);
"""


class PlanStore:
    def __init__(self, path: Path | str) -> None:
        self.db = connect(path, synchronous="FULL", schema=SCHEMA)

    def close(self) -> None:
        self.db.close()

    def next_id(self) -> str:
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM plans").fetchone()
        return f"plan-{row[0]}"

    def by_cycle(self, cycle_id: str) -> Plan | None:
        row = self.db.execute("SELECT body FROM plans WHERE cycle_id=?", (cycle_id,)).fetchone()
        return None if row is None else Plan.model_validate_json(row[0])

    def add(self, plan: Plan) -> Plan:
        """Keep a new plan; earlier proposed ones are superseded (only the newest can be approved)."""
        with transaction(self.db) as db:
            proposed = db.execute("SELECT body FROM plans WHERE json_extract(body, '$.status') = 'proposed'")
            for (body,) in proposed.fetchall():
                old = Plan.model_validate_json(body)
                self._put(db, old.model_copy(update={"status": "superseded", "note": f"superseded by {plan.plan_id}"}))
            db.execute(
                "INSERT INTO plans (plan_id, cycle_id, body) VALUES (?,?,?)",
                (plan.plan_id, plan.cycle_id, plan.model_dump_json()),
            )
        return plan

    def get(self, plan_id: str) -> Plan | None:
        row = self.db.execute("SELECT body FROM plans WHERE plan_id=?", (plan_id,)).fetchone()
        return None if row is None else Plan.model_validate_json(row[0])

    def put(self, plan: Plan) -> Plan:
        """Write the plan with the status its steps give it; the plan as written."""
        plan = rules.with_status(plan)
        with transaction(self.db) as db:
            self._put(db, plan)
        return plan

    @staticmethod
    def _put(db: sqlite3.Connection, plan: Plan) -> None:
        db.execute("UPDATE plans SET body=? WHERE plan_id=?", (plan.model_dump_json(), plan.plan_id))

    def change_step(self, plan_id: str, step: int, change: Callable[[PlanStep], PlanStep]) -> Plan:
        """Change one step of the plan as it is kept now (read, changed and written at once,
        so that a reply and an event about the same order cannot undo each other)."""
        plan = self.get(plan_id)
        assert plan is not None
        steps = [change(s) if s.step == step else s for s in plan.steps]
        return self.put(plan.model_copy(update={"steps": steps}))

    def note(self, plan_id: str, note: str) -> Plan:
        plan = self.get(plan_id)
        assert plan is not None
        return self.put(plan.model_copy(update={"note": note}))

    def latest(self, limit: int = 20) -> list[Plan]:
        rows = self.db.execute("SELECT body FROM plans ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [Plan.model_validate_json(r[0]) for r in rows]

    def unfinished(self) -> list[Plan]:
        """Approved plans with steps not sent yet, oldest first."""
        return [p for p in reversed(self.latest(200)) if p.status == "approved"]
