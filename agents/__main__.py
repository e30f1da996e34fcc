"""python -m agents: the cxloop command."""

from agents.cli import main

main()
