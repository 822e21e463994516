"""Making the ``tf.distribute`` strategy a spec's ``strategy`` section asks for.

* ``default``: no strategy; training runs on one device, as it always has.
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the listed devices,
  the logical CPUs asked for, or every visible GPU (else the CPU).
* ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``; the
  cluster and this worker's task come from ``TF_CONFIG``, checked here first.

Logical CPUs and collective ops are process-wide settings that TensorFlow
fixes when it initializes its devices: :func:`make_strategy` must run before
anything else touches TensorFlow's devices, and says so when it is too late.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from optrun.errors import ConfigError, Problem, RunError, first_line
from optrun.spec.strategy import MirroredStrategySpec, MultiWorkerStrategySpec, StrategySpec, device_key

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
)


@dataclass(frozen=True)
class Plan:
    """The strategy a run uses: ``strategy`` is None for the default (no strategy)."""

    kind: str
    strategy: tf.distribute.Strategy | None = None
    is_chief: bool = True
    task: str = "chief"  # this process's TF_CONFIG task, e.g. "worker:1"
    chief_task: str = ""  # the task that writes the run directory, e.g. "worker:0" ('' for no cluster)

    @property
    def replicas(self) -> int:
        """Replicas in sync: 1 without a strategy."""
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """The strategy's scope (variables created in it are mirrored); nothing for the default."""
        if self.strategy is None:
            yield
            return
        with self.strategy.scope():
            yield


def make_strategy(spec: StrategySpec, source: str = "strategy") -> Plan:
    """The strategy ``spec`` asks for.

    Raises:
        ConfigError: a listed device is not visible.
        RunError: logical CPUs asked for after TensorFlow initialized its devices;
            TF_CONFIG missing or malformed for multi_worker.
    """
    if isinstance(spec, MirroredStrategySpec):
        return Plan("mirrored", tf.distribute.MirroredStrategy(mirrored_devices(spec, source)))
    if isinstance(spec, MultiWorkerStrategySpec):
        return _multi_worker(spec, read_tf_config(os.environ.get("TF_CONFIG")))
    return Plan("default")


def _multi_worker(spec: MultiWorkerStrategySpec, config: dict[str, Any]) -> Plan:
    """Joins the cluster: bounded waits for the other workers at start and while running."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    try:
        _configure_coordination(resolver.cluster_spec(), spec)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    except tf.errors.OpError as error:
        raise RunError(
            f"strategy.kind multi_worker: not every worker of TF_CONFIG's cluster ({_workers(config)} tasks) "
            f"joined within strategy.startup_timeout_s ({spec.startup_timeout_s:g} s): "
            f"{_reason(error)}. Start the same command on every worker of the cluster (each with "
            "its own TF_CONFIG task), check that each host:port is reachable, or raise the timeout."
        ) from None
    except (RuntimeError, ValueError) as error:
        raise RunError(
            f"strategy.kind multi_worker: TensorFlow refused to start the worker: {error}. "
            "The strategy must be created before TensorFlow runs anything: run `optrun train` "
            "in a fresh process on each worker."
        ) from None
    task = f"{config['task']['type']}:{config['task']['index']}"
    return Plan("multi_worker", strategy, is_chief(config), task, chief_task(config))


def _configure_coordination(cluster: Any, spec: MultiWorkerStrategySpec) -> None:
    """TensorFlow's coordination service with optrun's timeouts (before the strategy starts it).

    The heartbeat timeout bounds how long a worker waits for a dead or frozen peer; the
    registration timeout bounds the start, when a worker never comes. The start barrier
    (a field the public call does not set) makes that bound hold on the first worker too,
    which hosts the service; without it, that worker would wait forever.
    """
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    try:
        from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    except ImportError:  # older TensorFlow: the strategy's own settings (heartbeat, no start bound)
        return
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
        for job in ("chief", "worker")
        if job in cluster.jobs
    ]
    ctx = context.context()
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster),
        enable_health_check=True,
        cluster_register_timeout_in_ms=int(spec.startup_timeout_s * 1000),
        heartbeat_timeout_in_ms=int(spec.heartbeat_timeout_s * 1000),
        shutdown_barrier_timeout_in_ms=10_000,
        coordinated_jobs=jobs,
    )
    config = getattr(ctx, "_coordination_service_config", None)
    if config is not None and hasattr(config, "cluster_register_with_barrier"):
        config.cluster_register_with_barrier = True


#: How a collective fails when a peer dies or stops answering.
PEER_FAILURES: tuple[type[BaseException], ...] = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
)


def peer_failure(plan: Plan, error: BaseException, checkpoints: str) -> str | None:
    """For a multi_worker run that failed because another worker died or froze, what to say."""
    if plan.kind != "multi_worker" or not isinstance(error, PEER_FAILURES):
        return None
    return (
        f"multi_worker: another worker of the cluster died or stopped answering, so {plan.task} "
        f"stopped too (TensorFlow: {type(error).__name__}: {_reason(error)}). {checkpoints} "
        "Restart every worker with --resume to go on."
    )


def configure_logical_cpus(count: int) -> None:
    """Splits the first CPU into ``count`` logical devices (a no-op when it already is).

    Raises:
        RunError: TensorFlow already initialized its devices with another count.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have == count:
            return
        raise RunError.at(
            "strategy.logical_cpus",
            f"{count} logical CPUs asked for, but TensorFlow has already initialized its devices in "
            f"this process ({have} logical CPU{'s' if have != 1 else ''}); they can only be set before "
            "TensorFlow runs anything. Run `optrun train` in a fresh process, or in Python call "
            "optrun.scale.strategy.configure_logical_cpus(n) first thing.",
        ) from None


def mirrored_devices(spec: MirroredStrategySpec, source: str = "strategy") -> list[str] | None:
    """The devices to mirror over (None: MirroredStrategy's own choice, every visible GPU or the CPU).

    Raises:
        ConfigError: a listed device is not among the visible ones.
        RunError: see :func:`configure_logical_cpus`.
    """
    if spec.logical_cpus is not None:
        configure_logical_cpus(spec.logical_cpus)
    visible = {device_key(d.name): d.name for d in tf.config.list_logical_devices()}
    if spec.devices is None:
        if spec.logical_cpus is None:
            return None
        return [name for key, name in visible.items() if key.startswith("CPU:")]
    missing = [d for d in spec.devices if device_key(d) not in visible]
    if missing:
        known = ", ".join(sorted(visible)) or "none"
        message = (
            f"{missing} {'is' if len(missing) == 1 else 'are'} not visible to TensorFlow; visible "
            f"devices: {known}. List visible devices, or split the CPU: strategy.devices null and "
            "strategy.logical_cpus N (--set strategy.devices=null --set strategy.logical_cpus=2)."
        )
        raise ConfigError(source, [Problem("strategy.devices", message)])
    return [visible[device_key(d)] for d in spec.devices]


def read_tf_config(text: str | None) -> dict[str, Any]:
    """``TF_CONFIG`` parsed and checked: a cluster of ``host:port`` lists and this task in it.

    Raises:
        RunError: unset, not JSON, or not a cluster and a task in it; the message says what to set.
    """
    how = f"Set TF_CONFIG on each worker, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (README: 'Scaling out')."
    if text is None or not text.strip():
        raise RunError(
            "strategy.kind multi_worker: the environment variable TF_CONFIG is not set; it names the "
            f"cluster and this worker's task. {how}"
        )
    try:
        config = json.loads(text)
    except ValueError as error:
        raise RunError(f"TF_CONFIG is not valid JSON ({error}): {text!r:.200}. {how}") from None
    problem = _tf_config_problem(config)
    if problem:
        raise RunError(f"TF_CONFIG {problem}: {text!r:.200}. {how}")
    return dict(config)


def _tf_config_problem(config: Any) -> str | None:
    if not isinstance(config, Mapping):
        return f"must be a JSON object with 'cluster' and 'task'; got a {type(config).__name__}"
    cluster = config.get("cluster")
    if not isinstance(cluster, Mapping) or not cluster:
        return "has no 'cluster' object (job name -> list of 'host:port')"
    for job, addresses in cluster.items():
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses)
        ):
            return f"cluster.{job} must be a non-empty list of 'host:port' strings; got {addresses!r}"
    return _task_problem(config.get("task"), cluster)


def _task_problem(task: Any, cluster: Mapping[str, Any]) -> str | None:
    if not isinstance(task, Mapping):
        return "has no 'task' object ({'type': 'worker', 'index': N})"
    kind, index = task.get("type"), task.get("index")
    if not isinstance(kind, str) or kind not in cluster:
        return f"task.type {kind!r} is not a job of the cluster ({', '.join(map(str, cluster))})"
    count = len(cluster[kind])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
        return f"task.index must be 0..{count - 1} for the {count} {kind}s; got {index!r}"
    return None


def is_chief(config: Mapping[str, Any]) -> bool:
    """Whether this task writes the run directory: the chief, else worker 0 when there is no chief."""
    task = config["task"]
    if task["type"] == "chief":
        return True
    return "chief" not in config["cluster"] and task["type"] == "worker" and task["index"] == 0


def chief_task(config: Mapping[str, Any]) -> str:
    """The task :func:`is_chief` picks, as ``"chief:0"`` or ``"worker:0"``."""
    return "chief:0" if "chief" in config["cluster"] else "worker:0"


def _workers(config: Mapping[str, Any]) -> int:
    """Tasks of TF_CONFIG's cluster that train: its chief and workers."""
    return sum(len(v) for k, v in config["cluster"].items() if k in ("chief", "worker"))


def describe_plan(plan: Plan, global_batch: int | None, source: str | None = None) -> dict[str, Any]:
    """What ``optrun validate`` reports: the strategy, its replicas and the global batch.

    ``source`` says where the global batch came from (``global_batch_from``:
    ``data.global_batch_size``, or ``dataset`` for its static batch dimension).
    A multi_worker plan that was not started (validate starts no worker) counts
    its replicas from TF_CONFIG: workers times local GPUs (or 1).
    """
    if plan.kind == "multi_worker" and plan.strategy is None:
        config = read_tf_config(os.environ.get("TF_CONFIG"))
        replicas = _workers(config) * max(1, len(tf.config.list_physical_devices("GPU")))
    else:
        replicas = plan.replicas
    report: dict[str, Any] = {"strategy": plan.kind, "replicas": replicas, "global_batch": global_batch}
    if source is not None:
        report["global_batch_from"] = source
    if global_batch is not None:
        share, extra = divmod(global_batch, replicas)
        report["per_replica_batch"] = share if not extra else f"{share}-{share + 1}"
    return report


def _reason(error: BaseException) -> str:
    """The line of a TensorFlow collective error that says why, not where ("Graph execution error")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    keys = ("aborted by", "unhealthy", "timed out", "Deadline Exceeded", "Connection", "Socket closed")
    why = next((line for line in lines if any(key in line for key in keys)), None) or first_line(error)
    return re.sub(r"\{\{[^}]*\}\}\s*", "", why)[:300]  # drop TF's "{{function_node ...}}" prefix
