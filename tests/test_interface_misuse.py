"""What a slip in using the TF2 interfaces gets: a clear OptrunError before anything runs, or the
answer plain scipy would give. Each case was a raw TypeError, ValueError or a hang before."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import optrun
from optrun import ScipyOptimizerInterface


@pytest.fixture
def v() -> tf.Variable:
    return tf.Variable([7.0, 7.0], dtype=tf.float64, name="v")


def square(v: tf.Variable) -> tf.Tensor:
    return tf.reduce_sum(tf.square(v - 3.0))  # minimum at [3, 3]; Hessian 2 I


# ----- callables that cannot be called with no arguments ------------------------------------------
@pytest.mark.parametrize(
    ("argument", "what"),
    [("loss", "loss"), ("equalities", "equalities[0]"), ("inequalities", "inequalities[0]")],
)
def test_a_callable_that_takes_arguments_is_refused_by_name(v: tf.Variable, argument: str, what: str) -> None:
    def takes_v(variable: tf.Variable) -> tf.Tensor:
        return variable[0] - 1.0

    kwargs: dict = {"loss": lambda: square(v)}
    kwargs[argument] = takes_v if argument == "loss" else [takes_v]
    with pytest.raises(optrun.InvalidArgumentError, match=re.escape(what) + " must be a zero-arg") as caught:
        ScipyOptimizerInterface(**kwargs)
    assert "takes_v(variable)" in str(caught.value)


def test_a_fetch_that_takes_arguments_is_refused_by_name(v: tf.Variable) -> None:
    opt = ScipyOptimizerInterface(lambda: square(v))
    with pytest.raises(optrun.InvalidArgumentError, match=r"fetches\[0\] must be a zero-argument") as caught:
        opt.minimize(fetches=[lambda x: x], loss_callback=lambda value: None)
    assert "<lambda>(x)" in str(caught.value)  # the user's lambda, not AutoGraph's wrapper
    np.testing.assert_array_equal(v.numpy(), [7.0, 7.0])  # nothing ran


# ----- methods and second derivatives ---------------------------------------------------------
@pytest.mark.parametrize("method", ["dogleg", "trust-exact", "trust-ncg", "trust-krylov"])
def test_a_method_that_needs_a_hessian_is_refused_without_one(v: tf.Variable, method: str) -> None:
    with pytest.raises(optrun.InvalidArgumentError, match=rf"{method}' needs second derivatives: pass hess="):
        ScipyOptimizerInterface(lambda: square(v), method=method)
    # With options too: the message is about hess, not the options.
    with pytest.raises(optrun.InvalidArgumentError, match="needs second derivatives"):
        ScipyOptimizerInterface(lambda: square(v), method=method, options={"maxiter": 5})


@pytest.mark.parametrize("method", ["dogleg", "trust-exact", "trust-krylov"])
def test_a_method_given_its_hessian_reaches_the_minimum(v: tf.Variable, method: str) -> None:
    result = ScipyOptimizerInterface(
        lambda: square(v), method=method, hess=lambda x: 2.0 * np.eye(2), options={"maxiter": 20}
    ).minimize()
    assert result.success
    np.testing.assert_allclose(v.numpy(), [3.0, 3.0], atol=1e-8)


def test_trust_ncg_takes_a_hessian_vector_product(v: tf.Variable) -> None:
    ScipyOptimizerInterface(lambda: square(v), method="trust-ncg", hessp=lambda x, p: 2.0 * p).minimize()
    np.testing.assert_allclose(v.numpy(), [3.0, 3.0], atol=1e-8)


@pytest.mark.parametrize(("method", "key"), [("L-BFGS-B", "hess"), ("BFGS", "hessp"), ("dogleg", "hessp")])
def test_second_derivatives_a_method_ignores_are_refused(v: tf.Variable, method: str, key: str) -> None:
    extra = {"hess": lambda x: 2.0 * np.eye(2)} if method == "dogleg" else {}
    with pytest.raises(
        optrun.InvalidArgumentError, match=rf"'{method}' does not use {key}= \(scipy would ignore"
    ):
        ScipyOptimizerInterface(lambda: square(v), method=method, **extra, **{key: lambda *a: None})


def test_a_custom_method_whose_result_holds_only_x(v: tf.Variable) -> None:
    def bare(fun, x0, args=(), **kwargs):  # type: ignore[no-untyped-def]
        return scipy.optimize.OptimizeResult(x=np.array([1.0, 2.0]))

    result = ScipyOptimizerInterface(lambda: square(v), method=bare).minimize()
    np.testing.assert_array_equal(result.x, [1.0, 2.0])
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])


# ----- a subclass's _minimize ---------------------------------------------------------------
class Returns(optrun.ExternalOptimizerInterface):
    """One gradient step, to [5, 5] (loss 8), then returns ``optimizer_kwargs['give']``."""

    def _minimize(self, initial_val, loss_grad_func, step_callback, optimizer_kwargs, **unused):  # type: ignore[no-untyped-def, override]
        _, grad = loss_grad_func(initial_val)
        step_callback(initial_val - 0.5 * grad)
        return optimizer_kwargs["give"]


@pytest.mark.parametrize(
    ("give", "got"),
    [(np.array([9.0, 8.0, 7.0]), r"shape \(3,\)"), (np.array([9.0]), r"shape \(1,\)"), (None, r"shape \(\)")],
)
def test_a_solution_of_the_wrong_size_is_refused(v: tf.Variable, give: object, got: str) -> None:
    with pytest.raises(
        optrun.InvalidArgumentError, match=rf"Returns._minimize returned {got}.*flat vector of 2 values"
    ):
        Returns(lambda: square(v), give=give).minimize()
    # The variables hold the best point evaluated: the start, the only one (loss 32).
    np.testing.assert_array_equal(v.numpy(), [7.0, 7.0])


class TF1Style(optrun.ExternalOptimizerInterface):
    """Reads the constraint functions as TF1's subclasses did: one-element lists."""

    def _minimize(
        self,
        initial_val,
        loss_grad_func,
        equality_funcs,
        equality_grad_funcs,  # type: ignore[no-untyped-def, override]
        inequality_funcs,
        inequality_grad_funcs,
        packed_bounds,
        step_callback,
        optimizer_kwargs,
    ):
        x = initial_val
        self.seen = (
            np.concatenate([f(x) for f in equality_funcs]),
            equality_funcs[0](x)[0],
            np.concatenate([g(x) for g in equality_grad_funcs]),
            inequality_grad_funcs[0](x)[0],
        )
        return x


def test_constraint_functions_give_one_element_arrays_as_tf1s_lists(v: tf.Variable) -> None:
    opt = TF1Style(
        lambda: square(v),
        equalities=[lambda: v[0] - 1.0, lambda: v[0] * v[1]],
        inequalities=[lambda: 2.0 * v[1]],
    )
    opt.minimize()
    values, first, jacobian, row = opt.seen
    np.testing.assert_array_equal(values, [6.0, 49.0])  # at [7, 7]
    assert first == 6.0
    np.testing.assert_array_equal(jacobian, [[1.0, 0.0], [7.0, 7.0]])
    np.testing.assert_array_equal(row, [0.0, 2.0])


# ----- names, datasets ----------------------------------------------------------------------
def test_two_variables_of_one_name_are_pointed_to_refs() -> None:
    a, b = tf.Variable(1.0, name="dup"), tf.Variable(2.0, name="dup")
    with pytest.raises(
        optrun.UnknownVariableError, match=r"ambiguous.*key them by var.ref\(\), or pass \(variable, value\)"
    ):
        ScipyOptimizerInterface(lambda: a * a + b * b, var_to_bounds={"dup": (0.0, 1.0)})


def test_an_infinite_dataset_is_refused() -> None:
    w = tf.Variable(1.0)
    data = tf.data.Dataset.from_tensor_slices([1.0, 2.0]).batch(1).repeat()
    with pytest.raises(optrun.InvalidArgumentError, match=r"data is infinite.*\.take\(n\)"):
        optrun.dataset_loss(lambda batch: tf.reduce_sum(batch * w), data)


def test_a_batch_loss_that_takes_no_batch_is_refused() -> None:
    w = tf.Variable(1.0)
    data = tf.data.Dataset.from_tensor_slices([1.0, 2.0]).batch(1)
    with pytest.raises(optrun.InvalidArgumentError, match=r"cannot be called with one batch"):
        optrun.dataset_loss(lambda: w * w, data)


def test_a_wrapper_that_supplies_the_arguments_is_taken_as_zero_argument(v: tf.Variable) -> None:
    import functools

    def shifted(shift: float) -> tf.Tensor:
        return tf.reduce_sum(tf.square(v - shift))

    @functools.wraps(shifted)  # its signature says (shift); it takes none
    def loss() -> tf.Tensor:
        return shifted(2.0)

    ScipyOptimizerInterface(loss, inequalities=[functools.wraps(shifted)(lambda: v[0] - 2.5)]).minimize()
    np.testing.assert_allclose(v.numpy(), [2.5, 2.0], atol=1e-6)


@pytest.mark.parametrize("method", ["dogleg", "trust-exact"])
def test_methods_that_take_only_a_callable_hessian_refuse_scipys_estimates(
    v: tf.Variable, method: str
) -> None:
    for hess in ("2-point", scipy.optimize.BFGS()):
        with pytest.raises(optrun.InvalidArgumentError, match="needs second derivatives: pass hess="):
            ScipyOptimizerInterface(lambda: square(v), method=method, hess=hess)
    # trust-ncg takes scipy's estimate
    ScipyOptimizerInterface(lambda: square(v), method="trust-ncg", hess="2-point").minimize()
    np.testing.assert_allclose(v.numpy(), [3.0, 3.0], atol=1e-5)


@pytest.mark.parametrize("wrap", ["average", "clip"])
def test_a_tf1_optimizer_wrapped_in_eager_code_is_told_to_use_keras(wrap: str) -> None:
    w = tf.Variable([3.0, 4.0])
    inner = tf.compat.v1.train.GradientDescentOptimizer(0.1)
    if wrap == "average":
        opt = optrun.MovingAverageOptimizer(inner)
    else:
        opt = optrun.VariableClippingOptimizer(inner, {w.ref(): [0]}, 1.0)
    with pytest.raises(optrun.OptrunError, match=r"running eagerly\. In TF2 code wrap a Keras optimizer"):
        opt.minimize(lambda: tf.reduce_sum(w * w), var_list=[w])
    assert w.numpy().tolist() == [3.0, 4.0]  # refused before any update


def test_var_list_takes_any_iterable_as_tf1_did_and_names_a_lone_variable(v: tf.Variable) -> None:
    other = tf.Variable([1.0, 1.0], dtype=tf.float64)
    loss = lambda: square(v) + tf.reduce_sum(other * other)
    # TF1 took list(var_list): a generator over the trainable variables, here only v.
    ScipyOptimizerInterface(loss, var_list=(x for x in [v])).minimize()
    np.testing.assert_allclose(v.numpy(), [3.0, 3.0], atol=1e-6)
    assert other.numpy().tolist() == [1.0, 1.0]  # not in var_list: left alone
    with pytest.raises(optrun.OptrunError, match=r"got one variable, 'v': pass var_list=\[variable\]"):
        ScipyOptimizerInterface(loss, var_list=v)


def test_variables_that_share_a_name_are_named_by_number_in_var_to_bounds() -> None:
    a, b = tf.Variable([5.0], name="w"), tf.Variable([5.0], name="w")
    loss = lambda: tf.reduce_sum(a * a) + tf.reduce_sum(b * b)
    with pytest.raises(optrun.UnknownVariableError, match=r"matches 'w', 'w#2'\. .*name them 'w#1', 'w#2'"):
        ScipyOptimizerInterface(loss, var_list=[a, b], var_to_bounds={"w": (1.0, 2.0)})
    with pytest.raises(optrun.UnknownVariableError, match=r"'w#3', which matches no variable"):
        ScipyOptimizerInterface(loss, var_list=[a, b], var_to_bounds={"w#3": (1.0, 2.0)})
    bounds = {"w#1": (1.0, 2.0), "w#2": (3.0, 4.0)}
    ScipyOptimizerInterface(loss, var_list=[a, b], var_to_bounds=bounds).minimize()
    assert (a.numpy().tolist(), b.numpy().tolist()) == ([1.0], [3.0])  # each at its lower bound


def test_a_number_that_is_another_variables_own_name_is_passed_over() -> None:
    a, b, c = (tf.Variable([5.0], name=n) for n in ("w", "w", "w#2"))
    loss = lambda: tf.reduce_sum(a * a) + tf.reduce_sum(b * b) + tf.reduce_sum(c * c)
    # The second "w" is "w#3": "w#2" names the variable called so.
    bounds = {"w#1": (1.0, 2.0), "w#3": (3.0, 4.0), "w#2": (-7.0, -6.0)}
    result = ScipyOptimizerInterface(loss, var_list=[a, b, c], var_to_bounds=bounds).minimize()
    assert (a.numpy().tolist(), b.numpy().tolist(), c.numpy().tolist()) == ([1.0], [3.0], [-6.0])
    assert result.fun == pytest.approx(1.0 + 9.0 + 36.0)
