"""The experiment spec: pydantic v2 models of the YAML file ``optrun`` runs.

No TensorFlow here: ``optrun validate --help`` and ``optrun schema`` must be
instant. Every model forbids unknown keys and unions are discriminated by
``kind``, so every mistake is reported with its path.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, cast

from pydantic import Field, ModelWrapValidatorHandler, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from optrun.spec.base import NAME_PATTERN, Ref, Strict
from optrun.spec.minimize import MinimizeSpec
from optrun.spec.run_layout import NAME_MAX, RESERVED
from optrun.spec.strategy import DefaultStrategySpec, StrategySpec
from optrun.spec.sweep import SweepSpec


class ModelSpec(Strict):
    """What holds the variables: a Keras model, a ``tf.Module``, or a list/dict of variables."""

    builder: Ref = Field(description="Called as builder(**params); returns the model or variables.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the builder.")


class DataSpec(Strict):
    """Training data: the builder returns a ``tf.data.Dataset`` or an iterable of batches."""

    builder: Ref = Field(description="Called as builder(**params); returns batches, e.g. (x, y) pairs.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the builder.")
    global_batch_size: int | None = Field(
        None,
        gt=0,
        description="Rows in each batch the builder yields: the global batch, which a strategy splits "
        "across its replicas. With a strategy other than default it may be left out when the dataset's "
        "batch dimension is static (.batch(n, drop_remainder=True)); checked on the first batch.",
    )


class KerasLoss(Strict):
    """A Keras loss by name, applied as ``loss(y, model(x, training=True))`` to ``(x, y)`` batches."""

    kind: Literal["keras"] = Field("keras", description="A Keras loss (the default when 'name' is given).")
    name: str = Field(description="e.g. 'mse', 'mae', 'sparse_categorical_crossentropy'.")
    args: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments, e.g. from_logits.")


class CallableLoss(Strict):
    """A loss in the user module: ``fn(model, batch)`` for train, ``fn(model)`` for minimize."""

    kind: Literal["callable"] = Field("callable", description="A function (the default when 'ref' is given).")
    ref: Ref


LossSpec = Annotated[KerasLoss | CallableLoss, Field(discriminator="kind")]


class MovingAverageSpec(Strict):
    """``MovingAverageOptimizer``'s arguments."""

    kind: Literal["moving_average"] = Field(description="Keeps an exponential moving average of the weights.")
    average_decay: float = Field(0.9999, ge=0.0, le=1.0, description="The decay d: avg -= (1 - d) (avg - w).")
    num_updates: Literal["iterations"] | None = Field(
        None, description="'iterations' uses the optimizer's step count: d = min(decay, (1+n)/(10+n))."
    )
    sequential_update: bool = Field(
        True, description="Average the weights after each update (true) or beside it (false)."
    )


class VariableClippingSpec(Strict):
    """``VariableClippingOptimizer``'s arguments; variables by Keras path/name or 're:<regex>'."""

    kind: Literal["variable_clipping"] = Field(
        description="Clips listed weights to a max L2 norm after each update."
    )
    vars: list[str] = Field(min_length=1, description="Paths ('dense/kernel'), names, or 're:.*kernel'.")
    dims: list[int] = Field(min_length=1, description="Dims of the norm, as in tf.clip_by_norm.")
    max_norm: float = Field(gt=0, description="The L2 norm to clip to.")
    use_locking: bool = Field(
        False, description="Accepted for TF1 compatibility; resource variables need no lock."
    )
    colocate_clip_ops_with_vars: bool = Field(
        False, description="Compute each clip on its variable's device."
    )

    @field_validator("vars")
    @classmethod
    def _regexes_compile(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.startswith("re:"):
                try:
                    re.compile(item[3:])
                except re.error as error:
                    raise ValueError(f"bad regex {item[3:]!r}: {error}") from None
        return value


WrapperSpec = Annotated[MovingAverageSpec | VariableClippingSpec, Field(discriminator="kind")]


class OptimizerSpec(Strict):
    """A Keras optimizer by name, wrapped in list order (the first wraps the optimizer itself)."""

    name: str = Field("SGD", description="Any keras.optimizers class name: SGD, Adam, RMSprop, ...")
    args: dict[str, Any] = Field(default_factory=dict, description="e.g. {learning_rate: 0.1, momentum: 0.9}")
    wrappers: list[WrapperSpec] = Field(
        default_factory=list, description="In order: the first wraps the optimizer, the next wraps that."
    )

    @field_validator("args")
    @classmethod
    def _positive_learning_rate(cls, args: dict[str, Any]) -> dict[str, Any]:
        # Keras takes any number (a negative rate ascends); a schedule (a mapping) is Keras' to check.
        rate = args.get("learning_rate")
        if isinstance(rate, (int, float)) and not isinstance(rate, bool) and not rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {rate}")
        return args


class TrainSpec(Strict):
    """Gradient training."""

    optimizer: OptimizerSpec = Field(
        default_factory=OptimizerSpec, description="A Keras optimizer by name, and optrun's wrappers."
    )
    max_steps: int | None = Field(None, gt=0, description="Stop after this many steps.")
    epochs: int | None = Field(None, gt=0, description="Passes over the data (when max_steps is unset).")
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop",
        description="NaN/Inf loss: 'stop' ends the run (exit 1); 'skip' drops that update (a run "
        "whose last half or more of updates were all skipped ends diverged).",
    )
    on_data_end: Literal["error", "stop"] = Field(
        "error",
        description="Data that runs out before max_steps or epochs: 'error' ends the run with status "
        "data_exhausted (exit 1); 'stop' ends it there as completed.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _has_a_length(cls, data: Any, handler: ModelWrapValidatorHandler[TrainSpec]) -> TrainSpec:
        # Said beside the fields' own problems too (an after-validator would not run then), so that
        # validate lists every problem in one pass.
        lengthless = isinstance(data, dict) and data.get("max_steps") is None and data.get("epochs") is None
        missing: InitErrorDetails = {
            "type": PydanticCustomError("value_error", "set train.max_steps or train.epochs"),
            "loc": (),
            "input": data,
        }
        try:
            spec = handler(data)
        except ValidationError as error:
            found = cast(list[InitErrorDetails], error.errors(include_url=False))
            if not lengthless or any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in found):
                raise  # an unknown key in train may be the length misspelled: it is said already
            raise ValidationError.from_exception_data(error.title, [*found, missing]) from None
        if lengthless:
            raise ValidationError.from_exception_data(cls.__name__, [missing])
        return spec


#: Seconds between checkpoints when the spec gives neither ``every_steps`` nor ``every_seconds``.
AUTO_SECONDS = 600.0


class CheckpointSpec(Strict):
    """Checkpoint policy."""

    every_steps: int | None = Field(
        None,
        gt=0,
        description="Checkpoint interval in training steps or minimize iterations (a run killed "
        "outright resumes from the last one); null: not by steps.",
    )
    every_seconds: float | Literal["auto"] | None = Field(
        "auto",
        description="Also checkpoint once this many seconds (> 0) have passed since the last "
        "checkpoint, checked between steps or iterations; 'auto': 600 when every_steps is null, else "
        "none; null: not by time. With neither, only at the end and on Ctrl-C or SIGTERM. A "
        "multi-worker train checkpoints by every_steps only, a multi-worker minimize only at its end.",
    )
    keep: int = Field(3, gt=0, description="How many training checkpoints to keep.")
    swap: bool = Field(True, description="Also write averaged weights under the original names.")
    export: Literal["auto", "none", "weights_h5", "saved_model"] = Field(
        "auto",
        description="Final (averaged) model, loadable without optrun. 'auto': weights_h5 for a Keras "
        "model, nothing otherwise.",
    )

    @field_validator("every_seconds")
    @classmethod
    def _a_positive_time(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float) and not (math.isfinite(value) and value > 0):
            raise ValueError(f"must be a number of seconds above 0, 'auto' or null; got {value!r}")
        return value

    @property
    def seconds(self) -> float | None:
        """The time between checkpoints ``every_seconds`` asks for; None: not by time."""
        if self.every_seconds == "auto":
            return AUTO_SECONDS if self.every_steps is None else None
        return self.every_seconds


class LoggingSpec(Strict):
    """Metrics and summaries."""

    every_steps: int = Field(10, gt=0, description="Log interval in steps or iterations.")
    tensorboard: bool = Field(True, description="Write TensorBoard summaries under tensorboard/.")
    metrics_file: str = Field("metrics.jsonl", description="Inside the run directory.")

    @field_validator("metrics_file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value.startswith("."):
            raise ValueError(
                f"metrics_file must be a plain file name inside the run directory (not hidden); got {value!r}"
            )
        if "\0" in value or len(value.encode("utf-8")) > NAME_MAX:
            what = "holds a NUL character" if "\0" in value else f"is longer than {NAME_MAX} bytes"
            raise ValueError(
                f"metrics_file {value[:40]!r}{'...' if len(value) > 40 else ''} {what}, which no file "
                "system takes; choose a name such as metrics.jsonl"
            )
        if value in RESERVED:
            raise ValueError(
                f"metrics_file {value!r} is a name optrun gives a file or folder of the run directory "
                f"({', '.join(sorted(RESERVED))}); choose another, e.g. metrics.jsonl"
            )
        return value


class ExperimentSpec(Strict):
    """One optrun experiment."""

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=100,
        description="Also the default run directory name (at most 100 characters).",
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1, description="Seeds Python, NumPy and TensorFlow; runs are deterministic."
    )
    model: ModelSpec = Field(description="What holds the variables, and how to build it.")
    data: DataSpec | None = Field(None, description="Training data (optrun train).")
    loss: LossSpec = Field(
        description="'mse' (a Keras loss), 'file.py:fn' (a callable), or a mapping with name or ref.",
        examples=["mse", "examples/pinn.py:residual_loss", {"name": "huber", "args": {"delta": 0.5}}],
    )
    train: TrainSpec | None = Field(None, description="Gradient training (optrun train).")
    minimize: MinimizeSpec | None = Field(None, description="scipy.optimize.minimize (optrun minimize).")
    checkpoint: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="When to checkpoint, how many to keep, what to export."
    )
    logging: LoggingSpec = Field(default_factory=LoggingSpec, description="Metrics file and TensorBoard.")
    strategy: StrategySpec = Field(
        default_factory=DefaultStrategySpec,
        description="tf.distribute strategy for optrun train: default (one device), mirrored or "
        "multi_worker; --strategy KIND overrides the kind.",
    )
    sweep: SweepSpec | None = Field(
        None, description="The search space and settings of optrun sweep; train and minimize ignore it."
    )

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_shorthand(cls, value: Any) -> Any:
        return loss_shorthand(value)


def loss_shorthand(value: Any) -> Any:
    """A spec's ``loss`` as written, with its ``kind`` made explicit: ``mse`` is a Keras loss,
    ``file.py:fn`` a callable (so are ``{name: ...}`` and ``{ref: ...}``); anything else as is."""
    if isinstance(value, str):
        return {"kind": "callable", "ref": value} if ":" in value else {"kind": "keras", "name": value}
    if isinstance(value, dict) and "kind" not in value:  # {name: huber, args: ...} / {ref: ...}
        if "ref" in value:
            return {"kind": "callable", **value}
        if "name" in value:
            return {"kind": "keras", **value}
    return value
