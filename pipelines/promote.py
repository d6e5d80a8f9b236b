"""`dlsuite promote NAME --version N`: the champion gate of the model registry.

    dlsuite promote vision-classification --version 3            # champion only if it beats the champion
    dlsuite promote vision-classification --version 3 --force    # override a refusal (recorded)
    dlsuite promote vision-classification --rollback             # back to the previous champion

Both versions are scored now, the way `dlsuite evaluate --run-id` scores them (each version's SavedModel,
downloaded through MLflow when it is not on this machine), on the same test data: the challenger's data
folder (or --data-dir) and --set values for both, checked by the test split's fingerprint. The metric is
the task's headline metric (`Task.headline_metric`: the task's `headline`, else the test counterpart of its
validation monitor; higher or lower better as the task says). A challenger that is not better is refused
(exit 2) unless --force. The outcome is a JSON tag `dlsuite.promotion` on the version (and on a refused one); the
champion it replaces gets the alias `previous-champion`, so `--rollback` is one command.
"""

import datetime
import json

from pipelines import registry
from shared import tracking
from shared.errors import UsageError


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _alias(client, name, alias):
    import mlflow

    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def _version(client, name, number):
    import mlflow

    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        known = sorted(model.name for model in client.search_registered_models())
        raise UsageError(f"No registered model of that name. Received: {name}. Expected one of: "
                         f"{', '.join(known) or 'none yet (every `dlsuite train` run registers one)'}.") from None
    try:
        return client.get_model_version(name, str(number))
    except mlflow.exceptions.MlflowException:
        latest = max((int(v.version) for v in client.search_model_versions(f"name = '{name}'")), default=0)
        raise UsageError(f"Model {name} has no version {number}. Received: --version {number}. Expected 1.."
                         f"{latest}. Fix: `dlsuite ui` lists the versions (Models tab).") from None


def score(version, data_dir=None, overrides=()):
    """`(metric, mode, value, test fingerprint)` of a model version, scored by `dlsuite evaluate`."""
    from pipelines import runs
    from pipelines.evaluate import evaluate

    _run, runner, config = runs.load_run_task(version.run_id)
    metric, mode = runner.headline_metric(config)
    result = evaluate(run_id=version.run_id, data_dir=data_dir, overrides=overrides)
    if metric not in result["metrics"]:
        raise UsageError(f"The evaluation of version {version.version} reports no {metric}. Received: metrics "
                         f"{sorted(result['metrics'])}. Expected the task's headline metric {metric}.")
    test = [record["fingerprint"] for record in result["data"]["records"] if record["split"] == "test"]
    return metric, mode, result["metrics"][metric], test


def promote(name, version=None, force=False, rollback=False, data_dir=None, overrides=(), tracking_uri=None):
    """Move the alias `champion` (see the module); return the promotion record."""
    if (version is None) == (not rollback):
        raise UsageError("Say which version to promote. Received: " + (
            "--version and --rollback" if rollback else "neither --version nor --rollback")
            + ". Expected one of them. Fix: e.g. dlsuite promote vision-classification --version 3.")
    tracking.setup(tracking_uri)
    client = _client()
    if rollback:
        _version(client, name, 1)  # the model exists
        target = _alias(client, name, registry.PREVIOUS)
        if target is None:
            raise UsageError(f"Nothing to roll back to. Received: --rollback for {name}, which has no "
                             f"{registry.PREVIOUS} alias. Expected an earlier promotion to have replaced a champion.")
    else:
        target = _version(client, name, version)
    champion = _alias(client, name, registry.CHAMPION)
    record = {"challenger_version": int(target.version), "time": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds"), "champion_version": int(champion.version) if champion else None}
    if champion is not None and champion.version == target.version:
        print(f"dlsuite: version {target.version} of {name} is already the champion")
        return {**record, "decision": "unchanged"}
    if rollback or champion is None:
        record["decision"] = "rollback" if rollback else "first champion"
    else:
        record.update(_compare(name, target, champion, data_dir or _data_dir(client, target), overrides))
        if not record["better"] and not force:
            client.set_model_version_tag(name, target.version, "dlsuite.promotion", json.dumps(
                {**record, "decision": "refused"}))
            raise UsageError(
                f"Version {target.version} does not beat the champion. Received: {record['metric']}="
                f"{record['challenger_score']:.6g} for version {target.version}, {record['champion_score']:.6g} for "
                f"champion version {champion.version} ({record['mode']}imum is better), same test data. Expected a "
                "better score. Fix: train a better version, or pass --force to promote it anyway (recorded)."
            )
        record["decision"] = "accepted" if record["better"] else "forced"
    if champion is not None:
        client.set_registered_model_alias(name, registry.PREVIOUS, champion.version)
    client.set_registered_model_alias(name, registry.CHAMPION, target.version)
    client.set_model_version_tag(name, target.version, "dlsuite.promotion", json.dumps(record))
    print(f"dlsuite: {name} version {target.version} is the champion ({record['decision']})"
          + (f"; previous champion: version {champion.version}" if champion else ""), flush=True)
    return record


def _data_dir(client, version):
    return client.get_run(version.run_id).data.tags.get("dlsuite.data_dir") or None


def _compare(name, challenger, champion, data_dir, overrides):
    metric, mode, challenger_score, challenger_test = score(challenger, data_dir, overrides)
    _metric, _mode, champion_score, champion_test = score(champion, data_dir, overrides)
    if challenger_test != champion_test:
        raise UsageError(
            f"The two versions were not scored on the same test data. Received: test fingerprints "
            f"{challenger_test} (version {challenger.version}) and {champion_test} (version {champion.version}) of "
            f"{name}. Expected the same test split. Fix: pass --set values that make them equal, e.g. "
            "--set max_test_examples=N, and the same --data-dir."
        )
    better = challenger_score > champion_score if mode == "max" else challenger_score < champion_score
    print(f"dlsuite: {metric}: version {challenger.version} {challenger_score:.6g}, champion version "
          f"{champion.version} {champion_score:.6g} ({mode}imum is better)", flush=True)
    return {"metric": metric, "mode": mode, "challenger_score": challenger_score, "champion_score": champion_score,
            "better": better, "test_fingerprint": challenger_test[0] if challenger_test else None,
            "data_dir": data_dir, "overrides": list(overrides)}
