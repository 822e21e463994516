"""The ``tf.compat.v1`` graph backend of the external-optimizer interfaces.

* :mod:`optrun.graph.backend`: :class:`GraphBackend`, the ``read``/``assign``/``evaluator``
  seam over a ``Session`` (the reference path);
* :mod:`optrun.graph.cut`: the evaluated subgraph cut out into a TF2 function;
* :mod:`optrun.graph.fastpath`: which function serves, checked against the session first.
"""

from optrun.graph.backend import GraphBackend

__all__ = ["GraphBackend"]
