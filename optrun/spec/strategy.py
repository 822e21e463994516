"""The ``strategy`` section of the spec: which ``tf.distribute`` strategy ``optrun train`` uses.

No TensorFlow here (see :mod:`optrun.spec.experiment`): the strategy itself is made by
:mod:`optrun.scale.strategy`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from optrun.spec.base import Strict

#: 'GPU:0', '/gpu:0', '/device:GPU:0', '/job:localhost/replica:0/task:0/device:GPU:0'.
DEVICE_PATTERN = (
    r"^(/job:[A-Za-z0-9_-]+(/replica:[0-9]+)?(/task:[0-9]+)?)?/?(device:)?(CPU|GPU|TPU|cpu|gpu|tpu):[0-9]+$"
)


class DefaultStrategySpec(Strict):
    """No ``tf.distribute`` strategy: one device, as without the section."""

    kind: Literal["default"] = Field("default", description="One device (TensorFlow's default strategy).")


class MirroredStrategySpec(Strict):
    """``tf.distribute.MirroredStrategy``: one process, a replica per device, gradients all-reduced."""

    kind: Literal["mirrored"] = Field(description="Synchronous data parallelism over local devices.")
    devices: list[Annotated[str, Field(json_schema_extra={"pattern": DEVICE_PATTERN})]] | None = Field(
        None,
        min_length=1,
        description="Devices to mirror over, e.g. ['GPU:0', 'GPU:1']; null: every visible GPU, else the CPU.",
    )
    logical_cpus: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Split the CPU into N logical devices and mirror over them (to test on one machine); "
        "set before TensorFlow starts.",
    )

    @field_validator("devices")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        bad = [d for d in value or [] if not re.fullmatch(DEVICE_PATTERN, d)]
        if bad:
            raise ValueError(
                f"{bad} {'is not a device name' if len(bad) == 1 else 'are not device names'}; "
                "write e.g. 'GPU:0', '/gpu:1' or '/job:localhost/replica:0/task:0/device:CPU:0'"
            )
        canonical = [device_key(d) for d in value or []]
        twice = sorted({d for d, c in zip(value or [], canonical, strict=True) if canonical.count(c) > 1})
        if twice:
            raise ValueError(f"each device may be listed once; {twice} name the same device twice")
        return value


class MultiWorkerStrategySpec(Strict):
    """``tf.distribute.MultiWorkerMirroredStrategy``: the cluster and this task come from ``TF_CONFIG``."""

    kind: Literal["multi_worker"] = Field(
        description="Synchronous data parallelism over several hosts, configured by TF_CONFIG."
    )
    heartbeat_timeout_s: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="A worker that sends no heartbeat for this long is taken as dead: every other "
        "worker's run then fails with a message, instead of waiting for it.",
    )
    startup_timeout_s: float = Field(
        120.0,
        gt=0,
        le=86400,
        description="How long a worker waits at start for every worker of TF_CONFIG's cluster to join.",
    )


StrategySpec = Annotated[
    DefaultStrategySpec | MirroredStrategySpec | MultiWorkerStrategySpec, Field(discriminator="kind")
]


def device_key(name: str) -> str:
    """``'/job:localhost/replica:0/task:0/device:GPU:1'`` or ``'gpu:1'`` -> ``'GPU:1'``."""
    kind, _, index = name.rsplit("/", 1)[-1].removeprefix("device:").partition(":")
    return f"{kind.upper()}:{index}"
