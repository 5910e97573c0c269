"""The planner nodes' settings: read from a mapping (the node passes `os.environ`), the
documented defaults, an override, and a bad value refused with the variable's name."""

from __future__ import annotations

from decimal import Decimal

import pytest

from nodes.coordinator.settings import Settings as CoordinatorSettings
from nodes.evaluator.settings import Settings as EvaluatorSettings
from nodes.opportunity.model import Settings as OpportunitySettings
from nodes.planning.settings import Settings as PlanningSettings


def test_opportunity():
    assert OpportunitySettings.from_env({}) == OpportunitySettings(50.0, 30.0, Decimal("0.01"))
    s = OpportunitySettings.from_env({"OPPORTUNITY_BUY_MIN_SCORE": "65", "OPPORTUNITY_MIN_GAP": "0.02"})
    assert (s.buy_min_score, s.sell_below_score, s.min_gap) == (65.0, 30.0, Decimal("0.02"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPPORTUNITY_BUY_MIN_SCORE", "high"),
        ("OPPORTUNITY_SELL_BELOW", "nan"),
        ("OPPORTUNITY_MIN_GAP", "1%"),
        ("OPPORTUNITY_MIN_GAP", "-0.01"),
        ("OPPORTUNITY_MIN_GAP", "1"),
        ("OPPORTUNITY_MIN_GAP", "NaN"),
    ],
)
def test_opportunity_refuses(name, value):
    with pytest.raises(ValueError, match=name):
        OpportunitySettings.from_env({name: value})


def test_evaluator():
    assert EvaluatorSettings.from_env({}) == EvaluatorSettings(processes=1, parallel_min=20_000, problem_wait_s=10.0)
    s = EvaluatorSettings.from_env({"EVALUATOR_PROCESSES": "2", "EVALUATOR_PROBLEM_WAIT_S": "2.5"})
    assert (s.processes, s.parallel_min, s.problem_wait_s) == (2, 20_000, 2.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EVALUATOR_PROCESSES", "0"),
        ("EVALUATOR_PROCESSES", "two"),
        ("EVALUATOR_PARALLEL_MIN", "-1"),
        ("EVALUATOR_PROBLEM_WAIT_S", "-1"),
        ("EVALUATOR_PROBLEM_WAIT_S", "inf"),
    ],
)
def test_evaluator_refuses(name, value):
    with pytest.raises(ValueError, match=name):
        EvaluatorSettings.from_env({name: value})


def test_coordinator():
    assert CoordinatorSettings.from_env({}) == CoordinatorSettings(
        beam_width=5000, max_actions=5, batch_size=20_000, batch_timeout_s=5.0, cycle_timeout_s=120.0
    )
    s = CoordinatorSettings.from_env({"COORDINATOR_BEAM_WIDTH": "500", "COORDINATOR_BATCH_TIMEOUT_S": "2"})
    assert (s.beam_width, s.max_actions, s.batch_timeout_s) == (500, 5, 2.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("COORDINATOR_BEAM_WIDTH", "0"),
        ("COORDINATOR_BEAM_WIDTH", "5k"),
        ("COORDINATOR_MAX_ACTIONS", "11"),
        ("COORDINATOR_BATCH_SIZE", "100001"),
        ("COORDINATOR_BATCH_TIMEOUT_S", "0"),
        ("COORDINATOR_CYCLE_TIMEOUT_S", "x"),
    ],
)
def test_coordinator_refuses(name, value):
    with pytest.raises(ValueError, match=name):
        CoordinatorSettings.from_env({name: value})


@pytest.mark.parametrize(
    ("env", "auto"),
    [
        ({}, True),
        ({"EDGE_MODE": "research"}, True),
        ({"EDGE_MODE": "live"}, False),
        ({"EDGE_MODE": "live", "PLANNING_AUTO_APPROVE": "1"}, True),
        ({"PLANNING_AUTO_APPROVE": "0"}, False),
    ],
)
def test_planning_approves_by_hand_in_live_mode_unless_told(env, auto):
    assert PlanningSettings.from_env(env).auto_approve is auto


@pytest.mark.parametrize(("name", "value"), [("PLANNING_AUTO_APPROVE", "yes"), ("EDGE_MODE", "Live")])
def test_planning_refuses(name, value):
    with pytest.raises(ValueError, match=name):
        PlanningSettings.from_env({name: value})
