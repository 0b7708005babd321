"""How a shell script reaches a device: `sh -c` here, or through the user's own OpenSSH client, so
that ~/.ssh/config, keys, the agent, ProxyJump and known_hosts work as they do in a terminal.

edgekit adds only what keeps a fleet honest: `BatchMode=yes` (never a password or passphrase
prompt: edgekit asks for no secret and stores none) and `StrictHostKeyChecking=yes` (an unknown
host key is refused whatever the config says; `failure` says how to add it), both on the command
line, where they win over any config file. What ssh says when it cannot connect becomes one sentence
with its remedy."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass

from edgekit.remote.hosts import Host

SSH_OPTIONS = (
    "-T",  # no terminal: nothing is echoed, stdout and stderr stay apart
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "ConnectTimeout=15",
    # a device that vanishes (unplugged, out of Wi-Fi) is noticed within a minute
    "-o", "ServerAliveInterval=15",
    "-o", "ServerAliveCountMax=4",
    "-o", "LogLevel=ERROR",  # errors only: no banner-like warnings in every progress line
)  # fmt: skip


@dataclass(frozen=True)
class Transport:
    """Runs a POSIX shell script on the host's machine; the script's stdin is the connection."""

    host: Host

    @property
    def is_ssh(self) -> bool:
        return self.host.kind == "ssh"

    def ssh_base(self) -> list[str]:
        cmd = ["ssh"]
        if self.host.ssh_config is not None:
            cmd += ["-F", str(self.host.ssh_config)]
        if self.host.port:
            cmd += ["-p", str(self.host.port)]
        return cmd

    def argv(self, script: str) -> list[str]:
        """The command that runs `script` with sh on the device. Over ssh the remote shell (whatever
        the user's login shell is) is given `exec sh -c 'SCRIPT'`: sh reads the script, not fish or
        zsh, and takes the shell's place as the leader of the session sshd made for the command."""
        if not self.is_ssh:
            return ["sh", "-c", script]
        command = "exec sh -c " + shlex.quote(script)  # exec: sh leads the session sshd made for it
        return [*self.ssh_base(), *SSH_OPTIONS, self.host.destination, "--", command]

    def popen(self, script: str) -> subprocess.Popen:
        """Start the script with pipes on all three streams, in a session of its own (here, `sh` as
        sshd starts a command on a device; over ssh, the client): Ctrl-C then reaches edgekit only,
        which ends each run by closing its input (the script stops its process group on that), and
        the script's own stop by process group cannot reach this process."""
        return subprocess.Popen(
            self.argv(script),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def resolved(self) -> dict[str, str]:
        """What ssh makes of the destination with the user's config (`ssh -G`: no connection)."""
        if not self.is_ssh:
            return {}
        try:
            out = subprocess.run(
                [*self.ssh_base(), "-G", self.host.destination],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        found: dict[str, str] = {}
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            found.setdefault(key.lower(), value.strip())
        return found

    def failure(self, stderr: str) -> str:
        """One sentence, with its remedy, for an ssh that could not run the command (exit 255)."""
        info = self.resolved()
        name = info.get("hostname") or self.host.destination.rpartition("@")[2]
        port = info.get("port") or (str(self.host.port) if self.host.port else "22")
        user = info.get("user") or self.host.destination.rpartition("@")[0]
        known = (info.get("userknownhostsfile") or "~/.ssh/known_hosts").split()[0]
        p = f" -p {port}" if port != "22" else ""
        cfg = f" -F {shlex.quote(str(self.host.ssh_config))}" if self.host.ssh_config else ""
        at = f"{user}@{name}" if user else name
        where = f"{name} port {port}"
        text = stderr.strip()
        last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "no message from ssh")
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or re.search(
            r"Host key for .* has changed", text
        ):
            entry = f"[{name}]:{port}" if port != "22" else name
            return (
                f"the host key of {where} is not the one saved in {known} (a reinstalled device, or "
                f"someone in between): if you know why, remove the old one with `ssh-keygen -R "
                f"{shlex.quote(entry)} -f {known}` and add the new one with `ssh-keyscan{p} {name} >> {known}`"
            )
        if "Host key verification failed" in text or re.search(r"No \S+ host key is known", text):
            return (
                f"the host key of {where} is not known here, and edgekit never accepts one unseen: "
                f"compare `ssh-keyscan{p} {name} | ssh-keygen -lf -` with `ssh-keygen -lf "
                f"/etc/ssh/ssh_host_ed25519_key.pub` on the device, then `ssh-keyscan{p} {name} >> {known}` "
                f"(or connect once with `ssh{cfg}{p} {at}` and answer yes)"
            )
        if "Permission denied" in text:
            return (
                f"{where} refused the login{' of ' + user if user else ''} ({last.split(': ', 1)[-1]}): "
                f"edgekit logs in with keys only, never a password: `ssh-copy-id{p} {at}`, or name the "
                "key with IdentityFile in your ssh config (--ssh-config), or add it to the agent (`ssh-add KEY`)"
            )
        if "Connection refused" in text:
            return f"cannot reach {where}: connection refused (is sshd running there, on that port?)"
        if "Could not resolve hostname" in text:
            return f"cannot reach {name}: this machine cannot resolve the name (check it, or HostName in your ssh config)"
        if re.search(r"timed out|No route to host|Network is unreachable|Connection reset", text):
            return f"cannot reach {where}: {last.split(': ', 1)[-1]} (is the device on and on the network?)"
        return f"ssh to {at}{p} failed: {last}"
