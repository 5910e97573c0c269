"""An evaluator spreading a large batch over processes (the `multiprocess` package) scores
exactly as one process does."""

from __future__ import annotations

import numpy as np

from nodes.evaluator import node as evaluator_node
from nodes.evaluator import objective as o
from nodes.evaluator.settings import Settings


def test_a_batch_split_over_processes_scores_the_same():
    rng = np.random.default_rng(11)
    n, a = 60, 30
    x = rng.normal(size=(n, 200))
    arrays = o.Arrays(price=rng.uniform(10, 300, n), quantity=rng.integers(0, 30, n).astype(float), cash=50000.0,
                      targets=np.full(n, 1 / n), mu=rng.normal(0.08, 0.04, n), cov=x @ x.T / 200 * 0.04,
                      action_symbol=rng.integers(0, n, a), action_quantity=rng.integers(-5, 10, a).astype(float),
                      action_fee=np.full(a, 1.5), weights=dict(o.DEFAULT_WEIGHTS))
    seqs = o.pad([list(rng.choice(a, size=int(rng.integers(1, 6)), replace=False)) for _ in range(3000)])
    state = evaluator_node.State(Settings(processes=2, parallel_min=1000))
    try:
        pooled, parts = evaluator_node._scores(state, arrays, seqs)
        assert parts == {} and state.pool is not None  # it did use the pool
    finally:
        if state.pool is not None:
            state.pool.terminate()
    single, _ = o.score_batch(arrays, seqs)
    np.testing.assert_array_equal(pooled, single)
