"""Packing, variable keys and the fast call path, checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import optrun
from optrun.evaluation.bounds import pack_bounds
from optrun.evaluation.fastcall import FastCaller, _public
from optrun.evaluation.packing import Layout
from optrun.evaluation.point import Evaluation
from optrun.varkeys import resolve_var_keyed, variable_names


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.integers(1, 3), min_size=0, max_size=3), min_size=1, max_size=4))
def test_pack_unpack_roundtrip(shapes: list[list[int]]) -> None:
    rng = np.random.default_rng(0)
    values = [rng.normal(size=s) for s in shapes]
    variables = [tf.Variable(v) for v in values]
    layout = Layout.of(variables)
    packed = layout.pack_np(values)
    assert packed.shape == (sum(int(np.prod(s)) for s in shapes),)
    for got, want in zip(layout.unpack_np(packed), values, strict=True):
        np.testing.assert_array_equal(got, want)


def test_pack_bounds_broadcast_and_pairs() -> None:
    a, b = tf.Variable(np.zeros((2, 2))), tf.Variable(np.zeros(3))
    layout = Layout.of([a, b])
    packed = pack_bounds([([[0.0, 1.0], [2.0, 3.0]], 5.0), None], layout)
    assert packed is not None
    np.testing.assert_array_equal(packed.lower, [0, 1, 2, 3, -np.inf, -np.inf, -np.inf])
    np.testing.assert_array_equal(packed.upper, [5, 5, 5, 5, np.inf, np.inf, np.inf])
    assert packed.as_pairs()[4] == (-np.inf, np.inf)  # TF1 filled unbounded sides in with infinities
    assert packed.as_pairs()[0] == (0.0, 5.0)
    assert pack_bounds([None, None], layout) is None


def test_evaluation_split_layout() -> None:
    # [f | g(3) | e(1) | Je(1x3) | h(2) | Jh(2x3)]
    packed = np.arange(1 + 3 + 1 + 3 + 2 + 6, dtype=np.float64)
    ev = Evaluation.split(packed, 3, 1, 2)
    assert ev.loss == 0.0
    np.testing.assert_array_equal(ev.grad, [1, 2, 3])
    np.testing.assert_array_equal(ev.equalities, [4])
    np.testing.assert_array_equal(ev.equality_jacobian, [[5, 6, 7]])
    np.testing.assert_array_equal(ev.inequalities, [8, 9])
    np.testing.assert_array_equal(ev.inequality_jacobian, [[10, 11, 12], [13, 14, 15]])


def test_var_keyed_forms() -> None:
    import keras

    layer = keras.layers.Dense(2, name="proj")
    layer.build((None, 3))
    alpha = tf.Variable(1.0, name="alpha")
    variables = [alpha, layer.kernel, layer.bias]
    assert "proj/kernel" in variable_names(layer.kernel)
    assert resolve_var_keyed({alpha.ref(): 1}, variables, argument="x") == [1, None, None]
    assert resolve_var_keyed([(layer.bias, 2)], variables, argument="x") == [None, None, 2]
    assert resolve_var_keyed({"alpha:0": 1, "proj/kernel": 3}, variables, argument="x") == [1, 3, None]
    # The tf.Variable inside a Keras variable names the same variable.
    assert resolve_var_keyed([(layer.kernel.value, 4)], variables, argument="x") == [None, 4, None]
    assert resolve_var_keyed(None, variables, argument="x") == [None, None, None]
    with pytest.raises(optrun.UnknownVariableError, match="known names: 'alpha', 'proj/kernel', 'proj/bias'"):
        resolve_var_keyed({"kernel:1": 1}, variables, argument="vars_to_clip_dims")
    with pytest.raises(optrun.InvalidTypeError, match="keys must be"):
        resolve_var_keyed({3: 1}, variables, argument="x")


def test_graph_mode_dict_keyed_by_variables() -> None:
    with tf.Graph().as_default():
        a = tf.compat.v1.Variable(1.0, name="a", use_resource=True)
        b = tf.compat.v1.Variable(2.0, name="b", use_resource=True)
        assert resolve_var_keyed({b: "B", a: "A"}, [a, b], argument="x") == ["A", "B"]


@pytest.mark.parametrize("jit", [True, False])
def test_fast_call_matches_public_call(jit: bool) -> None:
    v = tf.Variable(np.zeros(4))
    spec = [tf.TensorSpec([4], tf.float64)]

    def body(x: tf.Tensor):
        v.assign(x)
        return tf.concat([tf.reshape(tf.reduce_sum(v**3), [1]), 3 * v**2], 0), [v * 2.0]

    concrete = tf.function(body, input_signature=spec, jit_compile=jit).get_concrete_function()
    fast, public = FastCaller(concrete), _public(concrete)
    rng = np.random.default_rng(0)
    points = [np.arange(4.0), np.arange(4.0), np.array([0.5, -1.0, 2.0, 3.0])]
    points += [rng.normal(size=4) for _ in range(20)]
    kept = []
    for i, x in enumerate(points):
        got, fetched = fast(x)
        # The thin path takes over once two distinct points agree (the repeat does not count).
        assert fast.path == ("checking" if i < 2 else "thin")
        want, want_fetched = public(x)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, np.concatenate([[np.sum(x**3)], 3 * x**2]))
        np.testing.assert_allclose(fetched[0], 2 * x)
        np.testing.assert_array_equal(fetched[0], want_fetched[0])
        # The variable holds the last point, not a view of the reused input buffer.
        np.testing.assert_array_equal(v.numpy(), x)
        kept.append((x.copy(), got))
    # Outputs handed out earlier are never overwritten by later calls.
    for x, got in kept:
        np.testing.assert_allclose(got, np.concatenate([[np.sum(x**3)], 3 * x**2]))
    # Mutating the caller's array after the call changes nothing already computed.
    x = rng.normal(size=4)
    got, _ = fast(x)
    before = got.copy()
    x[:] = 0.0
    np.testing.assert_array_equal(got, before)


def test_fast_call_falls_back_when_the_thin_path_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.evaluation import fastcall as _fastcall

    v = tf.Variable(np.zeros(2))
    concrete = tf.function(
        lambda x: (tf.reshape(tf.reduce_sum(v.assign(x)), [1]), []),
        input_signature=[tf.TensorSpec([2], tf.float64)],
    ).get_concrete_function()
    real = _fastcall._runtime

    def stale(c):  # a thin path that ignores new points after the first: must be caught
        call = real(c)
        first = []

        def wrapped(x):
            first.append(np.array(x))
            return call(first[0])

        return wrapped

    monkeypatch.setattr(_fastcall, "_runtime", lambda c, extras=(), options=None: stale(c))
    fast = FastCaller(concrete)
    assert fast(np.array([1.0, 2.0]))[0][0] == 3.0
    assert fast.path == "checking"
    assert fast(np.array([5.0, 5.0]))[0][0] == 10.0
    assert fast.path == "public"
    assert fast(np.array([1.0, 1.0]))[0][0] == 2.0
    monkeypatch.setenv("OPTRUN_SAFE_CALL", "1")
    assert FastCaller(concrete).path == "public"


@pytest.mark.parametrize("k", [0, 1, 10, 40])
def test_stack_scalars_is_exact(k: int) -> None:
    from optrun.evaluation.outputs import stack_scalars

    rng = np.random.default_rng(k)
    want = rng.normal(size=k)
    if k:
        want[0] = np.inf
        want[-1] = np.nan  # a NaN or inf in one slot must not leak into the others
    values = [tf.constant(w) for w in want]
    got = tf.function(lambda: stack_scalars(values), jit_compile=True)().numpy()
    np.testing.assert_array_equal(got, want)
    if k:  # float32 values are widened exactly
        got32 = stack_scalars([tf.constant(np.float32(1.1))]).numpy()
        assert got32.dtype == np.float64 and got32[0] == float(np.float32(1.1))


def test_parts_joined_in_numpy_equal_the_packed_vector() -> None:
    from optrun.evaluation.outputs import join_parts, joiner, output_parts

    w = tf.Variable([1.5, -2.0, 0.25], dtype=tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(w**3)  # float32, as a session would fetch it
        eqs, ineqs = [w[0] * w[1]], [w[2] - 1.0, tf.reduce_sum(w)]
    parts = output_parts(loss, eqs, ineqs, lambda v: tf.cast(tape.gradient(v, w), tf.float64))
    got = joiner(parts)([p.numpy() for p in parts])
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, join_parts(parts).numpy())
    # By hand: f = sum w^3, grad 3 w^2; e = w0 w1, grad (w1, w0, 0); h = (w2 - 1, sum w).
    x = np.array([1.5, -2.0, 0.25], np.float32).astype(np.float64)
    want = [np.sum(x**3), *(3 * x**2), x[0] * x[1], x[1], x[0], 0.0, x[2] - 1, np.sum(x), 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_fast_call_constant_output_is_copied_and_errors_keep_the_source_line() -> None:
    spec = [tf.TensorSpec([2], tf.float64)]
    # Constant-folded without XLA: TF hands out one shared buffer for every call.
    constant = tf.function(lambda x: (tf.constant([1.0, 0.0, 0.0], tf.float64), []), input_signature=spec)
    fast = FastCaller(constant.get_concrete_function())
    for x in ([1.0, 2.0], [3.0, 4.0], [5.0, 6.0]):
        fast(np.array(x))
    assert fast.path == "thin"
    first, _ = fast(np.array([7.0, 8.0]))
    first[1] = 5.0  # a careless caller must not poison later calls
    np.testing.assert_array_equal(fast(np.array([9.0, 9.0]))[0], [1.0, 0.0, 0.0])

    v = tf.Variable(np.ones(2))

    def body(x: tf.Tensor):
        v.assign(x)
        checked = tf.debugging.check_numerics(tf.math.log(v), "log of v")
        return tf.reshape(tf.reduce_sum(checked), [1]), []

    fast = FastCaller(tf.function(body, input_signature=spec).get_concrete_function())
    for x in ([1.0, 2.0], [3.0, 4.0]):
        fast(np.array(x))
    assert fast.path == "thin"
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)test_plumbing\.py.*log of v"):
        fast(np.array([-1.0, 1.0]))


def test_points_of_the_wrong_shape_are_refused_not_broadcast() -> None:
    a, b = tf.Variable([1.0, 2.0]), tf.Variable(3.0, dtype=tf.float64)
    opt = optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(a**2) + tf.cast(b, tf.float32) ** 2)
    opt.minimize()
    for bad in ([5.0], 5.0, [[0.0, 0.0, 0.0]], [1.0, 2.0]):
        for call in (opt.evaluate, opt.gradient, opt.assign):
            with pytest.raises(optrun.InvalidArgumentError, match=r"flat vector of 3 values"):
                call(bad)
    np.testing.assert_allclose(opt.evaluate([1.0, 1.0, 2.0])["loss"], 6.0)
