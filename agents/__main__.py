"""python -m agents: the cxloop command."""

from agents.cli.main import main

main()
