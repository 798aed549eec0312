"""Error answers: a validation error names the field and says what is wrong, nothing more.

The input is not echoed back: it may be large, and values such as 1e400 (infinity)
cannot even be written as JSON, which would turn a client's mistake into a 500.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "invalid")), "type": str(error.get("type", ""))}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)
