#!/bin/sh
# `edgekit` for a package installed with `pip install --target` (the Pi image): pip's own console
# script would name the build machine's Python.
exec python3 -c 'import sys; sys.argv[0] = "edgekit"; from edgekit.cli import main; sys.exit(main())' "$@"
