"""Is the tracking store usable? Checked before any work starts, each failure one UsageError line.

- a SQLite store: its folder can be created and written;
- a database URL (postgresql://, mysql://, mssql://): it connects (SQLAlchemy, 5 s timeout);
- an MLflow server (http://, https://): it answers, and accepts the credentials of
  MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) when it asks for them.
  No permission on an experiment (HTTP 403) is found when the run is opened (`permission_error`).
MLflow's own client retries an unreachable server for minutes; these checks answer in seconds.
"""

import base64
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from shared.errors import UsageError

DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
CREDENTIALS_FIX = ("Fix: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your MLflow account "
                   "(ask the server's admin for one).")


def check_store(uri, where):
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme in ("http", "https"):
        check_server(uri, where)
    elif scheme == "sqlite" or scheme in DATABASE_SCHEMES:
        check_database(uri, where)


def check_database(uri, where):
    """Raise UsageError unless the SQLAlchemy database URL `uri` connects (SQLite: its folder is writable)."""
    if urlparse(uri).scheme == "sqlite":
        _check_sqlite_folder(uri, where)
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri, connect_args=_timeout_arguments(uri))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - driver errors have no common base outside SQLAlchemy
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise UsageError(
            f"The database does not connect. Received: {where} {hide_password(uri)} ({reason[0] if reason else error})."
            " Expected a reachable database that exists, with that user and password. Fix: check host, port, "
            "database name and password (`psql URL` tries the same connection); create the database first "
            "(README, Team setup)."
        ) from None


def _timeout_arguments(uri):
    scheme = urlparse(uri).scheme.split("+")[0]
    return {"connect_timeout": 5} if scheme in ("postgresql", "mysql") else {}


def hide_password(uri):
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@", 1)
    return uri


def _check_sqlite_folder(uri, where):
    path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        return
    folder = Path(path).resolve().parent
    error = write_error(folder)
    if error is not None:
        raise UsageError(
            f"The SQLite store's folder cannot be written. Received: {where} {uri} ({folder}: "
            f"{error.strerror or error}). Expected a path in a writable folder (created if missing). Fix: e.g. "
            "--tracking-uri sqlite:///mlruns/mlflow.db, or omit it for the default store in ./mlruns."
        ) from None


def write_error(folder):
    """None if `folder` exists (created if missing) and takes a file, else the OSError that says why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as error:
        return error


def _request(url, timeout):
    request = urllib.request.Request(url)
    username, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if username and password:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}")
    return urllib.request.urlopen(request, timeout=timeout)


def check_server(uri, where="--tracking-uri", timeout=5):
    """Raise UsageError unless an MLflow server answers at `uri` and accepts our credentials."""
    base = uri.rstrip("/")
    try:
        with _request(f"{base}/health", timeout):
            pass
        # It answers: give a busy server time to check the password (a slow hash on purpose).
        with _request(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", 12 * timeout):
            return
    except urllib.error.HTTPError as error:
        if error.code == 401:
            who = os.environ.get("MLFLOW_TRACKING_USERNAME")
            received = f"MLFLOW_TRACKING_USERNAME={who} and its password" if who else "no credentials"
            raise UsageError(
                f"The MLflow server refused the credentials (HTTP 401). Received: {where} {uri} with {received}. "
                f"Expected the user name and password of an account on that server. {CREDENTIALS_FIX}"
            ) from None
        if error.code == 403:
            raise UsageError(
                f"The MLflow server denies this account access (HTTP 403). Received: {where} {uri} as "
                f"{os.environ.get('MLFLOW_TRACKING_USERNAME')}. Expected an account with at least READ permission."
                " Fix: ask the server's admin to grant it."
            ) from None
        return  # anything else answered: MLflow reports what follows
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(
            f"No MLflow tracking server answers. Received: {where} {uri} ({reason}). Expected a running MLflow "
            "server at that address. Fix: start it (`mlflow server`, `dlsuite server` or `dlsuite ui`), or omit "
            "--tracking-uri for the default SQLite store in ./mlruns."
        ) from None


def permission_error(error, what, uri):
    """A UsageError for an MlflowException that is MLflow's PERMISSION_DENIED (HTTP 403), else None."""
    if getattr(error, "error_code", None) != "PERMISSION_DENIED" and "403" not in str(error)[:200]:
        return None
    return UsageError(
        f"No permission to {what} on the MLflow server (HTTP 403). Received: --tracking-uri {uri} as "
        f"{os.environ.get('MLFLOW_TRACKING_USERNAME')}. Expected EDIT (or MANAGE) permission on that experiment. "
        "Fix: pass --experiment NAME of an experiment of your own (it is created for you), or ask the "
        "experiment's owner or the admin to grant you EDIT on it."
    )
