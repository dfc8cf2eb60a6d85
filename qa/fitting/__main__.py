"""`python -m qa.fitting ...` (see `qa.fitting`)."""

import sys

from qa.fitting.command import main

sys.exit(main())
