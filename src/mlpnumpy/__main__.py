"""``python -m mlpnumpy ...``: the same command line as ``mlpnumpy ...``."""
import sys

from .cli import main

sys.exit(main())
