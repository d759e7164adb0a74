"""``python -m interpolants.cli``: the ``interpolants`` command."""

import sys

from ._main import main

sys.exit(main())
