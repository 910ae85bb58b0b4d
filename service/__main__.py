"""`python -m service [serve options]`: run the HTTP service (same as `whitened-search serve`)."""

import sys

from service.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
