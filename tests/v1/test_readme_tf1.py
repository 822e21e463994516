"""The README's "From tf.contrib.opt to optrun" example runs as written (in the current graph mode)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tensorflow as tf

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_tf1_example_runs() -> None:
    section = README.split("## From `tf.contrib.opt` to optrun")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    # The mode switch is the process's (conftest sets it); the loss goes to a list instead of print.
    source = code.group(1).replace("tf.compat.v1.disable_v2_behavior()", "pass")
    source = source.replace("loss_callback=print", "loss_callback=seen.append")
    seen: list[Any] = []
    with tf.Graph().as_default():
        exec(compile(source, "README.md", "exec"), {"seen": seen})
    assert seen and abs(float(seen[-1])) < 1e-10  # w reaches 2, where the loss is 0
