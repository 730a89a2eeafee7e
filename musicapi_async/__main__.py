"""``python -m musicapi_async``: the ``musicapi`` command (needs the ``cli`` extra)."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    main()
