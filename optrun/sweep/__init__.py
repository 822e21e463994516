"""``optrun sweep``: searching a spec's settings with Optuna, each trial an ordinary run directory.

* :mod:`~optrun.sweep.space` the search space (``--param`` flags and the spec's ``sweep:``
  section, parsed by :mod:`optrun.spec.sweep`) as Optuna distributions and ``--set`` overrides;
* :mod:`~optrun.sweep.check` every value checked against the spec's own model before any trial;
* :mod:`~optrun.sweep.plan` the sweep resolved from the spec and the flags;
* :mod:`~optrun.sweep.study` the storage, sampler and pruner;
* :mod:`~optrun.sweep.sweepdir` the sweep directory (marker, worker locks, trial folders);
* :mod:`~optrun.sweep.trial` and :mod:`~optrun.sweep.pruning` one trial, run in a worker process;
* :mod:`~optrun.sweep.pool` the worker processes, :mod:`~optrun.sweep.driver` the loop;
* :mod:`~optrun.sweep.objective` and :mod:`~optrun.sweep.results` scores, ranking and importances.

Optuna is an optional dependency (the sweep extra), imported only when a
sweep runs or is read; TensorFlow only in the worker processes.
"""
