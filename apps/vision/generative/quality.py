"""Sample quality without Inception weights: FID and KID in the feature space of the suite's own classifier.

We cannot download Inception, so the features are the penultimate layer (the dense head, before the softmax)
of `vision/classification` trained on the same dataset: a run of the suite, loaded from MLflow by run id
(`load_classifier`, cached per process). With it:

    fid(a, b)                      Fréchet distance between Gaussians fitted to two feature sets
    kid(a, b)                      kernel inception distance: the unbiased MMD² with the cubic polynomial kernel
                                   k(x, y) = (x·y / d + 1)³, mean and standard deviation over random subsets
    Classifier.features(images)    uint8 images -> penultimate features (the plain image, no mirror average)
    Classifier.predict(images)     uint8 images -> class ids, as served (mirror average included)
    sample_quality(classifier, generated, reference, class_ids)
                                   FID, KID and, for class-conditional samples, the classifier's accuracy on them
                                   (overall and per class)
    real_vs_real(classifier, train_images, test_images)
                                   the yardstick on the same scale: FID/KID between training and test images
    pixel_features(images)         7x7 mean-pooled pixels: a cheap, classifier-free space for smoke evaluations

Numbers in different feature spaces are not comparable: report FID/KID with the classifier's run id, next to
the real-vs-real yardstick measured with the same classifier.
"""

import functools

import numpy as np

KID_SUBSET_SIZE = 1000
KID_SUBSETS = 50


# === Distances between feature sets ===


def fid(features_a, features_b):
    """Fréchet distance ‖μa − μb‖² + Tr(Ca + Cb − 2 (Ca Cb)^½) between Gaussians fitted to `[n, d]` feature sets.

    Tr((Ca Cb)^½) = Σ √λ(Ca^½ Cb Ca^½): the eigenvalues of a symmetric positive semi-definite matrix, stabler
    than a general matrix square root.
    """
    a, b = _features(features_a), _features(features_b)
    mean_gap = float(np.sum((a.mean(0) - b.mean(0)) ** 2))
    covariance_a, covariance_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _psd_sqrt(covariance_a)
    product = root_a @ covariance_b @ root_a
    cross = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None))))
    return max(0.0, mean_gap + float(np.trace(covariance_a) + np.trace(covariance_b)) - 2 * cross)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def kid(features_a, features_b, subset_size=KID_SUBSET_SIZE, subsets=KID_SUBSETS, seed=0):
    """`(mean, std)` of the unbiased MMD² between `[n, d]` feature sets with the kernel (x·y/d + 1)³, over
    `subsets` random subsets of `subset_size` rows of each (fewer rows: all of them)."""
    a, b = _features(features_a), _features(features_b)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 rows in each set. Received: {len(a)} and {len(b)} rows.")
    rng = np.random.default_rng(seed)
    estimates = [mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
                 for _ in range(subsets)]
    return float(np.mean(estimates)), float(np.std(estimates))


def mmd2_unbiased(a, b):
    """The unbiased MMD² estimate between two sets of rows with the cubic polynomial kernel."""
    dimension = a.shape[1]

    def kernel(x, y):
        k = x @ y.T / dimension + 1.0
        return k * k * k

    k_aa, k_bb, k_ab = kernel(a, a), kernel(b, b), kernel(a, b)
    m, n = len(a), len(b)
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                 - 2 * k_ab.mean())


def _features(features):
    array = np.asarray(features, np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"Expected features of shape [n >= 2, d]. Received: shape {array.shape}.")
    return array


def pixel_features(images, pool=4):
    """uint8 images `[n, 28, 28]` -> `[n, 49]` mean-pooled pixels in [0, 1] (4x4 blocks): a cheap feature space."""
    images = np.asarray(images, np.float64)[..., :28, :28] / 255.0
    count, height, width = images.shape[:3]
    return images.reshape(count, height // pool, pool, width // pool, pool).mean(axis=(2, 4)).reshape(count, -1)


# === The classifier's features ===


class Classifier:
    """A trained `vision/classification` model: its penultimate features and its predictions on uint8 images."""

    def __init__(self, model, run_id=None, batch_size=500):
        import keras

        self.model, self.run_id, self.batch_size = model, run_id, batch_size
        backbone = _backbone(model)
        self.class_count = int(backbone.output.shape[-1])
        self._features = keras.Model(backbone.input, backbone.get_layer("probabilities").input, name="features")

    def features(self, images):
        from apps.vision.generative.pixels import to_float

        images = np.asarray(images)
        outputs = [np.asarray(self._features(to_float(images[start:start + self.batch_size]), training=False))
                   for start in range(0, len(images), self.batch_size)]
        return np.concatenate(outputs).astype(np.float64)

    def probabilities(self, images):
        images = np.asarray(images)
        return np.concatenate([np.asarray(self.model(images[start:start + self.batch_size], training=False))
                               for start in range(0, len(images), self.batch_size)])

    def predict(self, images):
        return self.probabilities(images).argmax(-1)


def _backbone(model):
    """The CNN from pixels in [0, 1] to probabilities inside the classifier (inside MirrorAverage if any)."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if getattr(inner, "name", None) == "backbone":
            return inner
    raise ValueError(f"No 'backbone' model inside the classifier. Received: layers {[l.name for l in model.layers]}. "
                     "Expected a model of vision/classification (apps/vision/classification/models.py).")


@functools.lru_cache(maxsize=4)
def load_classifier(run_id):
    """The Keras model a `vision/classification` run logged to MLflow, as a `Classifier` (cached per process).

    Raises `shared.errors.ConfigError` for a run that is not a finished vision classification."""
    import mlflow

    from shared import mlflow_model
    from shared.errors import ConfigError

    fix = ("Fix: train one (dlsuite train vision --task classification) and pass its run id, "
           "e.g. --set quality_classifier_run=<run id>.")
    try:
        run = mlflow.tracking.MlflowClient().get_run(run_id)
    except Exception:  # noqa: BLE001 - an unknown id, whatever the store says
        raise ConfigError(f"Unknown quality classifier run. Received: quality_classifier_run={run_id!r} "
                          f"(store {mlflow.get_tracking_uri()}). Expected the id of a vision/classification run. "
                          f"{fix}") from None
    tags = run.data.tags
    model_uri = tags.get("dlsuite.keras_model_uri")
    if tags.get("dlsuite.app") != "vision" or tags.get("dlsuite.task") != "classification" or not model_uri:
        raise ConfigError(f"The quality classifier run is not a trained vision classifier. Received: "
                          f"quality_classifier_run={run_id!r} (app {tags.get('dlsuite.app')!r}, task "
                          f"{tags.get('dlsuite.task')!r}, status {run.info.status}). Expected a finished "
                          f"vision/classification run with a logged model. {fix}")
    model = mlflow_model.load_logged_keras_model(model_uri)
    return Classifier(model, run_id)


def classifier_dataset(run_id):
    """The dataset a classifier run trained on (its `config.dataset` param)."""
    import mlflow

    return mlflow.tracking.MlflowClient().get_run(run_id).data.params.get("dataset")


# === Reports ===


def sample_quality(classifier, generated, reference, class_ids=None, reference_features=None, prefix=""):
    """FID and KID of uint8 `generated` images against `reference` images in the classifier's feature space;
    with `class_ids` (the class each image was generated for), the classifier's accuracy on them, overall and
    per class. `reference_features` skips recomputing the reference's. Returns a flat dict of floats."""
    generated_features = classifier.features(generated)
    if reference_features is None:
        reference_features = classifier.features(reference)
    kid_mean, kid_std = kid(generated_features, reference_features)
    metrics = {f"{prefix}fid": fid(generated_features, reference_features), f"{prefix}kid": kid_mean,
               f"{prefix}kid_std": kid_std}
    if class_ids is not None:
        predicted = classifier.predict(generated)
        class_ids = np.asarray(class_ids)
        metrics[f"{prefix}class_accuracy"] = float(np.mean(predicted == class_ids))
        for class_id in np.unique(class_ids):
            mask = class_ids == class_id
            metrics[f"{prefix}class_accuracy_{int(class_id)}"] = float(np.mean(predicted[mask] == class_id))
    return metrics


def real_vs_real(classifier, train_images, test_images, count=None, seed=0, test_features=None):
    """The yardstick: FID/KID between `count` training images (seeded draw; default as many as test images) and
    the test images, in the same feature space as the samples' scores."""
    count = min(count or len(test_images), len(train_images))
    chosen = np.random.default_rng(seed).choice(len(train_images), count, replace=False)
    return sample_quality(classifier, np.asarray(train_images)[np.sort(chosen)], test_images,
                          reference_features=test_features, prefix="real_")
