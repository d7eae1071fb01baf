import sys

from gnnrec.cli import main

sys.exit(main())
