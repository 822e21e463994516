"""The checks of a spec that need no model, each problem collected rather than raised.

:func:`check_references` imports every ``file.py:function`` in the spec and
checks that it takes the arguments the spec will give it, all without calling
it; :func:`check_method` and :func:`check_optimizer` check the scipy method and
the Keras optimizer with their options. All work on the raw spec, so they run
even when the schema found problems elsewhere or the model cannot be built;
:func:`check_names` then checks the variable names the spec gives against the
built model. A run calls :func:`before_building` for the same checks.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from optrun.errors import ConfigError, InvalidArgumentError, OptrunError, dotted, naming
from optrun.evaluation.bounds import pack_bounds
from optrun.evaluation.packing import Layout
from optrun.interfaces.method_options import (
    SIZED,
    check_options,
    check_sizes,
    hessian_in_a_spec,
    method_name,
    option_names,
    spec_method,
    tnc_maxiter,
)
from optrun.runner.build import build_optimizer, clipped_variables
from optrun.runner.collector import Collector, Path, get
from optrun.runner.ipopt_method import is_ipopt
from optrun.runner.ipopt_method import problems as ipopt_problems
from optrun.runner.minimize_fit import batch_loss_advice, takes_batch
from optrun.spec.base import REF_PATTERN
from optrun.spec.experiment import OptimizerSpec, VariableClippingSpec
from optrun.spec.load import LoadedSpec, RawSpec
from optrun.spec.minimize import ConstraintsSpec
from optrun.spec.user_code import call_mismatch, load_callable
from optrun.suggest import suggest
from optrun.varkeys import resolve_var_keyed


def _references(data: dict[str, Any]) -> list[tuple[Path, str]]:
    """Every reference in the raw spec with its path (of the form the schema takes: it reports
    the others)."""
    refs: list[tuple[Path, str]] = []
    for path in (("model", "builder"), ("data", "builder"), ("loss", "ref")):
        if isinstance(get(data, *path), str):
            refs.append((path, get(data, *path)))
    if isinstance(data.get("loss"), str) and ":" in data["loss"]:
        refs.append((("loss",), data["loss"]))
    for kind in ("equalities", "inequalities"):
        items = get(data, "minimize", "constraints", kind)
        for i, ref in enumerate(items if isinstance(items, list) else []):
            if isinstance(ref, str):
                refs.append((("minimize", "constraints", kind, i), ref))
        items = get(data, "minimize", "data", kind)
        for i, ref in enumerate(items if isinstance(items, list) else []):
            if isinstance(ref, str):
                refs.append((("minimize", "data", kind, i), ref))
    return [(path, ref) for path, ref in refs if re.fullmatch(REF_PATTERN, ref)]


def _check_call(
    collector: Collector, path: Path, ref: str, fn: Callable[..., Any], args: tuple[str, ...], params: Any
) -> bool:
    """Whether ``fn(*args, **params)`` would bind; each mismatch is recorded where it is in the spec."""
    params = params if isinstance(params, dict) else {}
    reason = call_mismatch(fn, *args, **params)
    if reason is None:  # it binds, or a builtin or C function: nothing to check before calling
        return True
    signature = inspect.signature(fn)
    where = (*path[:-1], "params")
    taken = list(signature.parameters)
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    found = False
    for key in params:
        if key not in signature.parameters and not open_kwargs:
            hint = suggest(key, taken[len(args) :], "argument")
            collector.add((*where, key), f"{ref} takes no argument {key!r}; {hint}")
            found = True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    free = [p for p in signature.parameters.values() if p.kind in positional][len(args) :]
    missing = [
        p.name
        for p in [*free, *(p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY)]
        if p.default is p.empty and p.name not in params
    ]
    if missing and path[-1] == "builder":
        names = ", ".join(repr(m) for m in missing)
        collector.add(
            path, f"{ref} needs {names}; give {'it' if len(missing) == 1 else 'them'} in {dotted(where)}"
        )
        found = True
    if not found:
        shown = f"({', '.join(args)})"
        collector.add(path, f"{ref} cannot be called as {fn.__name__}{shown}: {reason}")
    collector.unbound.add(path)
    return False


def _loss_forms(data: dict[str, Any], command: str | None) -> list[tuple[str, ...]]:
    """The calls the loss must take: train and minimize.data call loss(model, batch), a plain
    minimize loss(model); ``command`` (train or minimize) the one run, None (validate) each the
    spec has a section for."""
    batched: tuple[str, ...] = ("model", "batch")
    plain = ("model",) if get(data, "minimize", "data") is None else batched
    if command == "train":
        return [batched]
    if command == "minimize":
        return [plain]
    forms = [batched] if isinstance(data.get("train"), dict) else []
    if isinstance(data.get("minimize"), dict) or not forms:
        forms.append(plain)
    return list(dict.fromkeys(forms))


def check_references(
    raw: RawSpec, collector: Collector, command: str | None = None
) -> dict[Path, Callable[..., Any]]:
    """Imports every reference and checks its arguments, the loss's for ``command`` (train or
    minimize; None: for each section the spec has); returns those that passed, by path."""
    data, good, forms = raw.data, {}, _loss_forms(raw.data, command)
    for path, ref in _references(data):
        with collector.catch(path):
            fn = load_callable(ref, raw.base_dir, dotted(path))
            if path[-1] == "builder":
                ok = _check_call(collector, path, ref, fn, (), get(data, path[0], "params"))
            elif path[0] == "loss" and forms == [("model",)] and takes_batch(fn):
                # a train spec's loss, given to minimize: say what to change
                collector.add(path, batch_loss_advice(ref, isinstance(data.get("data"), dict)))
                ok = False
            elif path[0] == "loss":
                ok = all(_check_call(collector, path, ref, fn, form, None) for form in forms)
            else:  # a constraint: per batch under minimize.data, else of the model alone
                args = ("model", "batch") if path[:2] == ("minimize", "data") else ("model",)
                ok = _check_call(collector, path, ref, fn, args, None)
            if ok:
                good[path] = fn
    return good


def check_method(raw: RawSpec, collector: Collector) -> None:
    """The scipy method (or ipopt) and its options: the spec names them, so no model is needed.

    Each option is tried on its own first, so that each problem is placed at
    its key; then all together (scipy is the judge either way).
    """
    minimize = raw.data.get("minimize")
    if not isinstance(minimize, dict):
        return
    method = spec_method(minimize)
    if not isinstance(method, str):
        return  # the schema stage reports it
    if is_ipopt(method):  # IPOPT's own options; a missing extra is raised, not collected
        for path, message in ipopt_problems(minimize.get("options"), minimize.get("tol")):
            collector.add(path, message)
        return
    try:
        name = method_name(method)
    except InvalidArgumentError as error:
        collector.add(("minimize", "method"), str(error))
        return
    if (said := hessian_in_a_spec(method, name)) is not None:
        collector.add(("minimize", "method"), said)
        return
    options = minimize.get("options")
    if name is None or not isinstance(options, dict):
        return
    with collector.catch(("minimize", "options")):
        given = tnc_maxiter(options) if name == "tnc" else options  # TNC: TF1's maxiter is maxfun
        known = option_names(method)
        placed_one = False
        for key, value in given.items():
            try:
                check_options(method, name, {key: value})
            except InvalidArgumentError as error:
                message = str(error)
                if known and key not in known:  # a misspelt name: this key's closest, in the spec's words
                    message = f"{method} has no option {key!r}; {suggest(key, known, 'option')}"
                collector.add(("minimize", "options", key), message)
                placed_one = True
        if not placed_one:
            check_options(method, name, given)


def before_building(loaded: LoadedSpec, command: str) -> None:
    """:func:`check_references` for ``command`` (train or minimize), and for minimize with a scipy
    method :func:`check_method`, on a loaded spec before a run builds anything (see
    :func:`check_found`; IPOPT's options are checked where its interface is built).

    Raises:
        ConfigError: the problems found.
    """
    checks: list[Callable[[RawSpec, Collector], object]] = [
        functools.partial(check_references, command=command)
    ]
    minimize = loaded.spec.minimize
    if command == "minimize" and not is_ipopt(minimize.method if minimize else None):
        checks.append(check_method)
    check_found(loaded, *checks)


def check_optimizer(raw: RawSpec, collector: Collector) -> None:
    """The optimizer's name and arguments: no model needed."""
    optimizer = get(raw.data, "train", "optimizer")
    if not isinstance(optimizer, dict):
        return
    try:  # the name and args alone: each wrapper is checked against the model by check_names
        spec = OptimizerSpec.model_validate({**optimizer, "wrappers": []})
    except ValidationError:  # the schema stage reported it; the name is still checked on its own
        try:
            spec = OptimizerSpec.model_validate({"name": optimizer.get("name", "SGD")})
        except ValidationError:
            return
    with collector.catch(("train", "optimizer")):
        build_optimizer(spec, [])


def check_names(raw: RawSpec, variables: list[Any], collector: Collector) -> None:
    """Clipping wrappers' and bounds' variable names against the model."""
    optimizer = get(raw.data, "train", "optimizer")
    if isinstance(optimizer, dict):
        wrappers = optimizer.get("wrappers")
        for i, item in enumerate(wrappers if isinstance(wrappers, list) else []):
            try:
                wrapper = VariableClippingSpec.model_validate(item)
            except ValidationError:
                continue  # another kind, or reported by the schema stage
            path = ("train", "optimizer", "wrappers", i)
            with collector.catch(path):
                clipped_variables(wrapper, variables, dotted(path))
    check_bounds(raw, variables, collector)


def check_bounds(raw: RawSpec, variables: list[Any], collector: Collector) -> None:
    """Each bounds key names one variable, and its ``low`` and ``high`` fit that variable's shape
    and leave it room; the scipy options whose shape follows the number of variables (Nelder-Mead's
    initial_simplex, ...) fit it, which :func:`check_method` cannot know: each problem at its key."""
    bounds = get(raw.data, "minimize", "constraints", "bounds")
    layout = Layout.of(variables)
    _check_sizes(raw, sum(layout.sizes), collector)
    for key, given in bounds.items() if isinstance(bounds, dict) else ():
        path = ("minimize", "constraints", "bounds", key)
        try:  # the spec's forms ({low, high} or [low, high]), as the run reads them
            pair = ConstraintsSpec.model_validate({"bounds": {key: given}}).bounds[key]
        except ValidationError:
            pair = None  # the schema stage reports it; the name is still checked
        with collector.catch(path):
            try:
                aligned = resolve_var_keyed({key: pair}, variables, argument=dotted(path))
            except OptrunError as error:  # "minimize.constraints.bounds.w names 'w', which ..."
                raise naming(error, dotted(path)) from None
            if pair is not None:
                pack_bounds([(b.low, b.high) if b is not None else None for b in aligned], layout)


def _check_sizes(raw: RawSpec, size: int, collector: Collector) -> None:
    """The scipy options whose shape follows the number of variables against ``size``, each at its key."""
    options = get(raw.data, "minimize", "options")
    try:  # options in a mapping: so is minimize
        name = method_name(spec_method(raw.data["minimize"])) if isinstance(options, dict) else None
    except InvalidArgumentError:
        return  # ipopt, or check_method reports it
    for key in SIZED.get(name or "", {}):
        with collector.catch(("minimize", "options", key)):
            check_sizes(str(name), {key: options.get(key)}, size)


def check_found(loaded: LoadedSpec, *checks: Callable[[RawSpec, Collector], object]) -> None:
    """Runs ``checks`` on a loaded spec, as ``optrun validate`` runs them on a raw one, and raises
    what they found, each problem at its key or ``(from --set)``.

    Raises:
        ConfigError: the problems found.
    """
    data = loaded.spec.model_dump()  # Python's values: JSON's mode turns an option's inf into None
    if isinstance(data["loss"], dict) and "ref" in data["loss"] and ("loss", "ref") not in loaded.lines:
        data["loss"] = data["loss"]["ref"]  # written `loss: file.py:fn`: placed at loss, as validate does
    raw = RawSpec(data, loaded.base_dir, loaded.source, loaded.lines, loaded.overridden)
    collector = Collector(raw)
    for check in checks:
        check(raw, collector)
    if collector.problems:
        raise ConfigError(loaded.source, collector.sorted())
