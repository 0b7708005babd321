"""`edgekit bench --on HOST`: benchmark on the devices themselves (over the user's OpenSSH, through
`docker run`, or here) from one command, with the results merged and which file to deploy where.

The layer is narrow on purpose: on each device it runs that device's own `edgekit bench ... --out
FILE` (the CLI and the result file's schema are the contract), and it merges result files as
`edgekit compare` does. Modules: `hosts` (targets and the hosts file), `transport` (sh here or the
ssh client), `device` (the shell scripts: preflight, digest cache, lock, watchdog), `protocol` (rows
streamed as they finish), `fleet` (the hosts in parallel, failures, Ctrl-C), `advice` (what to deploy
where). The command's entry is `fleet.bench_on`; this package imports nothing itself, so that a
device's `edgekit bench --stream-rows` reads only `protocol`."""

from __future__ import annotations
