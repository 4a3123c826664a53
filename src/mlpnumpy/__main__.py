"""``python -m mlpnumpy ...``: the same command line as ``mlpnumpy ...``."""
import sys

from .cli.commands import main

sys.exit(main())
