"""The ``tf.compat.v1`` graph backend of the external-optimizer interfaces.

* :mod:`optrun.evaluation.graph.backend`: :class:`GraphBackend`, the ``read``/``assign``/``evaluator``
  seam over a ``Session`` (the reference path);
* :mod:`optrun.evaluation.graph.cut`: the evaluated subgraph cut out into a TF2 function;
* :mod:`optrun.evaluation.graph.fastpath`: which function serves, checked against the session first.
"""

from optrun.evaluation.graph.backend import GraphBackend

__all__ = ["GraphBackend"]
