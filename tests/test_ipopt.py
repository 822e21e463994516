"""IpoptInterface (TF2) against worked-out answers, SLSQP, and its own contract: options,
the missing extra, non-finite values, callbacks, Ctrl-C."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest
import tensorflow as tf

import optrun
from optrun import InvalidArgumentError, NonFiniteError, OptrunError, ScipyOptimizerInterface
from optrun.errors import MissingDependencyError
from optrun.interfaces.ipopt.interface import IpoptInterface
from optrun.interfaces.ipopt.option_files import tokens_of
from optrun.runner.outcome import classify

pytest.importorskip("cyipopt")


def seed_problem() -> tuple[tf.Variable, dict]:
    """tf.contrib.opt's constrained example: min |v|^2 s.t. v[1] == 1, v[0] >= 1, from [7, 7]."""
    vector = tf.Variable([7.0, 7.0], name="vector")
    return vector, {
        "loss": lambda: tf.reduce_sum(tf.square(vector)),
        "equalities": [lambda: vector[1] - 1.0],
        "inequalities": [lambda: vector[0] - 1.0],
    }


def test_seed_example_reaches_one_one_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    vector, problem = seed_problem()
    steps: list[np.ndarray] = []
    result = IpoptInterface(**problem).minimize(step_callback=lambda x: steps.append(x.copy()))
    assert result.success and result.status == 0
    np.testing.assert_allclose(vector.numpy(), [1.0, 1.0], atol=1e-6)
    assert result.fun == pytest.approx(2.0, abs=1e-6)
    # grad f + J^T mult_g = 0 at [1, 1]: (2, 2) + mult_g[0] * (0, 1) + mult_g[1] * (1, 0) = 0.
    np.testing.assert_allclose(result.multipliers["mult_g"], [-2.0, -2.0], atol=1e-6)
    assert len(steps) == result.nit > 0
    assert all(s.shape == (2,) and s.dtype == np.float64 for s in steps)
    np.testing.assert_allclose(steps[-1], result.x)
    assert classify("ipopt", result.status, result.success, result.message, fun=result.fun) == "converged"
    assert capfd.readouterr().out == ""  # no banner, no iteration log: library code never prints


def test_bounded_inequality_matches_kkt_by_hand() -> None:
    # min (x-3)^2 + (y+1)^2  s.t.  x + y <= 1,  x >= 0,  y >= 0.
    # KKT with x + y = 1 and y = 0 active: grad f = (-4, 2) at (1, 0); IPOPT's convention
    # grad f + mult_g * grad(1 - x - y) - z_L = 0 gives mult_g = -4 (x free) and z_L[y] = 6.
    x = tf.Variable(0.5, dtype=tf.float64, name="x")
    y = tf.Variable(0.5, dtype=tf.float64, name="y")
    opt = IpoptInterface(
        lambda: (x - 3.0) ** 2 + (y + 1.0) ** 2,
        inequalities=[lambda: 1.0 - x - y],
        var_to_bounds={x.ref(): (0.0, None), y.ref(): (0.0, np.inf)},
        options={"tol": 1e-10},
    )
    result = opt.minimize()
    assert result.success
    np.testing.assert_allclose([x.numpy(), y.numpy()], [1.0, 0.0], atol=1e-7)
    assert result.fun == pytest.approx(5.0, abs=1e-7)
    np.testing.assert_allclose(result.multipliers["mult_g"], [-4.0], atol=1e-6)
    np.testing.assert_allclose(result.multipliers["mult_x_L"], [0.0, 6.0], atol=1e-6)
    np.testing.assert_allclose(result.multipliers["mult_x_U"], [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.constraints, [0.0], atol=1e-7)


def test_convex_qp_with_equalities_agrees_with_slsqp_and_the_kkt_system() -> None:
    rng = np.random.default_rng(20)
    n, p = 5, 2
    a = rng.normal(size=(n, n))
    q, c = a @ a.T + np.eye(n), rng.normal(size=n)
    b, d = rng.normal(size=(p, n)), rng.normal(size=p)
    # The KKT system [[Q, B^T], [B, 0]] [x; lam] = [-c; d] has the unique solution.
    kkt = np.block([[q, b.T], [b, np.zeros((p, p))]])
    expected = np.linalg.solve(kkt, np.concatenate([-c, d]))[:n]

    def solve(make) -> np.ndarray:  # type: ignore[no-untyped-def]
        v = tf.Variable(np.zeros(n), name="v")
        loss = lambda: 0.5 * tf.tensordot(v, tf.linalg.matvec(q, v), 1) + tf.tensordot(c, v, 1)
        equalities = [lambda i=i: tf.tensordot(b[i], v, 1) - d[i] for i in range(p)]
        assert make(loss, equalities).minimize().success
        return v.numpy()

    ipopt = solve(lambda f, e: IpoptInterface(f, equalities=e, options={"tol": 1e-12}))
    slsqp = solve(
        lambda f, e: ScipyOptimizerInterface(f, equalities=e, method="SLSQP", options={"ftol": 1e-14})
    )
    np.testing.assert_allclose(ipopt, slsqp, atol=1e-6)
    np.testing.assert_allclose(ipopt, expected, atol=1e-7)


def test_counts_and_loss_callback_once_per_point() -> None:
    _, problem = seed_problem()
    calls: list[float] = []
    opt = IpoptInterface(**problem)
    result = opt.minimize(fetches=[problem["loss"]], loss_callback=calls.append)
    # IPOPT asks for f and grad f separately: one loss computation (and callback) per point.
    assert result.nfev == len(calls) == opt.nfev
    assert opt.tiers is not None and sum(opt.tiers["evaluations"].values()) <= result.nfev


def test_a_blas_thread_count_asked_for_holds_from_the_first_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadpoolctl import threadpool_info

    from optrun.interfaces import threads

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    if not before or all(t == 1 for t in before):
        pytest.skip("BLAS pools of one thread already: nothing to see")
    threads._controller.cache_clear()  # libraries not yet known: "auto" would wait
    monkeypatch.setattr(threads, "DEFER_S", 3600.0)
    _, problem = seed_problem()
    seen: list[list[int]] = []
    IpoptInterface(**problem, blas_threads=1).minimize(loss_callback=lambda *_: seen.append(blas_threads()))
    assert seen and all(t == [1] * len(before) for t in seen)
    assert blas_threads() == before


def test_iteration_limit_is_a_budget() -> None:
    vector, problem = seed_problem()
    result = IpoptInterface(**problem, options={"max_iter": 2}).minimize()
    assert (result.success, result.status, result.nit) == (False, -1, 2)
    assert (
        classify("ipopt", result.status, result.success, result.message, fun=result.fun) == "budget_reached"
    )
    np.testing.assert_allclose(vector.numpy(), result.x)


def test_defaults_and_user_options() -> None:
    _, problem = seed_problem()
    opt = IpoptInterface(**problem, options={"print_level": 3, "mu_strategy": "Adaptive", "tol": "1e-9"})
    numpy_scalars = IpoptInterface(**problem, options={"max_iter": np.int64(5), "tol": np.float32(0.5)})
    assert (numpy_scalars.options["max_iter"], numpy_scalars.options["tol"]) == (5, 0.5)
    assert opt.options["print_level"] == 3  # the user's wins
    assert opt.options["sb"] == "yes" and opt.options["option_file_name"] == ""
    assert opt.options["hessian_approximation"] == "limited-memory"
    assert opt.options["mu_strategy"] == "adaptive" and opt.options["tol"] == 1e-9  # YAML-ish input
    assert opt._evaluation_budget() == 3001


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_iters": 5}, r"'max_iters' is not an IPOPT option; did you mean 'max_iter'\?"),
        ({"max_iter": -1}, r"options\['max_iter'\] must satisfy 0 <= max_iter; got -1"),
        ({"max_iter": 2.5}, r"options\['max_iter'\] must be a whole number; got 2.5"),
        (
            {"max_iter": 10**12},
            r"options\['max_iter'\] is out of IPOPT's range .* 2,147,483,647\); got 1000000000000",
        ),
        ({"tol": "small"}, r"options\['tol'\] must be a number; got 'small'"),
        (
            {"mu_strategy": "adaptiv"},
            r"must be one of monotone, adaptive; got 'adaptiv': did you mean 'adaptive'",
        ),
        ({"hessian_approximation": "exact"}, r"must be 'limited-memory': .*first derivatives only"),
        ([("tol", 1e-8)], r"options must be a dict"),
        # IPOPT lists HSL's and Pardiso's solvers but loads them only from a library at the solve.
        (
            {"linear_solver": "ma27"},
            r"options\['linear_solver'\] is 'ma27', which IPOPT could not load: libhsl\.so: cannot open "
            r".*has MUMPS \('mumps', the default\); for 'ma27', give the path of a library that has "
            r"it as options\['hsllib'\]$",
        ),
        ({"linear_solver": "ma57", "hsllib": "/nowhere/libhsl.so"}, r"could not load: /nowhere/libhsl\.so"),
        ({"linear_solver": "pardiso"}, r"libpardiso\.so.*options\['pardisolib'\]$"),
    ],
)
def test_bad_options_are_refused_at_construction(
    options: object, match: str, capfd: pytest.CaptureFixture[str]
) -> None:
    _, problem = seed_problem()
    with pytest.raises(InvalidArgumentError, match=match):
        IpoptInterface(**problem, options=options)  # type: ignore[arg-type]
    assert capfd.readouterr().out == ""  # IPOPT never saw them (it would print its complaint)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "SLSQP"}, "always runs IPOPT"),
        ({"max_iter": 5}, r"IPOPT options go in options=\{'max_iter': ...\}"),
        ({"blas_thread": 1}, "did you mean 'blas_threads'"),
        ({"blas_threads": 0}, "blas_threads must be"),
    ],
)
def test_bad_keywords(kwargs: dict, match: str) -> None:
    _, problem = seed_problem()
    with pytest.raises(InvalidArgumentError, match=match):
        IpoptInterface(**problem, **kwargs)


def test_dense_jacobian_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("optrun.interfaces.ipopt.jacobian.MAX_JACOBIAN_ENTRIES", 3)
    _, problem = seed_problem()  # 2 constraints x 2 variables = 4 entries
    with pytest.raises(InvalidArgumentError, match=r"2 x 2 = 4 entries.*sparse Jacobians are not supported"):
        IpoptInterface(**problem)


def test_a_jacobian_that_cannot_fit_in_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from optrun.interfaces.ipopt import jacobian

    # 10 rows x 1,000,000 variables at 240 bytes an entry: 2.4e9 bytes, 2.2 GiB.
    with pytest.raises(InvalidArgumentError, match=r"would need about 2\.2 GiB .* 2\.0 GiB is available"):
        jacobian.check_jacobian_size(10, 1_000_000, available=2**31)
    jacobian.check_jacobian_size(10, 1_000_000, available=2_500_000_000)  # 2.3 GiB: it fits
    monkeypatch.setattr(jacobian, "available_bytes", lambda: 900)  # 2 x 2 entries need 960 bytes
    _, problem = seed_problem()
    with pytest.raises(InvalidArgumentError, match=r"\(2 x 2 = 4 entries\) would need"):
        IpoptInterface(**problem)
    monkeypatch.setattr(jacobian, "available_bytes", lambda: None)  # unknown: not refused for it
    IpoptInterface(**problem)


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _, problem = seed_problem()
    monkeypatch.setitem(sys.modules, "cyipopt", None)  # import cyipopt raises ImportError
    with pytest.raises(MissingDependencyError) as caught:
        optrun.IpoptInterface(**problem)
    assert str(caught.value) == (
        'IPOPT needs the ipopt extra: pip install "/path/to/optrun[ipopt]" from a checkout, or just its '
        'package: pip install "cyipopt-wheels>=1.7.0.dev0"'
    )
    assert isinstance(caught.value, OptrunError) and isinstance(caught.value, ImportError)


def nan_past_three(v: tf.Variable) -> tf.Tensor:
    """(v - 5)^2 summed, NaN once v[0] > 3 (0 * log of a negative number)."""
    return tf.reduce_sum(tf.square(v - 5.0)) + 0.0 * tf.math.log(3.0 - v[0])


@pytest.mark.parametrize("constrained", [False, True])
def test_nonfinite_loss_stops_with_finite_variables(constrained: bool) -> None:
    v = tf.Variable([0.0, 0.0], dtype=tf.float64, name="v")
    extra = {"inequalities": [lambda: 10.0 - v[1]]} if constrained else {}
    with pytest.raises(NonFiniteError, match=r"the loss is nan.*check_finite=False to let IPOPT"):
        IpoptInterface(lambda: nan_past_three(v), **extra).minimize()
    assert np.isfinite(v.numpy()).all() and v.numpy()[0] <= 3.0


def test_nonfinite_start_without_check_is_ipopts_invalid_number() -> None:
    v = tf.Variable([4.0, 0.0], dtype=tf.float64, name="v")
    result = IpoptInterface(lambda: nan_past_three(v), check_finite=False).minimize()
    assert (result.success, result.status) == (False, -13)
    assert classify("ipopt", result.status, result.success, result.message, fun=result.fun) == "nonfinite"
    np.testing.assert_allclose(v.numpy(), [4.0, 0.0])


@pytest.mark.parametrize("where", ["loss_callback", "step_callback"])
@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_interrupt_from_a_callback_ends_minimize(where: str, error: type[BaseException]) -> None:
    _, problem = seed_problem()
    calls = []

    def callback(*_: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise error("stop")

    with pytest.raises(error, match="stop"):
        IpoptInterface(**problem).minimize(**{where: callback})
    assert len(calls) == 3  # nothing ran after it: IPOPT was steered out at once


def test_a_near_miss_of_ipopt_given_to_scipy_points_to_the_ipopt_interface() -> None:
    v = tf.Variable([1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match=r"got 'IPOP'; for IPOPT use optrun\.IpoptInterface"):
        optrun.ScipyOptimizerInterface(lambda: tf.reduce_sum(v**2), method="IPOP")


def test_an_early_stop_reports_the_loss_at_x_not_ipopts_zero() -> None:
    # Three equalities on two variables: IPOPT stops before an iteration (too few degrees of freedom).
    v = tf.Variable([7.0, 7.0], dtype=tf.float64)
    eqs = [lambda: v[0] - 1.0, lambda: v[1] - 1.0, lambda: v[0] + v[1] - 2.0]
    result = IpoptInterface(lambda: tf.reduce_sum(tf.square(v)), equalities=eqs).minimize()
    assert (result.success, result.status) == (False, -10)
    np.testing.assert_allclose(result.x, [7.0, 7.0])
    assert result.fun == 98.0  # 7^2 + 7^2


def test_fixed_variables_as_constraints_without_constraints_of_its_own() -> None:
    # fixed_variable_treatment make_constraint: IPOPT asks for m = 0 constraint values and rows.
    w = tf.Variable([7.0, 7.0], dtype=tf.float64)
    result = IpoptInterface(
        lambda: tf.reduce_sum(tf.square(w - 3.0)),
        var_to_bounds={w.ref(): ([1.0, -np.inf], [1.0, np.inf])},
        options={"fixed_variable_treatment": "make_constraint"},
    ).minimize()
    assert result.success
    np.testing.assert_allclose(w.numpy(), [1.0, 3.0], atol=1e-7)  # w0 fixed at 1; w1 free, at 3


def test_stop_iteration_from_step_callback_is_a_users_stop() -> None:
    _, problem = seed_problem()
    steps: list[int] = []

    def step(_: np.ndarray) -> None:
        steps.append(1)
        if len(steps) == 2:
            raise StopIteration

    result = IpoptInterface(**problem).minimize(step_callback=step)
    assert (result.success, result.status, result.nit, len(steps)) == (False, 5, 2, 2)
    assert result.message == "`step_callback` raised `StopIteration`."
    assert classify("ipopt", result.status, result.success, result.message, fun=result.fun) == "interrupted"


@pytest.mark.parametrize("bounds", [(np.inf, np.inf), (None, -np.inf), ([0.0, np.inf], None)])
def test_bounds_no_value_can_meet_are_refused(bounds: tuple) -> None:
    v = tf.Variable([1.0, 2.0], dtype=tf.float64)
    for interface in (IpoptInterface, ScipyOptimizerInterface):
        with pytest.raises(InvalidArgumentError, match=r"bound of 'Variable.*' is -?inf at index .*Use None"):
            interface(lambda: tf.reduce_sum(v**2), var_to_bounds={v.ref(): bounds})


@pytest.mark.parametrize("bounds", [(np.inf, None), (3.0, 1.0)])
def test_a_scalar_variables_impossible_bounds_are_refused(bounds: tuple) -> None:
    s = tf.Variable(1.0, dtype=tf.float64)
    said = r"(lower bound of 'Variable.*' is inf; no value|bounds of 'Variable.*' are empty: low 3)"
    with pytest.raises(InvalidArgumentError, match=said):
        ScipyOptimizerInterface(
            lambda: tf.square(s - 2.0), var_to_bounds={s.ref(): bounds}, method="L-BFGS-B"
        )


def test_file_options_ipopt_could_not_use_are_refused_at_construction(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # IPOPT reads relative paths from the working directory
    _, problem = seed_problem()
    (tmp_path / "bad.opt").write_text("# tried first\nmax_iter abc\n")
    (tmp_path / "pairs.opt").write_text("max_iter 5 6\n")  # an odd number of words: 6 has no value
    refused = {
        "output_file": ("missing/log.txt", r"names 'missing/log.txt', which IPOPT cannot write"),
        "option_file_name": ("bad.opt", r"'bad.opt', whose line 2 IPOPT would refuse: .*'max_iter'"),
    }
    for name, (value, match) in refused.items():
        with pytest.raises(InvalidArgumentError, match=match):
            IpoptInterface(**problem, options={name: value})
    with pytest.raises(InvalidArgumentError, match=r"cannot be read .*IPOPT would go on without it"):
        IpoptInterface(**problem, options={"option_file_name": "nowhere.opt"})
    with pytest.raises(InvalidArgumentError, match=r"option '6' \(line 1\) has no value after it"):
        IpoptInterface(**problem, options={"option_file_name": "pairs.opt"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.opt", "pairs.opt"]  # no trial left


def test_an_option_file_and_an_output_file_ipopt_can_use_are_used(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, problem = seed_problem()
    (tmp_path / "two.opt").write_text("max_iter 2  # from the file\n")
    result = IpoptInterface(
        **problem, options={"option_file_name": "two.opt", "output_file": "log.txt"}
    ).minimize()
    assert result.nit == 2 and not result.success  # the file's limit, reached
    gc.collect()  # IPOPT closes its output file with the problem that wrote it
    assert "Number of Iterations....: 2" in (tmp_path / "log.txt").read_text()


def test_option_files_are_read_as_ipopt_reads_them() -> None:
    text = "# a comment\ntol 1e-8 max_iter 50  # two on a line\n"
    text += 'linear_solver "mumps"\noutput_file\n"my log.txt"\n'
    assert tokens_of(text) == [
        ("tol", 2),
        ("1e-8", 2),
        ("max_iter", 2),
        ("50", 2),
        ("linear_solver", 3),
        ("mumps", 3),
        ("output_file", 4),
        ("my log.txt", 5),
    ]
    assert tokens_of("output_file run#1.txt\r\n") == [("output_file", 1), ("run#1.txt", 1)]


def test_an_option_file_ipopt_accepts_is_accepted_and_one_it_refuses_is_named(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    vector, problem = seed_problem()
    (tmp_path / "ok.opt").write_text('tol 1e-9 max_iter\n 50 linear_solver "mumps" # fine\n')
    result = IpoptInterface(**problem, options={"option_file_name": "ok.opt"}).minimize()
    assert result.success
    np.testing.assert_allclose(vector.numpy(), [1.0, 1.0], atol=1e-6)
    (tmp_path / "odd.opt").write_text("tol 1e-9\nmax_iter\n")
    with pytest.raises(InvalidArgumentError, match=r"option 'max_iter' \(line 2\) has no value after it"):
        IpoptInterface(**problem, options={"option_file_name": "odd.opt"})
    (tmp_path / "upper.opt").write_text("TOL 1e-8\n")  # IPOPT's names are lower case: it refuses it too
    with pytest.raises(
        InvalidArgumentError, match=r"line 1 IPOPT would refuse: 'TOL' is not an IPOPT option"
    ):
        IpoptInterface(**problem, options={"option_file_name": "upper.opt"})
