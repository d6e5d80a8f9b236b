"""The team stack for tests/team: one real PostgreSQL cluster and one real `mlflow server` with basic-auth
and proxied folder artifacts (tests/team/stack.py), started once per session and stopped at the end.

Each test gets its own MLflow user (`team_user`): the environment a team member's shell would have
(MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD), set in this process too.
"""

import itertools
import types

import pytest

from tests.team.stack import ADMIN_PASSWORD, MlflowServer, Postgres

_users = itertools.count()


@pytest.fixture(scope="session")
def team_stack(tmp_path_factory):
    database = Postgres()
    try:
        server = MlflowServer(database, tmp_path_factory.mktemp("mlflow-server"))
    except BaseException:
        database.stop()
        raise
    yield types.SimpleNamespace(database=database, server=server, uri=server.uri)
    server.stop()
    database.stop()


@pytest.fixture
def team_user(team_stack, monkeypatch):
    """A new MLflow account; its credentials and the server in the environment (and `env` for the CLI)."""
    import mlflow

    name, password = f"user{next(_users)}", "user-password-123"
    team_stack.server.create_user(name, password)
    env = {"MLFLOW_TRACKING_URI": team_stack.uri, "MLFLOW_TRACKING_USERNAME": name,
           "MLFLOW_TRACKING_PASSWORD": password}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    mlflow.set_tracking_uri(team_stack.uri)
    return types.SimpleNamespace(name=name, password=password, env=env, uri=team_stack.uri,
                                 admin=("admin", ADMIN_PASSWORD))
