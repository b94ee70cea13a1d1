"""Allow `python -m quet`."""

from quet.cli.main import main

main()
