"""A throwaway team stack: a PostgreSQL cluster (initdb in a temporary folder, 127.0.0.1, a free port) and
`dlsuite server` (a real `mlflow server` with basic-auth and proxied folder artifacts) against it.

Used by tests/team/conftest.py and by hand (`python -m tests.team.stack FOLDER` starts one and prints its
addresses until Ctrl-C). As root, PostgreSQL's programs run as the user `postgres` (they refuse root).
"""

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.conftest import REPO, free_port

ADMIN_PASSWORD = "team-admin-password-1"
DATABASES = ("mlflow", "mlflow_auth", "optuna")


def postgres_bin():
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL is not installed (no initdb). Fix: apt-get install -y postgresql "
                       "(`python3 -m pipelines.bootstrap test` does it).")


def _as_postgres_user(command):
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Postgres:
    """`initdb` + `pg_ctl start` in a temporary folder; `url(database)` for SQLAlchemy; `stop()`."""

    def __init__(self):
        # Directly in the temporary folder: as root, every parent must be open to the postgres user.
        self.folder, self.port, self.bin = Path(tempfile.mkdtemp(prefix="dlsuite-postgres-")), free_port(), postgres_bin()
        self.data = self.folder / "pgdata"
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        run = lambda *command: subprocess.run(_as_postgres_user([str(self.bin / command[0]), *command[1:]]),
                                              check=True, capture_output=True, text=True, cwd="/")
        run("initdb", "-D", str(self.data), "-U", "dlsuite", "--auth=trust", "-E", "UTF8")
        run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c max_connections=200 -c fsync=off", "start")
        for database in DATABASES:
            run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "dlsuite", database)

    def url(self, database):
        return f"postgresql+psycopg://dlsuite@127.0.0.1:{self.port}/{database}"

    def stop(self):
        subprocess.run(_as_postgres_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
                       capture_output=True, cwd="/")
        shutil.rmtree(self.folder, ignore_errors=True)


class MlflowServer:
    """`dlsuite server` with basic-auth on `postgres`; `uri`, `admin` credentials; `stop()`."""

    def __init__(self, postgres, folder):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.artifacts = Path(folder) / "artifacts"
        self.log = open(Path(folder) / "mlflow-server.log", "w")
        environment = {**os.environ, "MLFLOW_FLASK_SERVER_SECRET_KEY": "team-secret-key",
                       "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            environment.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "server", "--backend-store-uri", postgres.url("mlflow"),
             "--artifacts-destination", str(self.artifacts), "--auth-database-uri", postgres.url("mlflow_auth"),
             "--port", str(self.port), "--workers", "2", "--auth-cache-seconds", "3600"],
            cwd=folder, env=environment, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}: "
                                   f"{Path(self.log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not answer within {timeout} s: {Path(self.log.name).read_text()[-3000:]}")

    def create_user(self, username, password):
        from mlflow.server.auth.client import AuthServiceClient

        with _credentials("admin", ADMIN_PASSWORD):
            AuthServiceClient(self.uri).create_user(username, password)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


class _credentials:
    """Set MLFLOW_TRACKING_USERNAME/PASSWORD for this process, restored afterwards."""

    NAMES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

    def __init__(self, username, password):
        self.values = dict(zip(self.NAMES, (username, password)))

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in self.NAMES}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    root = Path(sys.argv[1])
    database = Postgres()
    server = MlflowServer(database, root)
    print(f"postgres: {database.url('mlflow')} (optuna: {database.url('optuna')})\nmlflow: {server.uri} "
          f"(admin / {ADMIN_PASSWORD})", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        database.stop()
