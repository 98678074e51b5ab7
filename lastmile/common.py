"""What every lastmile verb shares: where the repository and its stack files are, and how a verb refuses input."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = REPO_ROOT / "stacks"


class Refused(Exception):
    """Input a verb refuses (unknown stack, bad argument): ``lastmile`` prints the message and exits 2."""
