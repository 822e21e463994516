"""Graph-mode tests run under one of TF's three graph-mode setups.

``OPTRUN_TF1_MODE`` picks it for the whole process (``make test`` runs all three):

* ``graph`` (default): eager stays on; each test builds in ``with tf.Graph().as_default()``;
* ``v1``: ``tf.compat.v1.disable_v2_behavior()``, so ``tf.compat.v1.Variable`` is a ref variable;
* ``no_eager``: ``tf.compat.v1.disable_eager_execution()`` alone (resource variables).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from optrun_cli.startup import import_tensorflow

# pytest's own process loads this file too: TensorFlow's native start-up lines (written before
# its log level applies) would reach `make test`'s output, as they never reach a user's.
import_tensorflow(verbose=False)
import tensorflow as tf  # noqa: E402 - imported quietly just above

tf.get_logger().setLevel("ERROR")  # disable_v2_behavior's own deprecation notice
MODE = os.environ.get("OPTRUN_TF1_MODE", "graph")
if MODE == "v1":
    tf.compat.v1.disable_v2_behavior()
elif MODE == "no_eager":
    tf.compat.v1.disable_eager_execution()
elif MODE != "graph":
    raise ValueError(f"OPTRUN_TF1_MODE must be graph, v1 or no_eager; got {MODE!r}")


@pytest.fixture(params=[False, True], ids=["ref", "resource"])
def use_resource(request: pytest.FixtureRequest) -> bool:
    """Each graph test runs with reference variables and with resource variables."""
    return bool(request.param)


@pytest.fixture
def sess() -> Iterator[Any]:
    """A fresh graph, default for the test, and a default session on it."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        yield session
