"""Blue/green slots: shared vocabulary of components and stack config.

Blue/green is data: loop over ``Slot``, switch with one ``active_slot`` value.
"""

from __future__ import annotations

from enum import StrEnum


class Slot(StrEnum):
    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> "Slot":
        return Slot.GREEN if self is Slot.BLUE else Slot.BLUE
