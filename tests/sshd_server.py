"""A real OpenSSH server for tests (and bench/remote_overhead.py): Debian's `sshd`, started as the
current user on a free loopback port, with a host key and a client key made for it, and the client
side as a user has it: an ssh config file naming the key, the port and a known_hosts file that holds
the server's key (DESIGN.md: "Facts for the live view, the remote bench ...")."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def missing() -> str | None:
    """Why no server can start here (None: it can)."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "needs OpenSSH's sshd and client (Debian: apt-get install openssh-server; .ci/run does)"
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        try:  # sshd run by root wants its privilege separation folder, as the Debian service makes it
            Path("/run/sshd").mkdir(mode=0o755)
        except OSError as e:
            return f"sshd run by root needs /run/sshd: {e}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)], check=True)
    return path


class Sshd:
    """`sshd -D` on 127.0.0.1:PORT whose sessions have `path` as their PATH; `config()` writes a
    client config for it."""

    def __init__(self, root: Path, path: str, name: str = "sshd") -> None:
        self.root = root / name
        self.root.mkdir(parents=True)
        self.port = free_port()
        self.host_key = keygen(self.root / "host_key")
        self.client_key = keygen(self.root / "client_key")
        (self.root / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        self.known_hosts = self.root / "known_hosts"
        kind, key = Path(f"{self.host_key}.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {key}\n")
        self.log = self.root / "sshd.log"
        (self.root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\nPidFile {self.root / 'sshd.pid'}\n"
            f"UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"Subsystem sftp internal-sftp\nSetEnv PATH={path}\n"
        )
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115 (sshd keeps it for its life)
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd ended: {self.log.read_text()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def config(self, name: str = "ssh_config", *, key: Path | None = None, known: Path | None = None) -> Path:
        """A client config for 127.0.0.1 on this port: this key (the authorised one by default) and
        this known_hosts file (the one holding the server's key by default)."""
        path = self.root / name
        path.write_text(
            f"Host 127.0.0.1\n  Port {self.port}\n  IdentityFile {key or self.client_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {known or self.known_hosts}\n  IdentityAgent none\n"
        )
        return path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
