"""The POSIX shell scripts edgekit runs on a device (over ssh, or with sh here): the benchmark,
locked, watched and stopped with the connection, and the files it lacks.

One script does the work: it checks edgekit and the files are there (else it says what is missing
and ends: it runs again with the files it lacks as a tar stream on its stdin, so a cached run is one
connection and a first run two), then runs the bench. The device keeps a cache folder (the host's `workdir`, by default its own XDG cache folder):

    files/SHA256/NAME    every file ever sent, by the digest of its content (sent once)
    lock/pid             the bench running now: one at a time per device
    runs/ID/             one bench's result file, removed when it has been sent back

A benchmark runs with its connection as its lifeline: the script reads its stdin, which only ends
when the connection does (Ctrl-C here, a dead link, a killed ssh), and then stops the process group
it leads (sshd makes every command a session leader; `Transport.popen` does the same here), so no
edgekit and no row's child process is left behind on the device."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from edgekit.remote.hosts import DEFAULT_WORKDIR, Host


class Code(str):
    """Shell code, put into a script as it is (a word like `"$W/files/"'ab12/m.tflite'`)."""


def word(text: str) -> str:
    """A shell word for a path or argument; a leading `~/` becomes the device's `$HOME/`."""
    if text == "~":
        return '"$HOME"'
    if text.startswith("~/"):
        return '"$HOME"/' + shlex.quote(text[2:])
    return shlex.quote(text)


def workdir(host: Host) -> str:
    """Shell code that sets W to the device's cache folder (absolute, as docker's -v needs)."""
    if host.workdir is None:
        return f'W="{DEFAULT_WORKDIR}"'
    w = word(host.workdir)
    return f'W={w}; case "$W" in /*) ;; *) W="$HOME/$W" ;; esac'


@dataclass(frozen=True)
class Staged:
    """A local file and where it lives on the device: files/DIGEST/NAME."""

    local: str
    digest: str
    name: str

    @property
    def rel(self) -> str:
        return f"{self.digest}/{self.name}"

    def on_device(self) -> Code:
        return Code(f'"$W/files/"{shlex.quote(self.rel)}')


def _launcher(host: Host, args: Sequence[str], run_id: str) -> str:
    """Shell words that start the device's edgekit with `args`: its own command, or the same inside
    the host's image with the cache mounted at the same path (read-only) and the run folder writable."""
    edgekit = " ".join(word(w) for w in host.edgekit)
    rest = " ".join(a if isinstance(a, Code) else shlex.quote(a) for a in args)
    if not host.docker:
        return f"{edgekit} {rest}"
    extra = " ".join(shlex.quote(a) for a in host.docker_args)
    return (
        f'docker run --rm --name edgekit-bench-{run_id} --network none --user "$(id -u):$(id -g)" '
        f'-e HOME=/tmp -v "$W/files:$W/files:ro" -v "$R:$R" {extra} {shlex.quote(host.docker)} '
        f"{edgekit} {rest}"
    )


def _preflight(host: Host, staged: Sequence[Staged]) -> str:
    """Before the lock: is edgekit (or docker and its image) there, else the platform for the install
    command (exit 127, or 69 for docker); which files the cache lacks (exit 75, one `missing` line
    each: they are sent, and the script runs again)."""
    if host.docker:
        image = shlex.quote(host.docker)
        check = f"""if ! command -v docker >/dev/null 2>&1; then say "docker missing"; exit 69; fi
if ! docker image inspect {image} >/dev/null 2>&1; then
  if docker info >/dev/null 2>&1; then say "docker no-image"; else say "docker no-daemon"; fi
  exit 69
fi"""
    else:
        check = f"""if ! command -v {word(host.edgekit[0])} >/dev/null 2>&1; then
  say no-edgekit; say "fact arch=$(uname -m)"; say "fact system=$(uname -s)"
  command -v python3 >/dev/null 2>&1 && say "fact python=$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null)"
  [ -r /etc/os-release ] && (. /etc/os-release; say "fact distro=$ID $VERSION_ID")
  command -v nvidia-smi >/dev/null 2>&1 && say "fact nvidia=yes"
  exit 127
fi"""
    lack = "".join(
        f'[ -e "$W/files/"{q} ] || {{ say missing {q}; lacking=1; }}\n'
        for q in (shlex.quote(s.rel) for s in staged)
    )
    return f'{check}\nlacking=\n{lack}[ -z "$lacking" ] || exit 75'


def _receive(staged: Sequence[Staged], run_id: str) -> str:
    """Unpack the tar stream of DIGEST/NAME entries that comes first on stdin into the cache; each
    entry is moved into place in one rename once the whole stream has arrived, so a cut connection
    leaves no half file there. tar stops at the archive's end: what follows on stdin (nothing, until
    the connection ends) is the watchdog's."""
    moves = "".join(
        f'mkdir -p "$W/files/"{shlex.quote(s.digest)} && mv -f "$I/"{shlex.quote(s.rel)} '
        f'"$W/files/"{shlex.quote(s.rel)} || {{ say "error cannot store {s.name} in $W/files"; exit 73; }}\n'
        for s in staged
    )
    return f"""I="$W/incoming-{run_id}"
mkdir -p "$I" "$W/files" || {{ say "error cannot make $W/files"; exit 70; }}
command -v tar >/dev/null 2>&1 || {{ say "error the device has no tar"; rm -rf "$I"; exit 72; }}
tar -xf - -C "$I" || {{ say "error the files did not arrive whole"; rm -rf "$I"; exit 71; }}
{moves}rm -rf "$I"
say received"""


def run_script(
    host: Host, staged: Sequence[Staged], args: Sequence[str], run_id: str, send: Sequence[Staged] = ()
) -> str:
    """Receive the files `send` (a tar stream first on stdin); check edgekit and the files are there
    (`_preflight`); take the device's lock (waiting for a bench already running there; a lock whose
    process is gone is stale and taken over); run edgekit with `args` in the background, stop its
    whole process group if the connection ends first, then send the result file on stdout."""
    stop_container = f"docker rm -f edgekit-bench-{run_id} >/dev/null 2>&1; " if host.docker else ""
    stop_container_tail = stop_container.rstrip("; ") or ":"
    return f"""{workdir(host)}
R="$W/runs/{run_id}"
say() {{ printf '@edgekit-remote: %s\\n' "$*" >&2; }}
alive() {{ kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]; }}
{_receive(send, run_id) if send else ""}
{_preflight(host, staged)}
mkdir -p "$W/runs" || {{ say "error cannot make $W/runs"; exit 70; }}
waited=
while ! mkdir "$W/lock" 2>/dev/null; do
  holder=$(cat "$W/lock/pid" 2>/dev/null)
  if [ -n "$holder" ]; then
    alive "$holder" || {{ rm -rf "$W/lock"; continue; }}
  elif [ -n "$(find "$W/lock" -prune -mmin +1 2>/dev/null)" ]; then
    rm -rf "$W/lock"; continue
  fi
  [ -n "$waited" ] || say "wait ${{holder:-?}}"
  waited=1
  sleep 1
done
echo $$ > "$W/lock/pid"
trap 'rm -rf "$R" "$W/lock"' EXIT
trap 'exit 143' TERM HUP
# the lock says no bench runs here: a run folder left is one whose process was killed outright (and
# a transfer's folder an hour old is one whose connection was)
for old in "$W"/runs/*; do [ -e "$old" ] && rm -rf "$old"; done
find "$W" -maxdepth 1 -name 'incoming-*' -mmin +60 -exec rm -rf {{}} + 2>/dev/null
mkdir -p "$R" || exit 70
pg=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
[ -n "$pg" ] || pg=$(cut -d' ' -f5 /proc/$$/stat 2>/dev/null)
say start
# a background job's stdin is /dev/null unless redirected: the watchdog reads the connection as fd 3
exec 3<&0
{_launcher(host, args, run_id)} </dev/null >/dev/null 3<&- &
job=$!
(
  trap '' TERM
  while read -r _; do :; done
  {stop_container}if [ "$pg" = "$$" ]; then
    kill -TERM 0; sleep 2; kill -KILL 0
  else
    pkill -TERM -P "$job"; kill -TERM "$job"; sleep 2; pkill -KILL -P "$job"; kill -KILL "$job"
  fi
) <&3 >/dev/null 2>&1 &
dog=$!
exec 3<&-
wait "$job"
rc=$?
kill -KILL "$dog" 2>/dev/null
# a row's child outlives a killed bench (it is the group's, not the bench's, once orphaned)
if [ "$pg" = "$$" ]; then trap '' TERM; kill -TERM 0 2>/dev/null; trap 'exit 143' TERM; fi
[ "$rc" = 0 ] || {stop_container_tail}
say "exit $rc"
[ -f "$R/result.json" ] && cat "$R/result.json"
exit "$rc"
"""


def bench_args(files: Sequence[Staged], options: Sequence[str], stream: bool) -> list[str]:
    """`bench FILES OPTIONS --out RUN/result.json [--stream-rows]`, files and output on the device."""
    out = ["bench", *[s.on_device() for s in files], *options, "--out", Code('"$R/result.json"')]
    return [*out, "--stream-rows"] if stream else out


def install_advice(facts: dict[str, str], host: Host, hosts_file: str) -> str:
    """How to install edgekit on that device, from the facts the script read there."""
    system, arch = facts.get("system", "?"), facts.get("arch", "?")
    python = facts.get("python", "")
    spec = "edgekit"
    if arch in ("armv7l", "armv6l"):
        spec = '"edgekit[tflite-runtime]"'  # ai-edge-litert has no 32-bit ARM wheel
    elif facts.get("nvidia"):
        spec = '"edgekit[gpu]"'
    distro = facts.get("distro", "")
    pi_like = arch == "aarch64" and re.match(r"(debian|raspbian)\b", distro)
    venv = "python3 -m venv --system-site-packages ~/edgekit" if pi_like else "python3 -m venv ~/edgekit"
    install = f"`{venv} && ~/edgekit/bin/pip install {spec}`"
    then = (
        f', then give it `edgekit = "~/edgekit/bin/edgekit"` in {hosts_file}'
        " (a non-interactive ssh session does not read your shell's profile, so the PATH it has may lack it)"
    )
    if not python:
        return (
            f"{system} {arch} with no python3: install Python 3.10-3.13 there (Debian, Raspberry Pi OS: "
            f"`sudo apt install python3-venv`), then {install}{then}"
        )
    version = tuple(int(x) for x in re.findall(r"\d+", python)[:2])
    if version < (3, 10):
        return f"{system} {arch} with Python {python}: edgekit needs Python 3.10 or newer there"
    return f"install it there ({system} {arch}, Python {python}): {install}{then}"
