"""The ``sweep:`` section of a spec, and the search-space syntax ``optrun sweep`` reads.

A parameter is a field of the spec, by the dotted path a ``--set`` takes
(``train.optimizer.args.learning_rate``), and its values:

* ``float:LOW..HIGH`` (uniform), ``float:LOW..HIGH:STEP`` (a grid of that step),
  ``log:LOW..HIGH`` (log-uniform, LOW > 0);
* ``int:LOW..HIGH`` (whole numbers, both ends included), ``int:LOW..HIGH:STEP``,
  ``logint:LOW..HIGH`` (log-uniform whole numbers, LOW >= 1);
* ``choice:A,B,C`` (two or more values, each read as YAML: ``1`` a number, ``true`` a
  boolean, ``Adam`` a string), or, in the spec, a YAML list ``[SGD, Adam]``.

:func:`parse_space` checks the syntax only (ranges that are empty, a log range
through zero, unknown kinds); whether each value fits its field is checked
against the spec's own model by :mod:`optrun.sweep.check`. No TensorFlow and
no Optuna here: ``optrun validate`` and ``optrun schema`` read this section too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from optrun.spec.base import Strict
from optrun.spec.yaml_lines import load_yaml
from optrun.suggest import suggest

RANGE_KINDS = ("float", "log", "int", "logint")
KINDS = (*RANGE_KINDS, "choice")
#: The largest grid ``sampler: grid`` enumerates.
MAX_GRID = 10_000
SYNTAX = "KIND:LOW..HIGH (KIND: float, log, int, logint; float and int take :STEP) or choice:A,B,..."
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Space:
    """The values one parameter may take: a range (``low``, ``high``, ``step``) or ``choices``."""

    kind: str
    text: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    choices: tuple[Scalar, ...] = field(default_factory=tuple)

    @property
    def log(self) -> bool:
        """Whether the range is sampled on a log scale."""
        return self.kind in ("log", "logint")

    @property
    def integer(self) -> bool:
        """Whether the values are whole numbers."""
        return self.kind in ("int", "logint")

    def grid(self) -> list[Scalar] | None:
        """Every value, when there are finitely many (choices, whole numbers, a float step); else None."""
        if self.kind == "choice":
            return list(self.choices)
        if self.low is None or self.high is None or (not self.integer and self.step is None):
            return None
        step = self.step or 1
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        if count > MAX_GRID:
            return None
        values = [self.low + i * step for i in range(count)]
        return [int(v) for v in values] if self.integer else [round(float(v), 12) for v in values]

    def probes(self) -> list[Scalar]:
        """The values checked against the spec's model before a trial runs: the ends, and for a
        float range a point inside that is not a whole number (so an int field refuses it)."""
        if self.kind == "choice":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.integer:
            return [int(self.low), int(self.high)]
        low, high = float(self.low), float(self.high)
        inside = math.exp(math.log(low) + 0.382 * (math.log(high) - math.log(low))) if self.log else None
        inside = inside if inside is not None else low + 0.382 * (high - low)
        if inside == int(inside):
            inside += 0.5 * (self.step or (high - low) / 7)
        return [low, min(inside, high), high]


def _number(text: str, whole: bool, what: str, spec: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{spec!r}: {what} {text!r} is not a number; expected {SYNTAX}") from None
    if not math.isfinite(value):
        raise ValueError(f"{spec!r}: {what} {text!r} is not a finite number")
    if whole:
        if value != int(value):
            raise ValueError(
                f"{spec!r}: {what} {text!r} is not a whole number; an int range takes whole numbers "
                "(float:LOW..HIGH for fractions)"
            )
        return int(value)
    return value


def _scalar(text: str) -> Scalar:
    try:
        value = load_yaml(text) if text.strip() else None
    except Exception:  # noqa: BLE001 - any YAML error: the text is kept as a string
        return text
    if isinstance(value, (dict, list)):
        return text
    return value


def _range(kind: str, body: str, text: str) -> Space:
    low_text, dots, rest = body.partition("..")
    if not dots:
        raise ValueError(f"{text!r}: expected {kind}:LOW..HIGH; got no '..'")
    high_text, colon, step_text = rest.partition(":")
    whole = kind in ("int", "logint")
    low = _number(low_text.strip(), whole, "LOW", text)
    high = _number(high_text.strip(), whole, "HIGH", text)
    step = None
    if colon:
        if kind in ("log", "logint"):
            raise ValueError(f"{text!r}: a log range takes no step; use {kind}:{low_text}..{high_text}")
        step = _number(step_text.strip(), whole, "STEP", text)
        if step <= 0:
            raise ValueError(f"{text!r}: the step must be > 0; got {step_text.strip()}")
    if not low < high:
        raise ValueError(
            f"{text!r}: the range is empty or a single value (LOW must be < HIGH; got "
            f"{low_text}..{high_text}); give LOW < HIGH, or fix the value with --set"
        )
    if kind in ("log", "logint") and low <= 0:
        floor = "1" if kind == "logint" else "a small positive LOW such as 1e-6"
        raise ValueError(
            f"{text!r}: a log range must stay above zero (LOW > 0; got {low_text}); use {floor}, "
            f"or {'int' if kind == 'logint' else 'float'}:{low_text}..{high_text} for a linear range"
        )
    if step is not None:
        count = (high - low) / step
        if abs(count - round(count)) > 1e-9:
            raise ValueError(f"{text!r}: HIGH - LOW ({high - low:g}) is not a multiple of the step {step:g}")
    return Space(kind, text, low, high, step)


def parse_space(value: Any) -> Space:
    """One parameter's values from their text (``log:1e-4..1e-1``) or a list of choices.

    Raises:
        ValueError: the syntax is wrong, a range is empty, or a log range reaches zero; the
            message echoes the value and says what to write instead.
    """
    if isinstance(value, list):
        return _choices(list(value), f"{value!r}")
    if not isinstance(value, str):
        raise ValueError(f"expected {SYNTAX}, or a list of choices; got {value!r}")
    text = value.strip()
    kind, colon, body = text.partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in KINDS:
        hint = f" ({suggest(kind, KINDS, 'kind')})" if colon else ""
        raise ValueError(f"{text!r}: expected {SYNTAX}{hint}")
    if kind == "choice":
        return _choices([_scalar(part.strip()) for part in body.split(",")], text)
    return _range(kind, body, text)


def _choices(values: list[Any], text: str) -> Space:
    if not values or values == [None]:
        raise ValueError(f"{text}: a choice needs two or more values, e.g. choice:SGD,Adam")
    if len(values) == 1:
        raise ValueError(
            f"{text}: a choice of one value searches nothing; give two or more (choice:A,B), "
            "or fix the value with --set"
        )
    for item in values:
        if not (item is None or isinstance(item, (str, int, float, bool))):
            raise ValueError(
                f"{text}: choices must be numbers, strings, true/false or null; got {item!r}. "
                "Search a list- or mapping-valued field through its items (e.g. wrappers.0.max_norm)"
            )
    seen: set[str] = set()
    for item in values:
        if repr(item) in seen:
            raise ValueError(f"{text}: a choice lists the value {item!r} twice; give each value once")
        seen.add(repr(item))
    return Space("choice", text, choices=tuple(values))


def _checked(value: Any) -> Any:
    parse_space(value)
    return value


ParamValue = Annotated[
    str | list[Any],
    AfterValidator(_checked),
    Field(
        description="The values to search: " + SYNTAX + "; or a YAML list of choices.",
        examples=["log:1e-4..1e-1", "int:16..128", "choice:SGD,Adam", ["L-BFGS-B", "SLSQP"]],
    ),
]


class SweepSpec(Strict):
    """What ``optrun sweep`` searches and how (``optrun train`` and ``minimize`` ignore it)."""

    params: dict[str, ParamValue] = Field(
        default_factory=dict,
        description="The search space: a field's dotted path (as --set takes it, e.g. "
        "train.optimizer.args.learning_rate) -> its values (log:1e-4..1e-1, int:16..128, "
        "choice:SGD,Adam). --param flags add to it.",
    )
    kind: Literal["train", "minimize"] | None = Field(
        None,
        description="What each trial runs; null: train when the spec has a train section, else minimize.",
    )
    trials: int | None = Field(
        None, gt=0, description="The study's trial budget (all workers together); --trials overrides."
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Start no trial after this many seconds of this sweep; --timeout overrides."
    )
    sampler: Literal["tpe", "random", "grid", "cmaes"] = Field(
        "tpe",
        description="Optuna's sampler: tpe, random, grid (every parameter finite) or cmaes (numeric ranges).",
    )
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stops unpromising training trials early, from the loss they log."
    )
    objective: str | None = Field(
        None,
        description="What a trial scores: final_loss (train's default), fun (minimize's), or a key of "
        "result.json or metrics.jsonl (its last value).",
    )
    direction: Literal["minimize", "maximize"] = Field(
        "minimize", description="Whether lower or higher wins."
    )
    jobs: int = Field(1, ge=1, le=256, description="Trials run at once on this machine, each in a process.")
    seed: int | None = Field(
        None,
        ge=0,
        description="Seeds the sampler; null: the spec's seed. Each trial runs with the spec's seed.",
    )

    @field_validator("params", mode="before")
    @classmethod
    def _dotted_keys(cls, value: Any) -> Any:
        """A mapping under a key is a dotted path split up (``--set sweep.params.a.b=...``)."""
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict) and inner:
                    path, leaf = str(key), inner
                    while isinstance(leaf, dict) and len(leaf) == 1:
                        ((sub, leaf),) = leaf.items()
                        path = f"{path}.{sub}"
                    raise ValueError(
                        f"{key!r} holds a mapping; params are keyed by the whole dotted path, as "
                        f"'{path}: {leaf}' (on the command line: --param {path}={leaf})"
                    )
        return value
