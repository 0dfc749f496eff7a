import sys

from botkit.shell.cli import main

sys.exit(main())
