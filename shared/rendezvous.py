"""Before a worker starts TensorFlow's cluster: check, with a deadline, that every other worker is up.

TensorFlow's MultiWorkerMirroredStrategy waits for the other workers inside native code that holds the
interpreter (no timeout, no signal ends it cleanly), so a worker whose peers never come would hang. Here each
worker first listens on its own cluster port and connects to every peer's, saying who it is. It goes on once it
has reached every peer and every peer has reached it (then each peer has also reached everyone), closes its
listener and lets TensorFlow bind the port; otherwise `UsageError` after `timeout` seconds.
"""

import socket
import threading
import time

from shared.errors import UsageError


def wait_for_peers(cluster, timeout, timeout_variable):
    """Return when every task of `cluster` (a `shared.distribute.Cluster`) is up; UsageError after `timeout`."""
    me = f"{cluster.task_type}:{cluster.task_index}"
    peers = {f"{job}:{index}": address for job, addresses in cluster.jobs.items()
             for index, address in enumerate(addresses)}
    del peers[me]
    heard_from, reached = set(), set()
    listener = socket.create_server(("", _port(cluster.address)), reuse_port=False)
    listener.settimeout(0.2)
    stop = threading.Event()
    thread = threading.Thread(target=_accept, args=(listener, heard_from, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not (reached >= set(peers) and heard_from >= set(peers)):
            if time.monotonic() > deadline:
                missing = sorted(name for name in peers if name not in reached or name not in heard_from)
                raise UsageError(
                    f"This worker ({me} at {cluster.address}) could not reach every worker of its cluster within "
                    f"{timeout:g} s. Received: cluster {sorted(peers.values())}; not reached: "
                    f"{', '.join(f'{name} at {peers[name]}' for name in missing)}. Expected all "
                    f"{cluster.num_workers} workers started with the same cluster and reachable at those addresses. "
                    f"Fix: start every worker, check the addresses and firewalls, or raise {timeout_variable}.")
            for name in sorted(set(peers) - reached):
                if _say_hello(peers[name], me):
                    reached.add(name)
            time.sleep(0.2)
        time.sleep(1.0)  # peers that were last to hear from us still get a moment to finish their own check
    finally:
        stop.set()
        thread.join()
        listener.close()


def _port(address):
    return int(address.rsplit(":", 1)[1])


def _accept(listener, heard_from, stop):
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except OSError:
            continue
        with connection:
            connection.settimeout(2)
            try:
                heard_from.add(connection.recv(64).decode().strip())
            except OSError:
                pass


def _say_hello(address, me):
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1) as connection:
            connection.sendall(f"{me}\n".encode())
        return True
    except OSError:
        return False
