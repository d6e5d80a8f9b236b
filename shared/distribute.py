"""Which tf.distribute strategy a training job uses, from the config's `distribution` key and `TF_CONFIG`.

`distribution`:
- `auto` (default): MultiWorkerMirroredStrategy when `TF_CONFIG` describes a cluster of more than one worker
  (Kubeflow's TFJob, Vertex AI, SageMaker, Slurm scripts and `dlsuite train --workers N` set it), else none.
- `none`: one process, the default device placement, whatever `TF_CONFIG` says.
- `mirrored`: MirroredStrategy over this host's devices (its GPUs, or its logical CPU devices).
- `multi_worker`: MultiWorkerMirroredStrategy; `TF_CONFIG` must describe the cluster.

`plan()` reads and checks everything without TensorFlow (a bad `TF_CONFIG` is a `UsageError` before any run
opens); `Plan.start()` creates the strategy. Collective ops are configured once per process, so the strategy is
created at program start, before any other TensorFlow op.
"""

import contextlib
import dataclasses
import json
import os
import typing

from shared.errors import UsageError

DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")
# How long a worker waits for every other worker of its cluster to join before it gives up (seconds).
CLUSTER_TIMEOUT_VARIABLE = "DLSUITE_CLUSTER_TIMEOUT"
DEFAULT_CLUSTER_TIMEOUT = 120


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A `TF_CONFIG`: every task's address by job ("chief", "worker") and this process's task."""

    jobs: typing.Dict[str, typing.Tuple[str, ...]]
    task_type: str
    task_index: int

    @property
    def num_workers(self):
        return sum(len(addresses) for job, addresses in self.jobs.items() if job in ("chief", "worker"))

    @property
    def is_chief(self):
        """The chief job's task, or worker 0 when there is no chief job (TensorFlow's rule)."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def address(self):
        return self.jobs[self.task_type][self.task_index]


def read_tf_config(text):
    """The `Cluster` a `TF_CONFIG` value describes; None for an empty value. Raises UsageError when malformed."""
    if not text or not text.strip():
        return None
    fix = ('Expected JSON like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
           '"task": {"type": "worker", "index": 0}}. Fix: set TF_CONFIG to that form, or unset it.')
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"TF_CONFIG is not valid JSON ({error}). Received: TF_CONFIG={text!r}. {fix}") from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
            isinstance(addresses, list) and addresses and all(isinstance(a, str) and ":" in a for a in addresses)
            for addresses in cluster.values()):
        raise UsageError(f"TF_CONFIG has no valid \"cluster\" (a map of job name to a list of host:port). "
                         f"Received: TF_CONFIG={text!r}. {fix}")
    task = value.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UsageError(f"TF_CONFIG has no \"task\" with a \"type\" and an \"index\": each process must say which "
                         f"task of the cluster it is. Received: TF_CONFIG={text!r}. {fix}")
    task_type, index = task["type"], task["index"]
    if task_type not in cluster:
        raise UsageError(f"TF_CONFIG's task type is not a job of its cluster. Received: task type {task_type!r}, "
                         f"jobs {sorted(cluster)}. Expected one of {sorted(cluster)}. Fix: the task's \"type\".")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task_type]):
        raise UsageError(f"TF_CONFIG's task index is out of range. Received: index={index!r} for job "
                         f"{task_type!r} of {len(cluster[task_type])} tasks. Expected an integer in "
                         f"[0, {len(cluster[task_type]) - 1}]. Fix: the task's \"index\".")
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise UsageError(f"TF_CONFIG names jobs MultiWorkerMirroredStrategy does not use. Received: jobs {unknown}. "
                         "Expected only \"chief\" (at most one task) and \"worker\". Fix: drop those jobs "
                         "(parameter servers are ParameterServerStrategy's, which dlsuite does not use).")
    if len(cluster.get("chief", [])) > 1:
        raise UsageError(f"TF_CONFIG has more than one chief. Received: chief={cluster['chief']}. Expected one. "
                         "Fix: list the other addresses under \"worker\".")
    return Cluster({job: tuple(addresses) for job, addresses in cluster.items()}, task_type, index)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The strategy a job will use: `kind` is "none", "mirrored" or "multi_worker"; `cluster` the TF_CONFIG."""

    kind: str
    cluster: typing.Optional[Cluster] = None

    @property
    def is_chief(self):
        """Whether this process logs to MLflow and exports (every single-process job does)."""
        return self.cluster is None or self.kind != "multi_worker" or self.cluster.is_chief


    def start(self):
        """Create the strategy (None for "none"). Call it before any other TensorFlow op of the process."""
        if self.kind == "none":
            return None
        import tensorflow as tf

        from shared import multi_worker_fix

        multi_worker_fix.apply()
        if self.kind == "mirrored":  # the GPUs, else every logical CPU device (MirroredStrategy's own default: one)
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            return tf.distribute.MirroredStrategy([device.name for device in devices])
        os.environ["TF_CONFIG"] = json.dumps({"cluster": {job: list(addresses) for job, addresses in
                                                          self.cluster.jobs.items()},
                                              "task": {"type": self.cluster.task_type,
                                                       "index": self.cluster.task_index}})
        return _join_cluster(tf, self.cluster)


def plan(distribution="auto", environ=None):
    """The `Plan` for a config's `distribution` and the environment's `TF_CONFIG` (UsageError if they disagree)."""
    environ = os.environ if environ is None else environ
    if distribution not in DISTRIBUTIONS:
        raise UsageError(f"Unknown distribution. Received: distribution={distribution!r}. "
                         f"Expected one of: {', '.join(DISTRIBUTIONS)}.")
    cluster = read_tf_config(environ.get("TF_CONFIG", ""))
    if distribution == "auto":
        distribution = "multi_worker" if cluster is not None and cluster.num_workers > 1 else "none"
    if distribution == "multi_worker" and cluster is None:
        raise UsageError("distribution=multi_worker needs the cluster in TF_CONFIG. Received: TF_CONFIG unset. "
                         "Fix: set TF_CONFIG on every worker (see the README), or start local workers with "
                         "`dlsuite train ... --workers N`.")
    return Plan(distribution, cluster if distribution == "multi_worker" else None)


def tags(job):
    """What the run records about its strategy and cluster (tags: a resumed job may have another cluster)."""
    workers = job.cluster.num_workers if job.kind == "multi_worker" else 1
    strategy = {"none": "none", "mirrored": "MirroredStrategy", "multi_worker": "MultiWorkerMirroredStrategy"}
    return {"dlsuite.distribution": job.kind, "dlsuite.distribution.strategy": strategy[job.kind],
            "dlsuite.distribution.workers": str(workers)}


def check_task(runner, job, name):
    """Refuse (UsageError) a distributed job of a task that cannot train under a strategy (`Task.cannot_distribute`)."""
    reason = getattr(runner, "cannot_distribute", None)
    if job.kind != "none" and reason:
        how = ("TF_CONFIG with several workers or --workers" if job.kind == "multi_worker"
               else "distribution=mirrored")
        raise UsageError(f"{name} cannot train under a tf.distribute strategy: {reason} Received: {how}. "
                         f"Expected one process. Fix: drop --workers, unset TF_CONFIG, or --set distribution=none.")


def cluster_timeout(environ=None):
    """Seconds a worker waits for the others to join (`$DLSUITE_CLUSTER_TIMEOUT`, default 120)."""
    text = (os.environ if environ is None else environ).get(CLUSTER_TIMEOUT_VARIABLE, "")
    try:
        seconds = float(text) if text else DEFAULT_CLUSTER_TIMEOUT
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise UsageError(f"Invalid {CLUSTER_TIMEOUT_VARIABLE}. Received: {text!r}. Expected a positive number of "
                         f"seconds. Fix: export {CLUSTER_TIMEOUT_VARIABLE}={DEFAULT_CLUSTER_TIMEOUT}.")
    return seconds


def _join_cluster(tf, cluster):
    """MultiWorkerMirroredStrategy once every worker is up (`shared.rendezvous`: a UsageError after
    `cluster_timeout()` seconds instead of the constructor's endless wait). In training, the coordination
    service's heartbeats end the other workers with an error when one is lost."""
    from shared import rendezvous

    rendezvous.wait_for_peers(cluster, cluster_timeout(), CLUSTER_TIMEOUT_VARIABLE)
    return tf.distribute.MultiWorkerMirroredStrategy()


def shard_data(data, strategy):
    """`data` (a `shared.app.Data`) with its training and validation datasets sharded by DATA under a strategy."""
    if strategy is not None:
        data.train, data.validation = shard_by_data(data.train), shard_by_data(data.validation)
    return data


def shard_by_data(dataset):
    """`dataset` with auto-sharding by DATA: every worker reads the same input and keeps its part of each global
    batch, so N workers with global batch B see the batches one process with batch B sees (in-memory datasets
    have no files to shard by)."""
    if not hasattr(dataset, "with_options"):  # None, or not a tf.data.Dataset
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def scope(strategy):
    """The strategy's scope, or nothing."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def build_model(runner, config, data, strategy):
    """The task's model, its variables mirrored on every replica, its batch norm over the global batch.

    Batch normalization normalizes by the statistics of the batch it sees; under a strategy each replica sees
    its share of the global batch, so by default N replicas would train another model than one process with the
    same global batch. Synchronized batch norm all-reduces the per-channel sums (one small all-reduce per layer
    and step) and trains the same model."""
    import keras

    with scope(strategy):
        model = runner.build_model(config, data)
    if strategy is not None:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True
    return model


def barrier(strategy):
    """Wait until every worker gets here (a non-chief worker stays up until the chief has logged and exported:
    a worker that leaves early is reported as crashed by the others' coordination service)."""
    if strategy is None or not hasattr(strategy.extended, "_in_multi_worker_mode"):
        return
    if strategy.extended._in_multi_worker_mode():
        import tensorflow as tf

        strategy.reduce("SUM", strategy.run(lambda: tf.ones([])), axis=None)
