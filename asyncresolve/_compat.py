"""Small shims over Python-version differences."""

from __future__ import annotations

import asyncio
import sys
from contextlib import AbstractAsyncContextManager
from typing import Any

if sys.version_info >= (3, 11):

    def timeout_at(deadline: float) -> AbstractAsyncContextManager[Any]:
        """Raise ``TimeoutError`` in the block when the loop clock passes ``deadline``."""
        return asyncio.timeout_at(deadline)

else:  # pragma: no cover - exercised on 3.10 only
    import anyio

    def timeout_at(deadline: float) -> AbstractAsyncContextManager[Any]:
        return anyio.fail_after(deadline - asyncio.get_running_loop().time())  # type: ignore[return-value]
