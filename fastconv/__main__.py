"""``python -m fastconv COMMAND``: the same as the ``fastconv`` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
