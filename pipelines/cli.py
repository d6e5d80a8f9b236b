"""`dlsuite`: one CLI for every app. This module only parses and dispatches.

TensorFlow is imported by the verbs that need it, never here, so `--help` and
`list` answer at once. Unless `--verbose`, TensorFlow's and MLflow's start-up
noise (absl INFO lines, CUDA probing on CPU machines, progress bars) is kept off
the terminal (`pipelines.quiet`).
"""

import argparse
import os
import sys

from shared.errors import RunFailed, UsageError, interrupt_reason


def _build_parser():
    from pipelines.catalog import APPS

    apps = ", ".join(APPS)
    parser = argparse.ArgumentParser(
        prog="dlsuite",
        description="Train, evaluate and export the dlsuite deep-learning apps; every run is tracked in MLflow.",
        epilog=f"apps: {apps}. Start with `dlsuite list`, then e.g. `dlsuite train vision --preset smoke`.",
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    verbs.add_parser("list", help="list apps, their tasks and presets")

    train = verbs.add_parser("train", help="train a task, log it to MLflow and export a SavedModel")
    _add_run_arguments(train, apps, preset_help="config preset (default: default)",
                       set_help="override one config value (repeatable)",
                       seed_help="random seed (overrides the config's seed)")
    train.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--export-dir", default="exports", help="export root (default: ./exports)")
    train.add_argument("--summary-json", metavar="FILE", help="also write run id, metrics, export dir and config as JSON")
    train.add_argument("--workers", type=int, metavar="N",
                       help="train as N local worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy; each gets "
                            "its TF_CONFIG); worker 0 is the chief that logs and exports")

    tune = verbs.add_parser(
        "tune", help="search hyperparameters with Optuna; each trial is a nested MLflow run",
        description="Search config values with Optuna (TPE). Each trial trains through the `train` pipeline "
                    "(no SavedModel export) as a child of one parent MLflow run. The objective is the task's "
                    "validation monitor (e.g. val_accuracy, best epoch of the trial); test metrics never choose "
                    "hyperparameters. The study is kept in optuna.db beside the MLflow store: the same "
                    "--study-name adds trials to it.",
        epilog="example: dlsuite tune vision --preset smoke --search learning_rate=1e-4..1e-2:log "
               "--search 'dropout_rate=0.1|0.4' --trials 10 --best-config best.yaml "
               "(quote choices: | is a shell pipe)",
    )
    _add_run_arguments(tune, apps, preset_help="config preset the search starts from (default: default)",
                       set_help="fix one config value for every trial (repeatable)",
                       seed_help="random seed of every trial and of the sampler")
    tune.add_argument("--search", dest="searches", action="append", default=[], metavar="KEY=SPEC",
                      help="search a config value: LOW..HIGH, LOW..HIGH:log or A|B|C (repeatable, at least one)")
    tune.add_argument("--trials", type=int, default=10, help="trials to run (default: 10)")
    tune.add_argument("--timeout", type=float, metavar="SECONDS", help="start no new trial after this many seconds")
    tune.add_argument("--study-name", help="Optuna study to create or continue (default: a new one per run)")
    tune.add_argument("--best-config", metavar="FILE.yaml", help="also write the best config here")
    tune.add_argument("--pruner", choices=("median", "none"), default="median",
                      help="stop a trial early when an epoch is worse than the median of earlier trials at that "
                           "epoch, after 5 complete trials (default: median)")
    tune.add_argument("--storage", metavar="URL",
                      help="Optuna storage (any SQLAlchemy URL, e.g. postgresql://user:pw@host/optuna): tune "
                           "processes on any machines with the same --study-name share the study and --trials is "
                           "the total (default: sqlite optuna.db beside the MLflow store)")
    tune.add_argument("--heartbeat", type=int, default=20, metavar="SECONDS",
                      help="a running trial's heartbeat interval: a trial silent for 3x this long (its worker died) "
                           "is failed and its params queued again for a live worker (default: 20)")

    evaluate = verbs.add_parser(
        "evaluate", help="evaluate an exported SavedModel on its run's test data or on other data",
        description="Measure an export the way training did: on the run's data, or on another copy of data in "
                    "the same format (--data-dir). The report names the model and the data it measured.")
    evaluate.add_argument("--run-id", help="the run whose export to evaluate (its results are logged to it)")
    evaluate.add_argument("--model-dir", help="an export folder (exports/vision-classification or one version)")
    evaluate.add_argument("--data-dir", help="data in the task's format (default: the data the run trained on)")
    evaluate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                          help="evaluation-time config value, e.g. max_test_examples=500 (repeatable)")
    _add_tracking_arguments(evaluate)

    export = verbs.add_parser("export", help="export a run's model as a new SavedModel version")
    export.add_argument("--run-id", required=True)
    export.add_argument("--out", default="exports", help="export root (default: ./exports)")
    export.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change a config key that shapes only the serving graph (a threshold, test-time "
                             "averaging), e.g. --set test_time_sizes=()")
    _add_tracking_arguments(export)

    serve = verbs.add_parser("serve", help="serve an export over TF Serving's REST predict API")
    serve.add_argument("--model-dir", help="export folder with version subfolders, e.g. exports/vision-classification")
    serve.add_argument("--run-id", help="serve the export of this run instead")
    serve.add_argument("--model", metavar="models:/NAME@ALIAS", dest="model_uri",
                       help="serve a registered model's version instead: models:/NAME@ALIAS (followed: a new version "
                            "is served within --poll-seconds and its load, without a restart) or models:/NAME/VERSION")
    from pipelines.serve import port_number, positive_integer, positive_number  # no TensorFlow: argparse types

    serve.add_argument("--port", type=port_number, default=8501, help="1..65535 (default: 8501)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--max-body-mb", type=positive_number("--max-body-mb"), default=32,
                       help="largest request body in MiB; larger ones get HTTP 413 unread (default: 32)")
    serve.add_argument("--read-timeout", type=positive_number("--read-timeout"), default=30, metavar="SECONDS",
                       help="drop a client whose request does not arrive within this time (default: 30)")
    serve.add_argument("--max-batch-size", type=positive_integer("--max-batch-size"), default=64,
                       help="rows of concurrent requests merged into one TensorFlow call (default: 64; 1: no batching)")
    serve.add_argument("--batch-timeout-ms", type=positive_number("--batch-timeout-ms"), default=5, metavar="MS",
                       help="longest a request waits for others to share its call (default: 5)")
    serve.add_argument("--max-connections", type=positive_integer("--max-connections"), default=256,
                       help="open connections at once, per worker; more get HTTP 503 (default: 256)")
    serve.add_argument("--workers", type=positive_integer("--workers"), default=1,
                       help="server processes on the port, each with its own copy of the model (default: 1)")
    serve.add_argument("--poll-seconds", type=positive_number("--poll-seconds"), default=10, metavar="SECONDS",
                       help="with --model NAME@ALIAS: how often the alias is checked (default: 10)")
    _add_tracking_arguments(serve)

    play = verbs.add_parser(
        "play", help="play a board game in the terminal against a self-play export",
        description="Play Connect Four or tic-tac-toe against an export of a gaming_rl self-play task (or a run's "
                    "export). The agent searches with the reloaded SavedModel; illegal moves are refused and asked "
                    "again; q quits.",
        epilog="example: dlsuite play --model-dir exports/gaming_rl-connect4-alphazero --first agent "
               "--simulations 200")
    play.add_argument("--model-dir", help="export folder (versions inside) or one version folder")
    play.add_argument("--run-id", help="play against the export of this run instead")
    play.add_argument("--first", choices=("human", "agent"), default="human", help="who moves first (default: human)")
    from pipelines.play import check_simulations  # no TensorFlow: an argparse type

    play.add_argument("--simulations", type=check_simulations, metavar="N",
                      help="the agent's MCTS simulations per move (default: the run's eval_simulations; 0: the "
                           "network's move without search)")
    _add_tracking_arguments(play)

    promote = verbs.add_parser(
        "promote", help="make a registered model version the champion if it beats the current one",
        description="Score the version and the current champion (alias champion) on the same test data, the "
                    "way `dlsuite evaluate` does, with the task's headline metric; move the alias only if the "
                    "version is better (else exit 2 with both scores). The replaced champion keeps the alias "
                    "previous-champion.")
    promote.add_argument("name", help="registered model: <app>-<task>, e.g. vision-classification")
    promote.add_argument("--version", type=int, help="the version to promote")
    promote.add_argument("--force", action="store_true", help="promote even if it is not better (recorded)")
    promote.add_argument("--rollback", action="store_true", help="make the previous champion the champion again")
    promote.add_argument("--data-dir", help="test data for both versions (default: the version's run's data)")
    promote.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="evaluation-time config value for both versions, e.g. max_test_examples=500")
    _add_tracking_arguments(promote)

    server = verbs.add_parser(
        "server", help="start a team's MLflow server (database backend, proxied artifacts, basic-auth)",
        description="Runs `mlflow server --backend-store-uri DB --artifacts-destination DEST --serve-artifacts "
                    "[--app-name basic-auth]` after checking that the databases connect. See README, Team setup.")
    server.add_argument("--backend-store-uri", required=True, metavar="URL",
                        help="runs and registry database, e.g. postgresql://mlflow:PW@db-host:5432/mlflow")
    server.add_argument("--artifacts-destination", required=True, metavar="FOLDER_OR_URI",
                        help="where artifacts are stored: a folder or s3://bucket/prefix")
    server.add_argument("--auth-database-uri", metavar="URL",
                        help="users database of the basic-auth app (needs MLFLOW_FLASK_SERVER_SECRET_KEY and "
                             "MLFLOW_AUTH_ADMIN_PASSWORD); without it, no authentication")
    server.add_argument("--default-permission", choices=("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"), default="EDIT",
                        help="what every user may do with experiments and models others created (default: EDIT)")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--workers", type=int, default=4, help="server processes (default: 4)")
    server.add_argument("--allowed-hosts", metavar="HOST[:PORT],...",
                        help="Host headers MLflow accepts when clients use a name other than localhost")
    server.add_argument("--auth-cache-seconds", type=int, default=0, metavar="SECONDS",
                        help="remember an accepted password this long instead of checking its hash (about 0.1 s "
                             "of CPU) on every request (default: 0, check every request)")

    ui = verbs.add_parser("ui", help="open the MLflow UI on the suite's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    _add_tracking_arguments(ui)
    for verb_parser in verbs.choices.values():  # `dlsuite train vision --verbose` works too
        verb_parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


VERBOSE_HELP = ("show TensorFlow's and MLflow's own log lines (absl/oneDNN/CUDA start-up lines, artifact progress "
                "bars, the UI server's notices and request log), hidden by default")


def _add_run_arguments(parser, apps, *, preset_help, set_help, seed_help):
    """What `train` and `tune` share: the app, task, preset, config overrides, data, seed and MLflow place."""
    parser.add_argument("app", help=f"one of: {apps} (see `dlsuite list`)")
    parser.add_argument("--task", help="task of the app (default: the app's first task)")
    parser.add_argument("--preset", default="default", help=preset_help)
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of config overrides")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--data-dir", help="dataset root (default: $DLSUITE_DATA_DIR, then system locations)")
    parser.add_argument("--seed", type=int, help=seed_help)
    _add_tracking_arguments(parser)
    parser.add_argument("--experiment", help="MLflow experiment (default: dlsuite-<app>)")


def _add_tracking_arguments(parser):
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: SQLite store in ./mlruns)")


def _list():
    from pipelines import catalog

    tasks = {app: catalog.tasks_of(app) for app in catalog.APPS}
    width = max(len(task) for app_tasks in tasks.values() for task in app_tasks)
    for app, (_module, description) in catalog.APPS.items():
        print(f"{app}: {description}")
        for task, spec in tasks[app].items():
            print(f"  --task {task:<{width}} {spec.description}  [presets: {', '.join(spec.presets)}]")


def _tune(args):
    from pipelines.tune import TuneFailed, tune

    try:
        result = tune(
            app=args.app, task=args.task, preset=args.preset, config_file=args.config, overrides=args.overrides,
            searches=args.searches, trials=args.trials, timeout=args.timeout, data_dir=args.data_dir, seed=args.seed,
            tracking_uri=args.tracking_uri, experiment=args.experiment, study_name=args.study_name,
            best_config=args.best_config, pruner=args.pruner, storage=args.storage,
            heartbeat=args.heartbeat,
        )
    except TuneFailed as error:  # the search ran and failed: not a usage error
        print(f"dlsuite: error: {error}", file=sys.stderr)
        return 1
    print(f"best {result['monitor']}: {result['best_value']:.4f} (trial {result['best_trial']}, "
          f"run {result['best_run_id']})")
    print("best params: " + ", ".join(f"{key}={value}" for key, value in result["best_params"].items()))
    print(f"tune run id: {result['parent_run_id']} (study {result['study_name']})")
    if result["train_command"]:
        print(f"best config: {result['best_config_path']}")
        print(f"train the winner: {result['train_command']}")
    else:
        print("best config: the best_config.yaml artifact of the tune run; pass --best-config FILE for a local copy")
    return 0


def run(argv=None):
    args = _build_parser().parse_args(argv)
    if args.verb == "list":
        _list()
        return 0
    if not args.verbose:
        from pipelines import quiet

        quiet.quiet_output()
    if args.verb == "train" and args.workers:
        from pipelines import workers

        workers.check_workers(args.workers)
        workers.initialize_store(args.tracking_uri)
        return workers.launch(args.workers, workers.without_workers_flag(sys.argv[1:] if argv is None else argv))
    if args.verb == "train":
        from pipelines.train import train

        summary = train(
            app=args.app, task=args.task, preset=args.preset, config_file=args.config,
            overrides=args.overrides, data_dir=args.data_dir, seed=args.seed,
            tracking_uri=args.tracking_uri, experiment=args.experiment, resume=args.resume,
            export_root=args.export_dir, summary_json=args.summary_json,
        )
        if summary.get("role") == "worker":
            print("dlsuite: worker done (the chief logs the run and exports)")
            return 0
        print(f"run id:     {summary['run_id']}")
        print("test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in summary["metrics"].items()))
        print(f"export dir: {summary['export_dir']}")
    elif args.verb == "tune":
        return _tune(args)
    elif args.verb == "evaluate":
        from pipelines.evaluate import evaluate

        result = evaluate(run_id=args.run_id, model_dir=args.model_dir, data_dir=args.data_dir,
                          overrides=args.overrides, tracking_uri=args.tracking_uri)
        print(f"model:   {result['model']}")
        print(f"data:    {result['data']['source']} (" + ", ".join(
            f"{record['split']}: {record['records']}" for record in result["data"]["records"]) + ")")
        print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items()))
    elif args.verb == "export":
        from pipelines.export import export

        path = export(run_id=args.run_id, export_root=args.out, tracking_uri=args.tracking_uri,
                      overrides=args.overrides)
        print(f"export dir: {path}")
    elif args.verb == "serve":
        from pipelines.serve import serve

        return serve(model_dir=args.model_dir, run_id=args.run_id, host=args.host, port=args.port,
                     tracking_uri=args.tracking_uri, max_body_mb=args.max_body_mb, read_timeout=args.read_timeout,
                     max_batch_size=args.max_batch_size, batch_timeout_ms=args.batch_timeout_ms,
                     max_connections=args.max_connections, workers=args.workers, model_uri=args.model_uri,
                     poll_seconds=args.poll_seconds)
    elif args.verb == "play":
        from pipelines.play import main_loop

        return main_loop(args)
    elif args.verb == "promote":
        from pipelines.promote import promote

        promote(name=args.name, version=args.version, force=args.force, rollback=args.rollback,
                data_dir=args.data_dir, overrides=args.overrides, tracking_uri=args.tracking_uri)
    elif args.verb == "server":
        from pipelines.server import server

        return server(backend_store_uri=args.backend_store_uri, artifacts_destination=args.artifacts_destination,
                      host=args.host, port=args.port, auth_database_uri=args.auth_database_uri,
                      default_permission=args.default_permission, workers=args.workers,
                      allowed_hosts=args.allowed_hosts, auth_cache_seconds=args.auth_cache_seconds)
    elif args.verb == "ui":
        from pipelines.ui import ui

        return ui(port=args.port, host=args.host, tracking_uri=args.tracking_uri, verbose=args.verbose)
    return 0


def main(argv=None):
    try:
        return run(argv)
    except UsageError as error:
        print(f"dlsuite: error: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:  # the run started and failed (e.g. the loss diverged); it ended FAILED
        print(f"dlsuite: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if getattr(error, "error_code", None) != "PERMISSION_DENIED":  # an MlflowException: HTTP 403
            raise
        print(f"dlsuite: error: The MLflow server denied this account that request (HTTP 403). Received: "
              f"{str(error).splitlines()[0]} (user {os.environ.get('MLFLOW_TRACKING_USERNAME')}). Expected EDIT "
              "permission on the experiment or registered model. Fix: ask its owner or the admin to grant it.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:  # shared.errors.Interrupted for SIGTERM during a run
        print(f"dlsuite: interrupted by {interrupt_reason(error)}", file=sys.stderr)
        code = getattr(error, "exit_code", 130)
        if "tensorflow" in sys.modules and argv is None:  # a program (`dlsuite`, `-m pipelines.cli`), not a test's call
            # The run is already ended KILLED. Interpreter shutdown with tf.data threads still running
            # can abort in TensorFlow's C++ teardown (SIGABRT instead of the exit code): leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code


if __name__ == "__main__":
    sys.exit(main())
