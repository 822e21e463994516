"""The exponential moving average's step and its arguments, written once for both worlds::

d     = min(average_decay, (1 + n) / (10 + n))   if num_updates n is given,
        average_decay                             otherwise;
avg  <- avg - (avg - var) * (1 - d)      (d and 1 - d in float32, as TF1)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import tensorflow as tf

from optrun.errors import InvalidArgumentError, InvalidTypeError


def ema_decay(average_decay: Any, num_updates: Any = None) -> tf.Tensor:
    """``min(average_decay, (1 + n) / (10 + n))``, or ``average_decay`` when ``n`` is None.

    In float32, as TF1's ``ExponentialMovingAverage`` formed it (``n`` cast to float32), so
    the averages are TF1's numbers: with 0.9999, ``1 - d`` is 1.0001659e-4, not 1e-4.
    """
    if isinstance(average_decay, numbers.Real):
        decay = tf.constant(float(average_decay), tf.float32)
    else:  # a graph tensor or variable, in its own dtype, as TF1 took it
        decay = tf.convert_to_tensor(average_decay)
    if num_updates is None:
        return decay
    n = tf.cast(tf.convert_to_tensor(num_updates), decay.dtype)
    return tf.minimum(decay, (1.0 + n) / (10.0 + n))


def ema_delta(average: Any, value: Any, decay: Any, widen_half: bool = True) -> tf.Tensor:
    """What to subtract from the average: ``(avg - value) * (1 - d)``, in the average's dtype.

    ``1 - d`` is formed in ``d``'s float32 and then cast, as TF1 did (cast first, in float16
    0.9999 would round to 1 and the average never move). With ``widen_half`` half-precision
    averages are updated in float32; without it in their own dtype, as TF1's
    ``assign_moving_average`` did (graph mode, for TF1's numbers).
    """
    average = tf.convert_to_tensor(average)
    half = average.dtype in (tf.float16, tf.bfloat16)
    work = tf.float32 if half and widen_half else average.dtype
    rate = tf.cast(1.0 - decay, work)
    delta = (tf.cast(average, work) - tf.cast(value, work)) * rate
    return tf.cast(delta, average.dtype)


def check_average_args(average_decay: Any, num_updates: Any) -> float:
    """Validates ``average_decay`` and ``num_updates`` (both worlds); returns the decay as a float."""
    decay = check_decay(average_decay)
    check_num_updates(num_updates)
    return decay


def check_decay(average_decay: Any) -> float:
    """``average_decay`` as a float; raises unless it is a number in [0, 1]."""
    if isinstance(average_decay, bool) or not isinstance(average_decay, numbers.Real):
        raise InvalidTypeError(f"average_decay must be a number in [0, 1]; got {average_decay!r}")
    if not 0.0 <= float(average_decay) <= 1.0:
        raise InvalidArgumentError(f"average_decay must be in [0, 1]; got {average_decay}")
    return float(average_decay)


def check_num_updates(num_updates: Any) -> None:
    """Raises unless ``num_updates`` is None, an int >= 0, or a numeric variable or tensor (cast
    to float32, as TF1 did; ``opt.iterations`` is the usual one)."""
    dtype = getattr(num_updates, "dtype", None)
    try:
        numeric = dtype is not None and (tf.as_dtype(dtype).is_integer or tf.as_dtype(dtype).is_floating)
    except TypeError:  # a NumPy array's dtype TF has no name for
        numeric = False
    whole = isinstance(num_updates, numbers.Integral) and not isinstance(num_updates, (bool, np.bool_))
    if num_updates is not None and not (whole or numeric):
        raise InvalidTypeError(
            "num_updates must be None, an int, or an integer variable/tensor such as "
            f"opt.iterations; got {num_updates!r:.60}"
        )
    if isinstance(num_updates, numbers.Integral) and num_updates < 0:
        raise InvalidArgumentError(f"num_updates must be >= 0; got {num_updates}")
