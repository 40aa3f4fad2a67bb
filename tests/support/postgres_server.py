"""A real PostgreSQL server for the tests: Debian's `postgresql` package, a fresh
cluster in a temporary folder on a free port, password authentication, the unix socket
in the same folder, stopped and removed at the end.

PostgreSQL refuses to run as root, so under root the cluster belongs to an unprivileged
user (the package's `postgres`, else a `tokenbudget` system user made for it) and its
programs run through `runuser`. Durability is switched off (fsync): the tests kill
clients, never the server, and a cluster that lives for one session need not survive
a power cut."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from itertools import count

SUPERUSER = "tokenbudget"


def _bin_dir() -> str | None:
    """The newest installed server's programs (Debian keeps each major version apart)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def missing_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if _bin_dir() is None:
        return ("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): "
                "apt-get install postgresql")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The user the server runs as when we are root; None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SUPERUSER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    SUPERUSER], check=True)
    return SUPERUSER


class PostgresServer:
    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise RuntimeError(missing_reason())
        self.bin_dir = bin_dir
        self.password = secrets.token_urlsafe(12)
        self.port = 0
        self.root = ""
        self._user = _server_user()
        self._names = count(1)

    def _run(self, program: str, *args: str) -> None:
        cmd = [os.path.join(self.bin_dir, program), *args]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = os.path.join(self.root, "server.log")
            tail = open(log).read()[-2000:] if os.path.exists(log) else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}"
                               f"\n{tail}")

    def start(self) -> None:
        self.root = tempfile.mkdtemp(prefix="tokenbudget-pg-")  # short: the socket path
        pwfile = os.path.join(self.root, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password)
        if self._user is not None:
            uid = pwd.getpwnam(self._user).pw_uid
            os.chown(self.root, uid, -1)
            os.chown(pwfile, uid, -1)
        data = os.path.join(self.root, "data")
        self._run("initdb", "-D", data, "-U", SUPERUSER, f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8")
        os.remove(pwfile)
        self.port = _free_port()
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=300 -c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", data, "-l", os.path.join(self.root, "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        if not self.root:
            return
        try:
            self._run("pg_ctl", "-D", os.path.join(self.root, "data"), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = ""

    def url(self, database: str = "postgres") -> str:
        return (f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/"
                f"{database}")

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg
        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
