"""The planning node's SQLite store: every plan with its steps, evaluation and history.
A step records the order's answer once trading gave it, so that sending resumes where it
stopped and never sends a step twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nodes.sqlite import connect, transaction
from schemas.planning import Plan, PlanStep

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
        with transaction(self.db) as db:
            self._put(db, plan)
        return plan

    @staticmethod
    def _put(db: sqlite3.Connection, plan: Plan) -> None:
        db.execute("UPDATE plans SET body=? WHERE plan_id=?", (plan.model_dump_json(), plan.plan_id))

    def step_done(self, plan_id: str, step: PlanStep) -> Plan:
        plan = self.get(plan_id)
        assert plan is not None
        steps = [step if s.step == step.step else s for s in plan.steps]
        return self.put(plan.model_copy(update={"steps": steps}))

    def latest(self, limit: int = 20) -> list[Plan]:
        rows = self.db.execute("SELECT body FROM plans ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [Plan.model_validate_json(r[0]) for r in rows]

    def unfinished(self) -> list[Plan]:
        return [p for p in self.latest(200) if p.status == "approved"]
