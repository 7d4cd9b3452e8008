"""The simulated payment provider as a process of its own, so it outlives a replica that dies.

`python -m regional_api.payments.simulator --port 8090 --latency-ms 300` serves the same
simulated provider that runs in process by default; replicas use it when
`REGIONAL_PAYMENT_PROVIDER_URL` points at it.
"""

import argparse
from dataclasses import asdict
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from regional_api.payments.provider import ProviderResult, SimulatedProvider


class ChargeRequest(BaseModel):
    """One charge, as a replica sends it."""

    amount_minor: int
    currency: str
    method: str
    card_number: str | None = None
    reference: str


def create_app(latency_seconds: float = 0.3) -> FastAPI:
    """The provider's HTTP API over one in-memory ledger."""
    provider = SimulatedProvider(timeout_seconds=3600.0, latency_seconds=latency_seconds)
    app = FastAPI(title="Simulated payment provider")
    app.state.provider = provider

    @app.post("/charges")
    async def charge(body: ChargeRequest) -> dict[str, Any]:
        """Charge by the rules of the test cards."""
        return _body(await provider.charge(**body.model_dump()))

    @app.get("/charges")
    async def charges() -> dict[str, Any]:
        """Every booked charge and refund, and the charges answered at once (now and at most)."""
        booked = {ref: _body(result) for ref, result in provider.charges.items()}
        return {
            "charges": booked,
            "refunded": provider.refunded,
            "in_flight": provider.in_flight,
            "max_in_flight": provider.max_in_flight,
        }

    @app.get("/charges/{reference}")
    async def lookup(reference: str) -> dict[str, Any]:
        """One charge by reference."""
        result = await provider.lookup(reference)
        if result is None:
            raise HTTPException(404, "no such charge")
        return _body(result)

    @app.post("/charges/{reference}/refund")
    async def refund(reference: str) -> dict[str, bool]:
        """Refund a completed charge once."""
        return {"refunded": await provider.refund(reference)}

    return app


def _body(result: ProviderResult) -> dict[str, Any]:
    return {key: str(value) if value is not None else None for key, value in asdict(result).items()}


def main() -> None:
    """Serve the simulator on loopback."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--latency-ms", type=float, default=300.0)
    args = parser.parse_args()
    app = create_app(args.latency_ms / 1000)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
