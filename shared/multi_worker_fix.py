"""The one workaround for `model.fit` under MultiWorkerMirroredStrategy on the Keras versions that break it.

keras-team/keras#20585 (also ray-project/ray#47464): with Keras 3 on TensorFlow, `model.fit` under
`tf.distribute.MultiWorkerMirroredStrategy` with more than one worker fails in two places of
`keras/src/backend/tensorflow/trainer.py`:

1. `TensorFlowTrainer._maybe_symbolic_build` builds the model from the first batch by cross-reducing the
   per-replica batch over the workers (`strategy.reduce("MEAN", batch)`): a collective all-reduce of the
   input batch (uint8 pixels, string tokens...) that only exists to learn its shapes, and it fails
   ("Attempt to convert a value (PerReplica...)"). Fix: build from the input's `element_spec` (the build
   reads only shapes and dtypes): no collective, and no batch read. Reading one also starts a pass over the
   dataset, so a reshuffling `tf.data` pipeline trains epoch 1 on its second order, not the order one
   process sees; this is why the fix covers MirroredStrategy too (`shared.distribute` applies it for both).
2. `reduce_per_replica` reduces every log with `strategy.reduce("MEAN", value, axis=0)` in multi-worker mode;
   the logs (loss, metrics) are scalars, which have no axis 0. Fix: `axis=None` (the mean over replicas, what
   the single-host path computes) for scalar values; everything else goes to Keras' own function unchanged.

`apply()` installs both when `shared.distribute` creates a strategy, only on the Keras versions checked to
need it (`NEEDED_ON`); the second acts only in multi-worker mode. `tests/test_distribute_fix.py` runs
`model.fit` under two workers without the fix and expects the known failure: when upstream fixes it, that
test fails and says to delete this module.
"""

import keras

NEEDED_ON = ((3, 0), (3, 15))  # first and last (major, minor) Keras version checked to need the fix


def needed(version=None):
    """Whether this Keras version is one the fix is for."""
    major, minor = (int(part) for part in (version or keras.__version__).split(".")[:2])
    return NEEDED_ON[0] <= (major, minor) <= NEEDED_ON[1]


def apply():
    """Patch the TF trainer (idempotent). Returns whether the fix is installed."""
    if not needed():
        return False
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "dlsuite_fix", False):
        return True
    trainer.reduce_per_replica = _scalar_logs_reduced_over_replicas(trainer.reduce_per_replica, trainer)
    trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_input_spec(
        trainer.TensorFlowTrainer._maybe_symbolic_build)
    return True


def _scalar_logs_reduced_over_replicas(reduce_per_replica, trainer):
    import tensorflow as tf

    def fixed(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
            return reduce_per_replica(values, strategy, reduction)

        def reduce(value):  # a PerReplica, or a plain tensor when each worker has one replica
            local = value.values[0] if isinstance(value, tf.distribute.DistributedValues) else value
            if tf.is_tensor(local) and local.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return reduce_per_replica(value, strategy, reduction)

        return tf.nest.map_structure(reduce, values)

    fixed.dlsuite_fix = True
    return fixed


def _build_from_input_spec(maybe_symbolic_build):
    def fixed(self, iterator=None, data_batch=None):
        if iterator is None or self._distribute_strategy is None:
            return maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)
        # The build reads only shapes and dtypes (`Trainer._symbolic_build` makes KerasTensors of them).
        return maybe_symbolic_build(self, iterator=None, data_batch=iterator.data_adapter.get_tf_dataset().element_spec)

    return fixed
