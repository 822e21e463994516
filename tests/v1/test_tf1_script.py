"""A TF1-style research script end to end: examples/tf1_pinn.py (placeholders, a session, Adam,
then L-BFGS-B through optrun), judged against the exact solution u = sin(pi x)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tf1_pinn.py"


def test_tf1_pinn_script_reaches_its_bounds() -> None:
    spec = importlib.util.spec_from_file_location("tf1_pinn", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main()
    assert result["loss"] < module.LOSS_BOUND  # 1e-4
    assert result["max_error"] < module.ERROR_BOUND  # 1e-3, against sin(pi x) computed by numpy
    assert result["evaluations"] > 10  # the loss_callback saw the L-BFGS-B phase
