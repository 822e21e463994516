"""The shared base of optrun's ``tf.compat.v1.train.Optimizer`` wrappers (TF1 graph mode).

The graph-mode counterpart of :mod:`optrun.wrappers.base`: a wrapper is itself a
``tf.compat.v1.train.Optimizer``, so it goes wherever one goes. It delegates
``compute_gradients`` to the wrapped optimizer's own method (a subclass that
overrides it sees it called), implements ``apply_gradients``, and answers
``get_slot``/``get_slot_names``/``variables`` with its own slots and the
wrapped optimizer's. ``minimize`` is the base class's: ``compute_gradients``
then ``apply_gradients``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from optrun.errors import InvalidTypeError


class WrapperOptimizerV1(tf.compat.v1.train.Optimizer):
    """Base class: a ``tf.compat.v1.train.Optimizer`` that wraps another one."""

    def __init__(self, opt: Any, name: str, use_locking: bool = False) -> None:
        if not isinstance(opt, tf.compat.v1.train.Optimizer):
            raise InvalidTypeError(
                f"{type(self).__name__} wraps a tf.compat.v1.train.Optimizer; got "
                f"{type(opt).__name__}: {opt!r:.60}"
            )
        super().__init__(use_locking=use_locking, name=name)
        self._opt = opt

    @property
    def inner_optimizer(self) -> Any:
        """The wrapped optimizer."""
        return self._opt

    def _check_graph_mode(self) -> None:
        """Refuses eager execution: the updates are graph ops (``var.op``, slots keyed by op name),
        as TF1's were; eager code takes the Keras form of the same wrapper."""
        if tf.executing_eagerly():
            public = type(self).__name__.removesuffix("V1")
            raise InvalidTypeError(
                f"{public} was given a tf.compat.v1.train optimizer ({type(self._opt).__name__}), whose "
                f"updates are graph ops, but TensorFlow is running eagerly. In TF2 code wrap a Keras "
                f"optimizer: optrun.{public}(keras.optimizers.SGD(0.1), ...); for TF1 code, call "
                "tf.compat.v1.disable_eager_execution() first, or build under tf.Graph().as_default()."
            )

    def compute_gradients(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped optimizer's ``compute_gradients``."""
        return self._opt.compute_gradients(*args, **kwargs)

    def get_slot(self, var: Any, name: str) -> Any:
        """This wrapper's slot ``name`` for ``var``, else the wrapped optimizer's (e.g. ``"momentum"``)."""
        own = super().get_slot(var, name)
        return own if own is not None else self._opt.get_slot(var, name)

    def get_slot_names(self) -> list[str]:
        """The wrapper's slot names and the wrapped optimizer's."""
        return sorted(set(super().get_slot_names()) | set(self._opt.get_slot_names()))

    def variables(self) -> list[Any]:
        """The wrapper's variables, then the wrapped optimizer's."""
        return list(super().variables()) + list(self._opt.variables())
