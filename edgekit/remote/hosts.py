"""Where `edgekit bench --on HOST` runs: `local`, `ssh://[user@]host[:port]`, `docker://IMAGE`, or a
name from a hosts file that says, per host, how to reach it (SSH, with its own ssh config file), how
edgekit starts there (a venv's `edgekit`, or an image through `docker run`) and where its cache is.

```toml
# edgekit-hosts.toml (in the current folder, or ~/.config/edgekit/hosts.toml)
[pi5]
ssh = "pi@pi5.local"                 # what you would type after `ssh`; a Host of ~/.ssh/config works
edgekit = "~/edgekit/bin/edgekit"    # default: `edgekit` on the device's PATH

[gpu-box]
ssh = "ssh://me@gpu-box:2222"
docker = "edgekit:gpu"               # edgekit inside this image on that machine
docker_args = ["--gpus", "all"]

[laptop]
local = true
```"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgekit.deps import module_command
from edgekit.errors import ConfigError, UnknownNameError

HOSTS_FILE = "edgekit-hosts.toml"
KEYS = ("ssh", "port", "ssh_config", "edgekit", "docker", "docker_args", "workdir", "local")
# the device's cache when the hosts file names none: its own XDG cache folder, read there
DEFAULT_WORKDIR = "${XDG_CACHE_HOME:-$HOME/.cache}/edgekit/remote"


@dataclass(frozen=True)
class Host:
    """One device: how to reach it, how edgekit starts there, where its cache is."""

    name: str  # how tables and progress lines call it
    kind: str  # "local", "ssh" or "docker" (docker on this machine)
    destination: str = ""  # ssh: [user@]host, as ssh takes it
    port: int | None = None
    ssh_config: Path | None = None
    edgekit: tuple[str, ...] = ("edgekit",)  # the command on the device (inside the image with docker)
    docker: str | None = None  # the image, for kind "docker" or on an ssh host
    docker_args: tuple[str, ...] = ()
    workdir: str | None = None  # on the device; None: DEFAULT_WORKDIR

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ssh", "docker"):
            raise ConfigError(f"host {self.name}: unknown kind {self.kind!r}")
        if self.kind == "ssh" and not self.destination:
            raise ConfigError(f"host {self.name}: no ssh destination")
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"host {self.name}: port {self.port} is not a TCP port")
        if not self.edgekit:
            raise ConfigError(f"host {self.name}: the edgekit command is empty")
        for word in (self.name, self.destination, self.docker or "", *self.edgekit, *self.docker_args):
            if "\n" in word or "\0" in word:
                raise ConfigError(f"host {self.name}: a line break in {word!r}")

    @property
    def target(self) -> str:
        """The host as an --on value would give it (no secret: a user name at most)."""
        if self.kind == "ssh":
            where = f"ssh://{self.destination}" + (f":{self.port}" if self.port else "")
            return where + (f" (docker {self.docker})" if self.docker else "")
        if self.kind == "docker":
            return f"docker://{self.docker}"
        if self.docker:
            return f"local (docker {self.docker})"
        return (
            "local"
            if self.edgekit in (("edgekit",), local_host().edgekit)
            else f"local ({' '.join(self.edgekit)})"
        )


def local_host() -> Host:
    """This machine, running this very edgekit (the interpreter that runs this process)."""
    return Host("local", "local", edgekit=tuple(module_command("edgekit.cli")))


def parse_target(text: str, name: str | None = None, ssh_config: Path | None = None) -> Host:
    """A host from `local`, `ssh://[user@]host[:port]` or `docker://IMAGE`."""
    if text == "local":
        return local_host() if name in (None, "local") else Host(name, "local")
    if text.startswith("docker://"):
        image = text[len("docker://") :]
        if not image or any(c.isspace() for c in image):
            raise ConfigError(f"{text!r}: give the image as docker://NAME[:TAG]")
        return Host(name or image, "docker", docker=image)
    if text.startswith("ssh://"):
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as e:
            raise ConfigError(f"{text!r} is not ssh://[user@]host[:port]: {e}") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.password:
            raise ConfigError(
                f"{text!r} is not ssh://[user@]host[:port]"
                + (" (no password in it: edgekit logs in with keys only)" if parts.password else "")
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        dest = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        label = name or (host + (f":{port}" if port else ""))
        return Host(label, "ssh", destination=dest, port=port, ssh_config=ssh_config)
    raise ConfigError(f"{text!r} is not local, ssh://[user@]host[:port] or docker://IMAGE")


def _did_you_mean(name: str, names: list[str] | tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def default_hosts_file() -> Path | None:
    """`edgekit-hosts.toml` here, else `$XDG_CONFIG_HOME/edgekit/hosts.toml`; None if neither is."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    for path in (Path(HOSTS_FILE), config / "edgekit" / "hosts.toml"):
        if path.is_file():
            return path
    return None


def _toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read the hosts file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the hosts file {path} is not valid TOML: {e}") from None


def _from_table(name: str, table: Any, path: Path, ssh_config: Path | None) -> Host:
    where = f"{path}, host {name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: give its settings as a table ([{name}] with ssh = ..., or local = true)")
    for key in table:
        if key not in KEYS:
            raise ConfigError(
                f"{where}: unknown key {key!r}{_did_you_mean(key, KEYS)}; keys are {', '.join(KEYS)}"
            )

    def text(key: str) -> str | None:
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{where}: {key} must be a non-empty string")
        return value

    def local_path(value: str | None) -> Path | None:  # relative to the hosts file, ~ as here
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else path.parent / p

    ssh, docker, edgekit, workdir = text("ssh"), text("docker"), text("edgekit"), text("workdir")
    local = table.get("local", False)
    if not isinstance(local, bool):
        raise ConfigError(f"{where}: local must be true or false")
    if sum(bool(x) for x in (ssh, local)) > 1 or not (ssh or local or docker):
        raise ConfigError(f'{where}: give one of ssh = "[user@]host", local = true, or docker = "IMAGE"')
    args = table.get("docker_args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f'{where}: docker_args must be a list of strings, e.g. ["--gpus", "all"]')
    port = table.get("port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        raise ConfigError(f"{where}: port must be a whole number")
    try:
        words = tuple(shlex.split(edgekit)) if edgekit else ("edgekit",)
    except ValueError as e:
        raise ConfigError(f"{where}: edgekit = {edgekit!r} does not parse as a command: {e}") from None
    config = local_path(text("ssh_config")) or ssh_config
    if ssh:
        base = parse_target(ssh if ssh.startswith("ssh://") else f"ssh://{ssh}", name, config)
        return Host(
            name,
            "ssh",
            destination=base.destination,
            port=port if port is not None else base.port,
            ssh_config=config,
            edgekit=words,
            docker=docker,
            docker_args=tuple(args),
            workdir=workdir,
        )
    if docker and not local:
        return Host(name, "docker", docker=docker, docker_args=tuple(args), edgekit=words,
                    workdir=workdir)  # fmt: skip
    # a local host with no command of its own runs this very edgekit
    command = words if edgekit or docker else local_host().edgekit
    return Host(name, "local", edgekit=command, docker=docker, docker_args=tuple(args), workdir=workdir)


def load_hosts(path: Path, ssh_config: Path | None = None) -> dict[str, Host]:
    """Every host of a hosts file, by name."""
    doc = _toml(path)
    hosts = doc.get("hosts", doc) if isinstance(doc.get("hosts"), dict) else doc
    return {name: _from_table(name, table, path, ssh_config) for name, table in hosts.items()}


def resolve(names: list[str], hosts_file: Path | None = None, ssh_config: Path | None = None) -> list[Host]:
    """The hosts the --on values name, in their order; a name neither a target nor in the hosts file
    is one sentence with a "did you mean"."""
    if hosts_file is not None and not hosts_file.is_file():
        raise ConfigError(f"--hosts {hosts_file}: no such file")
    path = hosts_file or default_hosts_file()
    known = load_hosts(path, ssh_config) if path else {}
    out: list[Host] = []
    for text in names:
        if text in known:
            host = known[text]
        elif text == "local" or re.match(r"^(ssh|docker)://", text):
            host = parse_target(text, ssh_config=ssh_config)
        else:
            where = f"in {path}" if path else f"(no {HOSTS_FILE} here or in ~/.config/edgekit/hosts.toml)"
            raise UnknownNameError(
                f"--on {text}: not local, ssh://..., docker://... nor a host {where}"
                f"{_did_you_mean(text, list(known))}; for a machine of your ssh config, give ssh://{text}"
            )
        if any(h.name == host.name for h in out):
            raise ConfigError(f"--on {text}: {host.name} is named twice")
        out.append(host)
    return out
