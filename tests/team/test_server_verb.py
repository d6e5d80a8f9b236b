"""`dlsuite server` refuses a stack it cannot start, before starting anything (the session's stack in
tests/team/conftest.py is started by it, so its success is what every other team test stands on)."""

import socket

import pytest

from pipelines.server import client_host, server, server_command, write_auth_config
from shared.errors import UsageError
from tests.conftest import free_port, run_cli, start_cli_server, stop_server, wait_for_http


def test_a_database_that_does_not_connect_exits_2(tmp_path):
    port = free_port()
    result = run_cli("server", "--backend-store-uri", f"postgresql://mlflow:secret@127.0.0.1:{port}/mlflow",
                     "--artifacts-destination", tmp_path / "artifacts")
    assert result.returncode == 2
    assert (f"dlsuite: error: The database does not connect. Received: --backend-store-uri "
            f"postgresql://mlflow:***@127.0.0.1:{port}/mlflow (") in result.stderr
    assert "secret" not in result.stderr


def test_authentication_needs_its_secrets_and_the_artifacts_a_writable_folder(team_stack, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_FLASK_SERVER_SECRET_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    database = team_stack.database
    with pytest.raises(UsageError, match=r"^The authenticated server needs secrets in the environment\. Received: "
                                         r"MLFLOW_FLASK_SERVER_SECRET_KEY, MLFLOW_AUTH_ADMIN_PASSWORD unset"):
        server(database.url("mlflow"), str(tmp_path / "artifacts"), auth_database_uri=database.url("mlflow_auth"))
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"^The artifacts destination is not a writable folder\. Received: "
                                         r"--artifacts-destination .*/file/artifacts"):
        server(database.url("mlflow"), str(tmp_path / "file" / "artifacts"))


def test_the_command_is_mlflow_server_with_proxied_artifacts_and_basic_auth():
    command = server_command("postgresql://db/mlflow", "s3://bucket/prefix", "0.0.0.0", 5000, 4, "auth.ini",
                             "mlflow-host:5000")
    assert command[1:] == ["-m", "mlflow", "server", "--backend-store-uri", "postgresql://db/mlflow",
                           "--artifacts-destination", "s3://bucket/prefix", "--serve-artifacts", "--host", "0.0.0.0",
                           "--port", "5000", "--workers", "4", "--allowed-hosts", "mlflow-host:5000",
                           "--app-name", "basic-auth"]


def test_clients_are_told_the_machine_name_when_the_server_listens_everywhere():
    assert client_host("0.0.0.0") == socket.getfqdn() != "0.0.0.0"
    assert client_host("127.0.0.1") == "127.0.0.1"


def test_the_auth_cache_is_mlflows_ttl_and_refuses_a_negative_time(tmp_path):
    assert "auth_cache_ttl_seconds = 60\n" in write_auth_config("sqlite:///x.db", tmp_path, "EDIT", 60).read_text()
    assert "auth_cache" not in write_auth_config("sqlite:///x.db", tmp_path).read_text()  # MLflow's default: none
    with pytest.raises(UsageError, match=r"^Invalid --auth-cache-seconds\. Received: --auth-cache-seconds -1\. "):
        server("postgresql://db/mlflow", str(tmp_path / "artifacts"), auth_cache_seconds=-1)


def test_sigterm_to_the_verb_stops_the_mlflow_server_it_started(tmp_path):
    """A service manager stops `dlsuite server` with SIGTERM to its process alone: the MLflow server and its
    uvicorn workers go with it (before, only Ctrl-C did, and SIGTERM left the port served by orphans)."""
    import signal
    import urllib.error
    import urllib.request

    port = free_port()
    process = start_cli_server("server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                               "--artifacts-destination", tmp_path / "artifacts", "--port", port, "--workers", 1)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        process.send_signal(signal.SIGTERM)  # the verb only, not its process group
        assert process.wait(timeout=60) == 143
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        if process.poll() is None:
            stop_server(process)
