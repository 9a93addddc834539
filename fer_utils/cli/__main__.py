"""``python -m fer_utils.cli``: the ``fer`` command."""

import sys

from fer_utils.cli import main

sys.exit(main())
