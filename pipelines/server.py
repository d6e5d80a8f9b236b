"""`dlsuite server`: start a team's MLflow tracking server, as `mlflow server` would be started by hand.

    dlsuite server --backend-store-uri postgresql://mlflow:PW@db-host/mlflow \
                   --artifacts-destination s3://bucket/mlflow   (or a folder) \
                   --auth-database-uri postgresql://mlflow:PW@db-host/mlflow_auth --host 0.0.0.0 --port 5000

A thin wrapper: it checks the request before anything starts (the databases connect, the artifacts
folder is writable, the auth secrets are set), writes the basic-auth app's config (its user database),
then runs `mlflow server --serve-artifacts --app-name basic-auth`: clients reach runs, artifacts and
the model registry through that one address and need no database or storage credentials.
Without `--auth-database-uri` the server runs without authentication (one trusted network).
"""

import os
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from pipelines import server_process
from shared.errors import UsageError

AUTH_SECRETS = ("MLFLOW_FLASK_SERVER_SECRET_KEY", "MLFLOW_AUTH_ADMIN_PASSWORD")


def server_command(backend_store_uri, artifacts_destination, host, port, workers, auth_config=None,
                   allowed_hosts=None):
    """The `mlflow server` command line (a list), with basic-auth when `auth_config` (an ini path) is given."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
               "--artifacts-destination", artifacts_destination, "--serve-artifacts", "--host", host,
               "--port", str(port), "--workers", str(workers)]
    if allowed_hosts:  # the Host names clients use, when they are not localhost
        command += ["--allowed-hosts", allowed_hosts]
    return [*command, "--app-name", "basic-auth"] if auth_config else command


def write_auth_config(database_uri, folder, default_permission="EDIT", auth_cache_seconds=0):
    """The basic-auth app's ini: its users live in `database_uri`; every user has `default_permission` on
    what others created (EDIT: a team shares the `dlsuite-<app>` experiments and registered models).
    `auth_cache_seconds` > 0: an accepted password is remembered that long (MLflow's `auth_cache_ttl_seconds`)
    instead of checked against its hash (scrypt, about 0.1 s of CPU) on every request."""
    path = Path(folder) / "basic_auth.ini"
    path.write_text(f"[mlflow]\ndefault_permission = {default_permission}\n"
                    f"database_uri = {database_uri}\nadmin_username = admin\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                    + (f"auth_cache_ttl_seconds = {auth_cache_seconds}\n" if auth_cache_seconds else ""))
    return path


def check_artifacts_destination(destination):
    scheme = urlparse(destination).scheme
    if scheme and scheme not in ("file",):
        return  # s3://, gs://, ...: the server's own credentials (e.g. AWS_* variables) reach it
    from shared import stores

    error = stores.write_error(urlparse(destination).path if scheme == "file" else destination)
    if error is not None:
        raise UsageError(
            f"The artifacts destination is not a writable folder. Received: --artifacts-destination {destination} "
            f"({error.strerror or error}). Expected a folder the server can write, or s3://bucket/prefix. "
            "Fix: pass another folder."
        ) from None


def server(backend_store_uri, artifacts_destination, host="127.0.0.1", port=5000, auth_database_uri=None,
           default_permission="EDIT", workers=4, allowed_hosts=None, auth_cache_seconds=0):
    """Run the server in the foreground until it stops; return its exit code."""
    from shared import stores

    if auth_cache_seconds < 0:
        raise UsageError(f"Invalid --auth-cache-seconds. Received: --auth-cache-seconds {auth_cache_seconds}. "
                         "Expected whole seconds >= 0 (0: check the password on every request). Fix: e.g. "
                         "--auth-cache-seconds 60.")
    stores.check_database(backend_store_uri, "--backend-store-uri")
    check_artifacts_destination(artifacts_destination)
    environment = dict(os.environ)
    # MLflow's background job runner (GenAI evaluation jobs, 7 processes) serves nothing dlsuite logs.
    environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    with tempfile.TemporaryDirectory() as folder:
        auth_config = None
        if auth_database_uri:
            stores.check_database(auth_database_uri, "--auth-database-uri")
            missing = [name for name in AUTH_SECRETS if not environment.get(name)]
            if missing:
                raise UsageError(
                    f"The authenticated server needs secrets in the environment. Received: {', '.join(missing)} "
                    f"unset. Expected {' and '.join(AUTH_SECRETS)} (the admin password is used the first time, "
                    "to create user admin). Fix: export them, e.g. MLFLOW_FLASK_SERVER_SECRET_KEY=$(openssl rand "
                    "-hex 32), or drop --auth-database-uri for a server without authentication."
                )
            auth_config = write_auth_config(auth_database_uri, folder, default_permission, auth_cache_seconds)
            environment["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config)
        command = server_command(backend_store_uri, artifacts_destination, host, port, workers, auth_config,
                                 allowed_hosts)
        print(f"dlsuite: {' '.join(command[1:])}" + (" (basic-auth)" if auth_config else ""), flush=True)
        print(f"dlsuite: clients: --tracking-uri http://{client_host(host)}:{port}"
              + (" with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD" if auth_config else ""), flush=True)
        # Ctrl-C, SIGTERM or SIGHUP stop the MLflow server and its uvicorn workers with us; kill -9 sends it SIGTERM.
        return server_process.run_until_stopped(command, env=environment)


def client_host(host):
    """The host name clients use: this machine's name when the server listens on every interface."""
    return socket.getfqdn() if host in ("0.0.0.0", "::", "") else host
