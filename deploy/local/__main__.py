"""Run the local stack: `python -m deploy.local up`."""

import sys

from deploy.local.cli import main

sys.exit(main())
