"""``python -m motcua``: the ``motcua`` command."""

import sys

from motcua.cli import main

sys.exit(main())
