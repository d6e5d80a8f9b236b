"""The Keras model a run logs to MLflow, loadable with plain MLflow (no dlsuite import first).

Keras 3 rebuilds a saved model's classes by module name only for its own packages (keras, keras-hub,
keras-cv, keras-nlp); any other class (dlsuite's layers, keras-rs's) must be registered by importing its
module first or passed as `custom_objects`. MLflow's Keras flavor copies no code (no `code_paths`). So a
logged model carries what it needs, the way MLflow's `code_paths` do:
- `code/`: the Python source of the dlsuite packages defining its custom objects (`shared/`, `apps/<app>/`);
- in MLmodel's `python_function` flavor, `custom_objects`: each registered name with its module and name,
  and `loader_module: shared.mlflow_model`, which MLflow imports from `code/` to load it;
- a model with custom objects: its `keras` flavor is the SavedModel of `model.export()` (`data/model`,
  MLflow's `save_exported_model`), which needs no Python class, and the `.keras` file stays beside it
  (`data/model.keras`); a model of Keras/keras-hub objects only: the `.keras` file, as MLflow writes it.
  (A SavedModel of TF Text's ops, a keras-hub tokenizer inside the model, loads after `import tensorflow_text`.)

    mlflow.pyfunc.load_model(uri)          # predict(...) = the model's call; get_raw_model(): the Keras model
    mlflow.keras.load_model(uri)           # the Keras model, or (custom objects) the SavedModel: .serve(x)
    load_logged_keras_model(uri)           # the Keras model, in a process that imports dlsuite

This module imports only the standard library, Keras and MLflow: it runs in the loading process from
`code/`, without the rest of dlsuite.
"""

import importlib
import importlib.metadata
import os
import shutil
import sys
import types
from pathlib import Path

CODE = "code"
OWN_PACKAGES = ("apps", "shared", "pipelines")  # dlsuite's top-level packages, bundled rather than required
KERAS_FILE = "model.keras"  # in the keras flavor's data folder, as MLflow writes it
EXPORTED = "model"  # beside it: the SavedModel `mlflow.keras.load_model` loads when the model has custom objects


def custom_objects_of(model):
    """`{registered name: (module, name)}` of the non-Keras objects in the model's config and compile config."""
    import keras

    configs = [keras.saving.serialize_keras_object(model), model.get_compile_config() or {}]
    names = set()
    for config in configs:
        _collect_registered_names(config, names)
    found = {}
    for name in sorted(names):
        obj = keras.saving.get_registered_object(name)
        if obj is not None and not obj.__module__.startswith("keras."):
            found[name] = (obj.__module__, obj.__qualname__)
    return found


def _collect_registered_names(config, names):
    if isinstance(config, dict):
        if config.get("registered_name"):
            names.add(config["registered_name"])
        if config.get("class_name") == "function" and isinstance(config.get("config"), str):
            names.add(config["config"])  # a registered function: "package>name"
        for value in config.values():
            _collect_registered_names(value, names)
    elif isinstance(config, (list, tuple)):
        for value in config:
            _collect_registered_names(value, names)


def pip_requirements(custom_objects):
    """Pinned TensorFlow and Keras, and the distributions the custom objects' modules import at top level.

    Explicit: MLflow's inference of requirements starts a process that re-imports the model (~9 s a run).
    """
    distributions = importlib.metadata.packages_distributions()
    packages = {"tensorflow", "keras"}
    for module_name, _ in custom_objects.values():
        module = importlib.import_module(module_name)
        imported = {value.__name__ for value in vars(module).values() if isinstance(value, types.ModuleType)}
        for top in {module_name, *imported}:
            top = top.split(".")[0]
            if top not in OWN_PACKAGES:
                packages.update(distributions.get(top, ()))
    return sorted(f"{package}=={importlib.metadata.version(package)}" for package in packages)


def bundle_code(custom_objects, code_dir):
    """Copy the Python files of `shared/` and of each dlsuite app defining a custom object into `code_dir`."""
    root = Path(__file__).resolve().parents[1]
    folders = {"shared"}
    for module_name, _ in custom_objects.values():
        parts = module_name.split(".")
        if parts[0] == "apps" and len(parts) > 2:
            folders.add(f"apps/{parts[1]}")
    not_python = shutil.ignore_patterns("__pycache__", "*.md", "*.txt", "*.json", "*.yaml")
    for folder in sorted(folders):
        shutil.copytree(root / folder, Path(code_dir) / folder, ignore=not_python, dirs_exist_ok=True)
    if any(folder.startswith("apps/") for folder in folders):
        shutil.copy2(root / "apps" / "__init__.py", Path(code_dir) / "apps" / "__init__.py")


def save_model(model, path, mlflow_model=None, custom_objects=None, **kwargs):
    """`mlflow.keras.save_model`, then the code and custom objects that load it (the flavor `Model.log` calls)."""
    import mlflow
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    mlflow_model = mlflow_model or Model()
    custom_objects = custom_objects_of(model) if custom_objects is None else custom_objects
    mlflow.keras.save_model(model, path, mlflow_model=mlflow_model, **kwargs)
    if custom_objects:
        export_saved_model(model, Path(path) / mlflow_model.flavors["keras"]["data"] / EXPORTED)
        mlflow_model.flavors["keras"]["save_exported_model"] = True
    bundle_code(custom_objects, Path(path) / CODE)
    mlflow_model.flavors["python_function"].update(
        loader_module=__name__, code=CODE,
        custom_objects={name: list(where) for name, where in custom_objects.items()})
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def export_saved_model(model, path):
    """The model's inference call as the `serve` endpoint of a TensorFlow SavedModel.

    `model.export()`'s input signature (dict inputs keep their names), but `training=False`: `model.export()`
    calls the model with no `training`, and a layer whose default is training (RandomFlip) would augment."""
    import keras
    from keras.src.export.export_utils import get_input_signature  # what model.export() uses

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda *inputs: model(*inputs, training=False), get_input_signature(model))
    archive.write_out(str(path), verbose=False)


def log_model(model, name="model", signature=None):
    """Log `model` as `name` in the active run; return its `ModelInfo`."""
    from mlflow.models import Model

    custom_objects = custom_objects_of(model)
    return Model.log(artifact_path=None, name=name, flavor=sys.modules[__name__], flavor_name="keras",
                     model=model, signature=signature, custom_objects=custom_objects,
                     pip_requirements=pip_requirements(custom_objects))


def load_keras_model(path):
    """The Keras model of an MLflow model folder written by `save_model`, its custom objects imported by name
    (from the folder's `code/` when dlsuite is not imported); returns `(model, MLmodel conf)`."""
    _extend_imported_packages(Path(path) / CODE)
    return _load_keras_file(path)


def load_logged_keras_model(model_uri):
    """The trainable Keras model logged at `model_uri` (`models:/...`, `runs:/...`), for dlsuite's own code.

    `mlflow.keras.load_model` gives a model with custom objects as its exported SavedModel; this gives the
    Keras model of its `.keras` file, the custom objects imported from this process's dlsuite."""
    import mlflow

    return _load_keras_file(mlflow.artifacts.download_artifacts(model_uri))[0]


def _load_keras_file(path):
    import keras
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    conf = Model.load(os.path.join(path, MLMODEL_FILE_NAME))
    data = os.path.join(path, conf.flavors["keras"]["data"], KERAS_FILE)
    return keras.saving.load_model(data, custom_objects=_custom_objects(conf)), conf


def _custom_objects(conf):
    """The objects the MLmodel's `custom_objects` name, imported by module and name."""
    custom_objects = {}
    for name, (module_name, qualname) in conf.flavors["python_function"].get("custom_objects", {}).items():
        obj = importlib.import_module(module_name)
        for attribute in qualname.split("."):
            obj = getattr(obj, attribute)
        custom_objects[name] = obj
    return custom_objects


def _extend_imported_packages(code_dir):
    """A second model's `code/apps/nlp` when `apps` came from the first one's `code/` (one process, two models)."""
    for package_dir in sorted(code_dir.glob("*/")) if code_dir.is_dir() else ():
        package = sys.modules.get(package_dir.name)
        if package is not None and hasattr(package, "__path__") and str(package_dir) not in package.__path__:
            package.__path__.append(str(package_dir))


def _load_pyfunc(path):
    """What `mlflow.pyfunc.load_model` calls (with `code/` on `sys.path`)."""
    from mlflow.keras.load import KerasModelWrapper

    class KerasPredictor(KerasModelWrapper):
        """MLflow's Keras pyfunc, answering what the model's call (and the logged signature) answers: a dict of
        arrays for several outputs, a detector's raw heads (not `predict()`'s decoded boxes); no `predict()`
        graph with an unknown batch size (diffusion's sampling loop needs the batch size)."""

        def predict(self, data, params=None):
            import keras
            import pandas

            if isinstance(data, pandas.DataFrame):
                return super().predict(data)
            return keras.tree.map_structure(keras.ops.convert_to_numpy, self.model(data, training=False))

    model, conf = load_keras_model(path)
    return KerasPredictor(model, conf.signature)
