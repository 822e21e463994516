"""Bad input: every user error is an OptrunError (and the builtin a Python user expects)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import ExternalOptimizerInterface, OptrunError, ScipyOptimizerInterface


@pytest.fixture
def vector() -> tf.Variable:
    return tf.Variable([7.0, 7.0], name="vector")


def sq(v: tf.Variable):
    return lambda: tf.reduce_sum(tf.square(v))


@pytest.mark.parametrize(
    ("key", "advice"),
    [
        ("jac", "autodiff"),
        ("constraints", "equalities"),
    ],
)
def test_forbidden_keywords(vector: tf.Variable, key: str, advice: str) -> None:
    with pytest.raises(ValueError, match=advice) as info:
        ScipyOptimizerInterface(sq(vector), **{key: None})
    assert isinstance(info.value, OptrunError)
    assert repr(key) in str(info.value)


def test_scipys_own_bounds_and_callback_are_checked(vector: tf.Variable) -> None:
    # Taken as TF 1.0 passed them on (see tests/v1), so a wrong form is refused at construction.
    with pytest.raises(TypeError, match="callback must be callable; got 3") as info:
        ScipyOptimizerInterface(sq(vector), callback=3)
    assert isinstance(info.value, OptrunError)
    size = int(tf.size(vector))
    with pytest.raises(ValueError, match=rf"pair per element of the packed vector \({size}\)"):
        ScipyOptimizerInterface(sq(vector), bounds=[(0, 1)] * (size + 1))
    with pytest.raises(ValueError, match="empty at index"):
        ScipyOptimizerInterface(sq(vector), bounds=[(1, 0)] * size)
    # Not a list of pairs at all: an optrun error, never Python's own TypeError.
    for method, advice in [
        ("L-BFGS-B", r"pair per element of the packed vector.*got 5"),
        ("BFGS", "or drop"),
    ]:
        with pytest.raises(ValueError, match=advice) as bad:
            ScipyOptimizerInterface(sq(vector), method=method, bounds=5)
        assert isinstance(bad.value, OptrunError)


def test_non_variable_in_var_list(vector: tf.Variable) -> None:
    with pytest.raises(TypeError, match=r"var_list\[1\] must be a tf.Variable") as info:
        ScipyOptimizerInterface(sq(vector), var_list=[vector, tf.constant([1.0])])
    assert isinstance(info.value, OptrunError)


def test_var_list_duplicate_and_empty(vector: tf.Variable) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match="twice"):
        ScipyOptimizerInterface(sq(vector), var_list=[vector, vector])
    with pytest.raises(optrun.InvalidArgumentError, match="empty"):
        ScipyOptimizerInterface(sq(vector), var_list=[])


def test_integer_variable_refused() -> None:
    counter = tf.Variable(3, name="counter")
    x = tf.Variable(1.0)
    with pytest.raises(optrun.InvalidTypeError, match="int32"):
        ScipyOptimizerInterface(lambda: x * x, var_list=[x, counter])


def test_non_scalar_loss(vector: tf.Variable) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match=r"loss must return a scalar; got shape \[2\]"):
        ScipyOptimizerInterface(lambda: tf.square(vector))


def test_non_scalar_constraint(vector: tf.Variable) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match=r"inequalities\[0\] must return a scalar"):
        ScipyOptimizerInterface(sq(vector), inequalities=[lambda: vector - 1.0], method="SLSQP")


def test_loss_not_callable(vector: tf.Variable) -> None:
    with pytest.raises(TypeError, match="zero-argument callable"):
        ScipyOptimizerInterface(tf.reduce_sum(vector))


def test_constraint_not_callable(vector: tf.Variable) -> None:
    with pytest.raises(TypeError, match=r"equalities\[0\] must be a zero-argument callable"):
        ScipyOptimizerInterface(sq(vector), equalities=[vector[0] - 1.0])


def test_loss_reads_no_variable() -> None:
    with pytest.raises(optrun.InvalidArgumentError, match="no trainable variable"):
        ScipyOptimizerInterface(lambda: tf.constant(1.0))


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        (([0.0, 0.0, 0.0], None), r"shape \(3,\).*\(2,\)"),
        ((1.0,), r"must be a \(low, high\) pair"),
        ((2.0, 1.0), r"empty at index \(0,\): low 2.0 > high 1.0"),
        ((float("nan"), 1.0), "NaN"),
        (("low", 1.0), "must be a number"),
    ],
)
def test_bad_bounds(vector: tf.Variable, bounds: tuple, match: str) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match=match):
        ScipyOptimizerInterface(sq(vector), var_to_bounds={vector.ref(): bounds})


def test_unknown_and_ambiguous_names() -> None:
    a = tf.Variable([1.0], name="weights")
    b = tf.Variable([1.0], name="weights")  # eager TF allows duplicate names
    c = tf.Variable([1.0], name="bias")
    loss = lambda: tf.reduce_sum(a * a + b * b + c * c)
    with pytest.raises(KeyError, match=r"'nope'.*known names: 'weights', 'weights#2', 'bias'") as info:
        ScipyOptimizerInterface(loss, var_to_bounds={"nope": (0.0, 1.0)})
    assert isinstance(info.value, optrun.UnknownVariableError)
    with pytest.raises(optrun.UnknownVariableError, match="ambiguous"):
        ScipyOptimizerInterface(loss, var_to_bounds={"weights": (0.0, 1.0)})
    with pytest.raises(optrun.UnknownVariableError, match="twice"):
        ScipyOptimizerInterface(loss, var_to_bounds=[(c, (0.0, 1.0)), ("bias", (0.0, 2.0))])
    other = tf.Variable([1.0], name="other")
    with pytest.raises(optrun.UnknownVariableError, match="not among the variables"):
        ScipyOptimizerInterface(loss, var_to_bounds=[(other, (0.0, 1.0))])
    with pytest.raises(optrun.InvalidTypeError, match="var_to_bounds must be a dict"):
        ScipyOptimizerInterface(loss, var_to_bounds=(0.0, 1.0))


def test_method_checks(vector: tf.Variable) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match="'bogus'"):
        ScipyOptimizerInterface(sq(vector), method="bogus")
    with pytest.raises(optrun.UnsupportedMethodError, match="silently ignore"):
        ScipyOptimizerInterface(sq(vector), equalities=[lambda: vector[0]], method="L-BFGS-B")
    with pytest.raises(optrun.UnsupportedMethodError, match="does not support bounds"):
        ScipyOptimizerInterface(sq(vector), var_to_bounds={"vector": (0.0, 1.0)}, method="BFGS")


def test_base_class_needs_subclass(vector: tf.Variable) -> None:
    with pytest.raises(NotImplementedError, match="subclass it"):
        ExternalOptimizerInterface(sq(vector)).minimize()


def test_session_is_reserved(vector: tf.Variable) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match=r"tf\.compat\.v1"):
        ScipyOptimizerInterface(sq(vector)).minimize(session=object())


def test_bad_fetch_and_callback(vector: tf.Variable) -> None:
    opt = ScipyOptimizerInterface(sq(vector))
    with pytest.raises(optrun.InvalidTypeError, match=r"fetches\[0\]"):
        opt.minimize(fetches=[np.ones(2)])
    with pytest.raises(optrun.InvalidTypeError, match="step_callback must be callable"):
        opt.minimize(step_callback=3)
    for fetches, shown in ((5, "int 5"), (vector, "ResourceVariable <tf.Variable 'vector:0'")):
        with pytest.raises(optrun.InvalidTypeError, match=f"^fetches must be a list: .*; got {shown}"):
            opt.minimize(fetches=fetches, loss_callback=lambda *values: None)
    np.testing.assert_allclose(vector.numpy(), [7.0, 7.0])  # nothing ran


@pytest.mark.parametrize(
    ("tol", "error", "shown"),
    [
        ("abc", optrun.InvalidTypeError, "'abc'"),
        (-1, optrun.InvalidArgumentError, "-1"),
        (float("nan"), optrun.InvalidArgumentError, "nan"),
    ],
)
def test_bad_tol_is_refused_at_construction(
    vector: tf.Variable, tol: object, error: type, shown: str
) -> None:
    with pytest.raises(error, match=f"^tol must be .*>= 0.*; got {shown}$"):
        ScipyOptimizerInterface(sq(vector), tol=tol)
    # 0 is scipy's own: no tolerance, so L-BFGS-B goes on until its line search stalls at 0.
    np.testing.assert_allclose(ScipyOptimizerInterface(sq(vector), tol=0.0).minimize().x, 0.0, atol=1e-10)


def test_jit_compile_type(vector: tf.Variable) -> None:
    with pytest.raises(optrun.InvalidTypeError, match="jit_compile"):
        ScipyOptimizerInterface(sq(vector), jit_compile="yes")


def test_unknown_and_reserved_scipy_keywords(vector: tf.Variable) -> None:
    with pytest.raises(
        optrun.InvalidArgumentError, match=r"unknown scipy.optimize.minimize keyword\(s\) \['maxiter'\]"
    ):
        ScipyOptimizerInterface(sq(vector), maxiter=10)
    for key in ("x0", "args", "fun"):
        with pytest.raises(optrun.InvalidArgumentError, match=f"sets '{key}' itself"):
            ScipyOptimizerInterface(sq(vector), **{key: None})


@pytest.mark.parametrize(("value", "match"), [(None, "got NoneType"), ("text", "must return a number")])
def test_loss_returning_a_non_number(vector: tf.Variable, value: object, match: str) -> None:
    with pytest.raises(optrun.InvalidTypeError, match=match):
        ScipyOptimizerInterface(lambda: value, var_list=[vector])


def test_bounds_that_bound_nothing_do_not_refuse_a_method(vector: tf.Variable) -> None:
    # (None, None) or None per variable: no bound, so BFGS (which takes none) is fine.
    for nothing in ({vector.ref(): None}, [(vector, (None, None))], {"vector": (-np.inf, np.inf)}):
        opt = ScipyOptimizerInterface(sq(vector), method="BFGS", var_to_bounds=nothing)
        assert opt.packed_bounds is None
    for elementwise in ([(None, None)] * 2, np.array([[-np.inf, np.inf]] * 2)):  # scipy's own form
        assert ScipyOptimizerInterface(sq(vector), method="BFGS", bounds=elementwise).packed_bounds is None
    with pytest.raises(optrun.UnsupportedMethodError, match="drop the bounds"):
        ScipyOptimizerInterface(sq(vector), method="BFGS", var_to_bounds={vector.ref(): (0.0, None)})
