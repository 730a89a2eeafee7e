"""``client.credits``: the account balance."""

from __future__ import annotations

from typing import final

from ._models import Credits
from ._resource import Resource
from ._serde import parse_credits

__all__ = ["CreditsResource"]


@final
class CreditsResource(Resource):
    """``await client.credits.get()``: the balance (free)."""

    async def get(self) -> Credits:
        """The account's credits: ``credits`` (monthly) and ``extra_credits`` (packs)."""
        return await self._call("GET", "/get-credits", parse_credits)
