"""The shared base of optrun's Keras 3 optimizer wrappers.

A wrapper is a ``keras.optimizers.Optimizer`` (so ``model.compile`` takes it)
that owns an inner optimizer. It overrides only public API: ``build``,
``apply``/``apply_gradients``, ``variables``, ``learning_rate``,
``iterations``, the clipping and weight-decay attributes and
``exclude_from_weight_decay`` (all the inner optimizer's),
``finalize_variable_values`` and ``get_config``; it keeps
its own variables (created with the public ``add_variable_from_reference``,
so a ``tf.distribute`` strategy scope mirrors them) and delegates the rest.
It adds the TF1-style ``minimize``, ``compute_gradients``, ``get_slot``,
``get_slot_names`` and ``get_name``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError


def _public_base(cls: type) -> str:
    return next((c.__name__ for c in cls.__mro__ if "V1_CLASS" in c.__dict__), "wrapper")


def slot_prefix(var: Any) -> str:
    """The prefix Keras gives slot variables created from ``var``."""
    path = getattr(var, "path", None)
    if isinstance(path, str):
        return path.replace("/", "_") + "_"
    return str(var.name).replace("/", "_").replace(":", "_") + "_"


def _v1_class(cls: type) -> type | None:
    """The graph-mode class a wrapper's name stands for, given a ``tf.compat.v1`` optimizer."""
    where = getattr(cls, "V1_CLASS", "")
    if not where:
        return None
    module, name = where.rsplit(".", 1)
    found: type = getattr(importlib.import_module(module), name)
    return found


class _BothWorlds(type):
    """``isinstance(x, optrun.MovingAverageOptimizer)`` holds for what that name returns in
    either world (TF1 code checks it), though the graph-mode object is of another class."""

    def __instancecheck__(cls, instance: Any) -> bool:
        if type.__instancecheck__(cls, instance):
            return True
        v1 = _v1_class(cls) if "V1_CLASS" in cls.__dict__ else None  # the public class itself
        return v1 is not None and isinstance(instance, v1)


class _Inner:
    """An attribute of the inner optimizer, read and written through the wrapper (its own would
    be unused: the inner optimizer applies every update). Keras' ``__init__`` sets it before there
    is an inner optimizer; that value is kept aside."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        inner = obj.__dict__.get("inner_optimizer")
        return getattr(inner, self.name) if inner is not None else obj.__dict__.get("_own_" + self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        inner = obj.__dict__.get("inner_optimizer")
        if inner is None:
            obj.__dict__["_own_" + self.name] = value
        else:
            setattr(inner, self.name, value)


class WrapperOptimizer(keras.optimizers.Optimizer, metaclass=_BothWorlds):
    """Base class: a Keras optimizer that wraps another one.

    Subclasses implement :meth:`_wrapped_apply`, which must call
    ``self.inner_optimizer.apply(grads, variables)`` once.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """One name for both worlds: a ``tf.compat.v1.train.Optimizer`` gets the graph-mode class."""
        opt = args[0] if args else kwargs.get("opt")
        v1 = _v1_class(cls) if isinstance(opt, tf.compat.v1.train.Optimizer) else None
        if v1 is not None:
            if "V1_CLASS" not in cls.__dict__:  # a user's subclass: its code is for the Keras class
                raise InvalidTypeError(
                    f"{cls.__name__} subclasses the Keras {_public_base(cls)}, but was given a "
                    f"tf.compat.v1 optimizer ({type(opt).__name__}); for graph-mode code, "
                    f"subclass {v1.__module__}.{v1.__name__} instead (TF1's methods and arguments)."
                )
            return v1(*args, **kwargs)
        return super().__new__(cls)

    #: Where the ``tf.compat.v1.train.Optimizer`` counterpart of this wrapper lives (set on each
    #: public wrapper class, and only there).
    V1_CLASS = ""

    def __init__(self, opt: keras.optimizers.Optimizer, name: str) -> None:
        if not isinstance(opt, keras.optimizers.Optimizer):
            raise InvalidTypeError(
                f"{type(self).__name__} wraps a keras.optimizers.Optimizer (e.g. "
                "keras.optimizers.SGD(0.1)) or a tf.compat.v1.train.Optimizer (e.g. "
                f"tf.compat.v1.train.GradientDescentOptimizer(0.1)); got {type(opt).__name__}: {opt!r:.60}"
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = opt

    # ----- public Keras API -------------------------------------------------
    weight_decay = _Inner()
    clipnorm = _Inner()
    global_clipnorm = _Inner()
    clipvalue = _Inner()

    def exclude_from_weight_decay(self, var_list: Any = None, var_names: Any = None) -> None:
        """Excludes variables from the inner optimizer's weight decay (it applies the decay)."""
        self.inner_optimizer.exclude_from_weight_decay(var_list=var_list, var_names=var_names)

    def build(self, var_list: Sequence[Any]) -> None:
        """Builds the inner optimizer, then this wrapper's own state."""
        var_list = list(var_list)
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        self._build_own(var_list)
        super().build(var_list)

    def _build_own(self, var_list: list[Any]) -> None:
        """Creates the wrapper's own variables (none by default)."""

    @property
    def variables(self) -> list[Any]:
        """This wrapper's variables, then the inner optimizer's."""
        return self._variables[:] + list(self.inner_optimizer.variables)

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> None:
        """Applies ``grads`` through the inner optimizer, with this wrapper's work around it."""
        grads = list(grads)
        if trainable_variables is None:
            if not self.built:
                raise InvalidArgumentError(
                    f"{type(self).__name__}.apply got gradients without variables before being "
                    "built; pass trainable_variables or call build(variables) first."
                )
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise InvalidArgumentError(
                f"got {len(grads)} gradients for {len(trainable_variables)} variables; "
                "pass one gradient (or None) per variable."
            )
        if not self.built:
            self.build(trainable_variables)
        self._wrapped_apply(grads, trainable_variables)

    def apply_gradients(self, grads_and_vars: Any) -> tf.Variable:
        """Keras' ``apply_gradients``; returns the inner optimizer's iteration counter."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs, strict=True)
            self.apply(list(grads), list(variables))
        return self.iterations

    def _wrapped_apply(self, grads: list[Any], variables: list[Any]) -> None:
        raise NotImplementedError

    @property
    def learning_rate(self) -> Any:
        """The inner optimizer's learning rate."""
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self.inner_optimizer.learning_rate = value

    @property
    def iterations(self) -> Any:
        """The inner optimizer's step counter."""
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        """Delegates to the inner optimizer (called by ``model.fit`` at the end)."""
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self) -> dict[str, Any]:
        """Serializable config, with the inner optimizer nested."""
        return {
            "name": self.name,
            "opt": keras.saving.serialize_keras_object(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Any:
        """Rebuilds from :meth:`get_config`."""
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("opt"), custom_objects=custom_objects)
        return cls(inner, **cls._arguments(config, inner))

    @classmethod
    def _arguments(cls, config: dict[str, Any], inner: Any) -> dict[str, Any]:
        """The constructor's keywords from a saved config, once the inner optimizer is rebuilt."""
        return config

    # ----- TF1-style API ------------------------------------------------------
    def compute_gradients(
        self, loss: Callable[[], Any] | Any, var_list: Sequence[Any], tape: tf.GradientTape | None = None
    ) -> list[tuple[Any, Any]]:
        """``(gradient, variable)`` pairs; a gradient is None where the loss ignores the variable.

        Args:
            loss: a zero-argument callable, or a tensor computed under ``tape``.
            var_list: the variables to differentiate with respect to.
            tape: the tape that recorded ``loss`` when ``loss`` is a tensor.
        """
        var_list = list(var_list)
        if callable(loss):
            with tf.GradientTape() as own_tape:
                value = loss()
            grads = own_tape.gradient(value, var_list)
        elif tape is None:
            raise InvalidArgumentError(
                "compute_gradients got a tensor loss without its tape; pass tape=... or make "
                "the loss a zero-argument callable."
            )
        else:
            grads = tape.gradient(loss, var_list)
        return list(zip(grads, var_list, strict=True))

    def minimize(
        self, loss: Callable[[], Any] | Any, var_list: Sequence[Any], tape: tf.GradientTape | None = None
    ) -> None:
        """Computes gradients of ``loss`` and applies them (Keras 2's signature)."""
        self.apply_gradients(self.compute_gradients(loss, var_list, tape))

    def get_slot(self, var: Any, name: str) -> Any:
        """The inner optimizer's slot ``name`` for ``var`` (e.g. ``"momentum"``), or None."""
        wanted = slot_prefix(var) + name
        for slot in self.inner_optimizer.variables:
            if slot.name == wanted:
                return slot
        return None

    def get_slot_names(self) -> list[str]:
        """Names of the slots the inner optimizer keeps per variable."""
        names: set[str] = set()
        prefixes = [slot_prefix(v) for v in getattr(self, "_trainable_variables", [])]
        for slot in self.inner_optimizer.variables:
            for prefix in prefixes:
                if slot.name.startswith(prefix):
                    names.add(slot.name[len(prefix) :])
        return sorted(names)

    def get_name(self) -> str:
        """The wrapper's name."""
        return str(self.name)

    def __dir__(self) -> list[str]:
        # tf.train.Checkpoint treats any object whose dir() lists get_slot_names as a TF1
        # optimizer and saves its slots a second time (and refuses: the inner Keras
        # optimizer already tracks them). The methods stay callable; they are just not
        # advertised to that protocol.
        return [name for name in super().__dir__() if name != "get_slot_names"]
