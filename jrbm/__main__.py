import sys

from jrbm.cli import main

sys.exit(main())
