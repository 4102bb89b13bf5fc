"""``python -m services.cli``: the ``nudge`` command, for a checkout without the script."""

from services.cli import main

main()
