"""`dlsuite serve --model models:/NAME@ALIAS`: serve a registered model's version, and follow its alias.

    dlsuite serve --model models:/vision-classification@champion                 # follows the champion
    dlsuite serve --model models:/vision-classification/3                        # version 3, fixed

The URI is resolved through MLflow's registry to a model version; its SavedModel is the run's export
folder when it is on this machine, else downloaded from the run's artifacts (`registry.local_export`).
It is served as TF Serving serves a model: under NAME, as version <registry version>. A background
thread re-resolves the alias every --poll-seconds; when it points at another version, that version is
loaded on the thread (the server keeps answering with the old one meanwhile) and swapped in at once:
requests that arrive after the swap get the new version, requests in flight finish on the old one,
which is then dropped. A failed poll (store unreachable, broken export) only warns.
"""

import re
import sys
import threading
import time

from shared.errors import UsageError

URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[0-9]+))$")


def parse_model_uri(text):
    """`(name, alias, version)` of `models:/NAME@ALIAS` or `models:/NAME/VERSION` (one of alias, version is None)."""
    match = URI.match(text)
    if not match:
        raise UsageError(f"Invalid model URI. Received: --model {text}. Expected models:/NAME@ALIAS or "
                         "models:/NAME/VERSION. Fix: e.g. --model models:/vision-classification@champion.")
    return match["name"], match["alias"], match["version"] and int(match["version"])


def resolve(client, name, alias=None, version=None):
    """The registry's model version the URI names; UsageError naming the model's aliases otherwise."""
    from pipelines.promote import _alias, _version

    if alias is None:
        return _version(client, name, version)
    found = _alias(client, name, alias)
    if found is None:
        _version(client, name, 1)  # the model exists, else that error (naming the registered models)
        known = sorted(client.get_registered_model(name).aliases)
        raise UsageError(f"Model {name} has no alias {alias}. Received: --model models:/{name}@{alias}. Expected one "
                         f"of: {', '.join(known) or 'none yet'}. Fix: `dlsuite promote {name} --version N` sets "
                         "the champion.")
    return found


def load(client, version):
    """`(SavedModel, {signature name: Signature})` of a registry version, downloaded if it is not here."""
    from pipelines.registry import local_export
    from pipelines.served_model import load_version

    with local_export(client.get_run(version.run_id)) as folder:
        return load_version(folder)


class Follower(threading.Thread):
    """Re-resolves `name@alias` every `poll_seconds`; loads a new version off the event loop, then swaps it in."""

    def __init__(self, model, client, name, alias, poll_seconds):
        super().__init__(name="follow-alias", daemon=True)
        self.model, self.client, self.name, self.alias, self.poll_seconds = model, client, name, alias, poll_seconds

    def run(self):
        while True:
            time.sleep(self.poll_seconds)
            self.poll()

    def poll(self):
        current = max(self.model.versions)
        try:
            version = self.client.get_model_version_by_alias(self.name, self.alias)
            if int(version.version) == current:
                return
            start = time.monotonic()
            loaded = load(self.client, version)
        except Exception as error:  # noqa: BLE001 - the version being served stays
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
            print(f"dlsuite: warning: cannot follow models:/{self.name}@{self.alias} ({reason}); still serving "
                  f"version {current}", file=sys.stderr, flush=True)
            return
        self.model.switch(int(version.version), loaded)
        print(f"dlsuite: models:/{self.name}@{self.alias} is now version {version.version} (was {current}); "
              f"serving it after a {time.monotonic() - start:.1f} s load", flush=True)


def model_loader(uri, tracking_uri=None, poll_seconds=10.0):
    """Resolve `uri` now (bad input fails before the port is taken); return the function that loads it into a
    ModelServer, and starts following the alias, in the process that serves."""
    from mlflow.tracking import MlflowClient

    from shared import tracking

    name, alias, number = parse_model_uri(uri)
    tracking.setup(tracking_uri)
    client = MlflowClient()
    resolve(client, name, alias, number)

    def load_model():
        from pipelines.served_model import ModelServer

        version = resolve(client, name, alias, number)
        model = ModelServer(name=name, versions={int(version.version): load(client, version)})
        if alias is not None:
            Follower(model, client, name, alias, poll_seconds).start()
            print(f"dlsuite: following models:/{name}@{alias}: a new version is served within {poll_seconds:g} s "
                  "and its load", flush=True)
        return model

    return load_model
