"""The MLflow server app `dlsuite ui` runs: MLflow's own, with the UI's first-visit choices made for training runs.

MLflow 3's UI keeps its view choices in the browser's local storage, not on the server: the sidebar's
workflow ("GenAI" by default, or "Model training"), whether the MLflow Assistant panel has opened
itself once, whether the telemetry notice was dismissed. This app serves MLflow's page with a few
lines that set those keys before the UI starts, where the browser holds no value yet: a choice the
user makes in the UI (the sidebar's switch, the Assistant button) is stored under the same key and
wins from then on.

It is MLflow's app-plugin mechanism (the one `--app-name basic-auth` uses): pyproject.toml registers
`create_app` as the `dlsuite` entry point of the `mlflow.app` group, so
`mlflow server --app-name dlsuite` serves it too.
"""

import json
from pathlib import Path

# Key names and values as MLflow 3.17's UI stores them (`<key>_v<version>`, JSON values).
TRAINING_VIEW_DEFAULTS = {
    "mlflow.workflowType_v1": "machine_learning",  # the sidebar's "Model training", not "GenAI"
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,  # the Assistant panel stays closed; its button stays
}
TELEMETRY_OFF_DEFAULTS = {
    "mlflow.telemetry.info.alert.dismissed_v1": True,  # no "MLflow collects usage data" notice when it does not
}
SCRIPT = ("<script>(function(defaults){for(var key in defaults){try{if(localStorage.getItem(key)===null)"
          "localStorage.setItem(key,JSON.stringify(defaults[key]))}catch(error){}}})(%s);</script>")


def browser_defaults():
    """The local-storage values the served page sets where the browser has none."""
    from mlflow.telemetry.utils import is_telemetry_disabled

    return {**TRAINING_VIEW_DEFAULTS, **(TELEMETRY_OFF_DEFAULTS if is_telemetry_disabled() else {})}


def defaults_script(defaults):
    """A `<script>` that stores each of `defaults` in local storage unless the browser already holds that key."""
    return SCRIPT % json.dumps(defaults)


def page_with_defaults(index_html, defaults):
    """MLflow's index.html with `defaults_script` run first, before the UI's own scripts load."""
    head = index_html.index("<head>") + len("<head>")
    return index_html[:head] + defaults_script(defaults) + index_html[head:]


def create_app():
    """MLflow's server app (FastAPI under uvicorn, Flask otherwise) whose page carries `browser_defaults()`."""
    from flask import Response
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app

    from pipelines import server_process

    server_process.set_parent_death_signal()  # the server stops with the MLflow CLI that started it
    index = Path(app.static_folder) / "index.html"
    page = page_with_defaults(index.read_text(), browser_defaults()) if index.is_file() else None
    serve_mlflow_page = app.view_functions["serve"]

    def serve():
        return Response(page, mimetype="text/html") if page else serve_mlflow_page()

    app.view_functions["serve"] = serve  # the endpoint of "/" (MLflow's single-page UI)
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app
