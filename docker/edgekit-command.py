#!/usr/bin/env python3
"""`edgekit` for a package installed with `pip install --target` (the Pi image, as
/usr/local/bin/edgekit): pip's own console script would name the build machine's Python.

A file run by its path, not `python3 -c`: Python then puts this file's folder first on sys.path,
never the working folder, on every Python version. With `-c`, a checkout as the working folder
(`docker run -v "$PWD:/work"` from a clone's root) put its edgekit/ folder before the installed
package, and that folder is not the package: pyproject maps runtime/, export/ and models/ into it.
Its name has a hyphen so that nothing can import it as `edgekit` from docker/.
"""

import sys

sys.argv[0] = "edgekit"
from edgekit.cli import main  # noqa: E402  (after argv[0]: the CLI names itself from it)

sys.exit(main())
