"""Where ``minimize`` leaves graph variables when it raises: as in TF2 (``tests/test_raised_runs.py``).

Reference variables are fed each point and resource variables assigned it, so
before the run ends they hold different things; a run that raises leaves both
at the same kept point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

import optrun
from tests.test_raised_runs import START, Record, loss_np, loss_tf, run


def test_unconstrained_keeps_the_lowest_loss_point_evaluated(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable(START, dtype=tf.float64, use_resource=use_resource)
    opt = optrun.ScipyOptimizerInterface(loss_tf(v), var_list=[v])
    sess.run(tf.compat.v1.global_variables_initializer())
    record = Record(1, worse=True)
    run(opt, v, record, session=sess)
    np.testing.assert_array_equal(sess.run(v), min(record.evaluated, key=loss_np))


def test_constrained_keeps_the_last_accepted_iterate(sess: Any, use_resource: bool) -> None:
    v = tf.compat.v1.Variable(START, dtype=tf.float64, use_resource=use_resource)
    opt = optrun.ScipyOptimizerInterface(loss_tf(v), var_list=[v], equalities=[v[0] + v[1] - 1.0])
    sess.run(tf.compat.v1.global_variables_initializer())
    record = Record(2)
    run(opt, v, record, session=sess)
    np.testing.assert_array_equal(sess.run(v), record.accepted[-1])
