"""The ``minimize`` section of the spec: the scipy method (or ipopt), its options, constraints and bounds,
and the full-batch objective over the data.

No TensorFlow here (see :mod:`optrun.spec.experiment`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from optrun.spec.base import Bound, Ref, Strict


class BoundsSpec(Strict):
    """Lower and upper bound of one variable: a scalar, a list (element-wise) or null."""

    low: Bound = Field(None, description="Lower bound: a number, a list (element-wise) or null (none).")
    high: Bound = Field(None, description="Upper bound: a number, a list (element-wise) or null (none).")


class ConstraintsSpec(Strict):
    """Constraints for minimize; each callable is ``fn(model)`` returning a scalar."""

    equalities: list[Ref] = Field(default_factory=list, description="Each held == 0.")
    inequalities: list[Ref] = Field(default_factory=list, description="Each held >= 0.")
    bounds: dict[str, BoundsSpec] = Field(
        default_factory=dict, description="Variable name or path -> {low, high} or [low, high]."
    )

    @field_validator("bounds", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        # [low, high] is shorthand for {low: ..., high: ...}, so errors name low or high.
        if not isinstance(value, dict):
            return value
        out = {}
        for name, given in value.items():
            if isinstance(given, list) and len(given) != 2:
                raise ValueError(f"bounds of {name!r} must be a pair (low, high); got {given!r}")
            out[name] = {"low": given[0], "high": given[1]} if isinstance(given, list) else given
        return out


class FullBatchSpec(Strict):
    """The loss summed (or averaged) over every batch of ``data``, at every point."""

    reduction: Literal["sum", "mean"] = Field(
        "sum", description="'sum' over batches, or 'mean' (the sum over the number of batches)."
    )
    equalities: list[Ref] = Field(
        default_factory=list,
        description="Per-batch references fn(model, batch) -> scalar, each summed (or averaged) over "
        "every batch like the loss, and held == 0; after minimize.constraints.equalities.",
    )
    inequalities: list[Ref] = Field(
        default_factory=list,
        description="Per-batch references fn(model, batch) -> scalar, each summed (or averaged) over "
        "every batch like the loss, and held >= 0; after minimize.constraints.inequalities.",
    )


class MinimizeSpec(Strict):
    """``ScipyOptimizerInterface`` (or ``IpoptInterface``): method, options and constraints."""

    method: str | None = Field(
        None,
        description="scipy method, or ipopt (IPOPT; the ipopt extra); default L-BFGS-B, or SLSQP with "
        "constraints.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="scipy options, e.g. {maxiter: 500}; for ipopt, IPOPT's (maxiter is its max_iter).",
    )
    tol: float | None = Field(
        None, ge=0, description="scipy's tol: the method's default termination tolerance (0: none)."
    )
    jit_compile: bool | None = Field(
        None,
        description=(
            "XLA: null tiers the evaluation (plain first, XLA built in the background once the "
            "run can pay for it); true: XLA from the first point; false: never."
        ),
    )
    blas_threads: Literal["auto", "unlimited"] | Annotated[int, Field(ge=1)] = Field(
        "auto",
        description="BLAS threads while the optimizer runs: 'auto' (1, except SLSQP), a number (from "
        "the first evaluation), or 'unlimited'.",
    )
    compile_cache: str = Field(
        "auto",
        min_length=1,
        description="XLA's persistent compilation cache, reused by later runs and --resume: 'auto' "
        "($OPTRUN_CACHE_DIR/xla or ~/.cache/optrun/xla), 'none', or a directory (relative to the spec).",
        examples=["auto", "none", ".xla-cache"],
    )
    constraints: ConstraintsSpec = Field(
        default_factory=ConstraintsSpec, description="Equalities, inequalities and bounds."
    )
    data: FullBatchSpec | None = Field(
        None,
        description="Full-batch over the top-level data: the loss is written per batch (fn(model, batch), "
        "or a Keras loss on (x, y) batches) and summed or averaged over every batch at every point, "
        "batch by batch in compiled code, so the dataset may exceed one evaluation's memory.",
        examples=[{"reduction": "sum"}],
    )

    @field_validator("blas_threads", mode="before")
    @classmethod
    def _blas(cls, value: Any) -> Any:
        if value in ("auto", "unlimited") or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            return value
        raise ValueError(f"blas_threads must be 'auto', 'unlimited' or a whole number >= 1; got {value!r}")
