"""What a ``--resume`` must keep: the run's seed, model, data, loss, optimizer or method and
constraints and metrics file, read from the ``config.yaml`` the run wrote; limits, the rest of
logging, the checkpoint policy and the strategy may change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from optrun.errors import RunError, first_line
from optrun.interfaces.method_options import spec_method
from optrun.runner.rundir import KIND_MARK
from optrun.spec.experiment import CheckpointSpec
from optrun.spec.load import LoadedSpec
from optrun.spec.run_layout import CHECKPOINTS

RESUME_KEYS = ("seed", "model", "data", "loss")
# The metrics file holds the run's history, which a resume cuts back to its checkpoint and goes on.
RESUME_SUBKEYS = {
    "train": ("optimizer",),
    "minimize": ("method", "constraints", "data"),
    "logging": ("metrics_file",),
}


def nothing_to_resume(out: Path) -> RunError:
    """The refusal of a run with no checkpoint, and why it has none: stopped before its first
    periodic checkpoint, or (with none asked for) before the one at its end."""
    try:
        text = (out / "config.yaml").read_text(encoding="utf-8")
        saved = yaml.safe_load(text)
        kind, unit = (
            saved["strategy"]["kind"],
            "iterations" if text.startswith(f"{KIND_MARK} minimize") else "steps",
        )
        policy = CheckpointSpec.model_validate({"every_seconds": None, **saved["checkpoint"]})  # older: none
        due = _due(policy.every_steps, None if kind == "multi_worker" else policy.seconds, unit)
    except Exception:  # noqa: BLE001 - no readable config.yaml: the spec's checkpoints are unknown
        due, kind, unit = None, None, "steps"
    if unit == "iterations" and kind == "multi_worker":  # its periodic saves would be collective
        return RunError(
            f"--resume: {out} has no checkpoints to resume from: a multi-worker minimize checkpoints "
            "only at its end and on Ctrl-C or SIGTERM, and this one was stopped before either. Start "
            "it again with --force."
        )
    if due:
        return RunError(
            f"--resume: {out} has no checkpoints to resume from (the run stopped before its first, "
            f"due {due}); start it again with --force."
        )
    knob = "checkpoint.every_steps" if kind == "multi_worker" else "checkpoint.every_seconds or every_steps"
    return RunError(
        f"--resume: {out} has no checkpoints to resume from (the run ended before writing one); "
        f"start it again with --force, and set {knob} to checkpoint as it goes."
    )


def _due(every_steps: int | None, seconds: float | None, unit: str) -> str | None:
    """When the run's first periodic checkpoint was due, in words; None: it asked for none."""
    said = [f"every {every_steps} {unit}"] if every_steps else []
    said += [f"after {seconds:g} s"] if seconds else []
    return " or ".join(said) or None


def _compared(section: dict[str, Any], key: str) -> Any:
    """``section[key]`` as a resume compares it. A method name in any case is one method (scipy's
    and IPOPT's names are case-insensitive), and none is the one the interface then chose."""
    value = spec_method(section) if key == "method" else section.get(key)
    return value.lower() if isinstance(value, str) else value


def check_resumable(out: Path, kind: str, loaded: LoadedSpec) -> None:
    """Refuses a ``--resume`` of ``out`` whose run cannot go on under ``loaded``.

    Raises:
        RunError: no checkpoints, a missing or damaged ``config.yaml``, another kind of run, or a
            spec that differs from the run's where a resume must keep it.
    """
    if not (out / CHECKPOINTS).is_dir():
        raise nothing_to_resume(out)
    saved_file = out / "config.yaml"
    text, saved, why = "", None, "not the spec optrun wrote"
    try:
        text = saved_file.read_text(encoding="utf-8")
        saved = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        why = first_line(error)
    if not isinstance(saved, dict) or not text.startswith(KIND_MARK):
        raise RunError(
            f"--resume: {saved_file} is missing or damaged ({why}); --resume checks the spec against it. "
            "Put back the run's config.yaml, or start the run again with --force."
        )
    was = text.split("\n", 1)[0].removeprefix(KIND_MARK).strip()
    if was != kind:
        raise RunError(f"--resume: {out} holds a {was} run, not a {kind} run; choose another --out.")
    now = loaded.spec.model_dump(mode="json")
    changed = [key for key in RESUME_KEYS if _kept(saved, key) != _kept(now, key)]
    for section, keys in RESUME_SUBKEYS.items():
        old, new = saved.get(section) or {}, now.get(section) or {}
        changed += [f"{section}.{key}" for key in keys if _compared(old, key) != _compared(new, key)]
    if "minimize.method" in changed:
        was = _compared(saved.get("minimize") or {}, "method")
        changed[changed.index("minimize.method")] += f" (the run's: {was})"
    if changed:
        seed = (
            f" (the run used seed {saved.get('seed')}: pass --seed {saved.get('seed')})"
            if "seed" in changed
            else ""
        )
        raise RunError(
            f"--resume: the spec differs from the run in {out} at {', '.join(changed)}{seed}; resume with "
            "the same spec (limits such as train.max_steps, logging but for its metrics_file, the "
            "checkpoint policy and the strategy, with data.global_batch_size, may change)."
        )


def _kept(spec: dict[str, Any], key: str) -> Any:
    """What a resume must keep of ``spec[key]``: ``data`` less ``global_batch_size``, which only
    states the batches' size (a strategy needs it; moving to one on resume may add it)."""
    value = spec.get(key)
    if key == "data" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "global_batch_size"}
    return value
