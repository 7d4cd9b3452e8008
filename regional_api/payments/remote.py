"""A payment provider reached over HTTP (the simulator in `payments/simulator.py` speaks it)."""

import httpx

from regional_api.payments.provider import ProviderResult, ProviderStatus


class HttpProvider:
    """Charges, look-ups and refunds at a provider's HTTP API; one client for the process."""

    def __init__(self, base_url: str, *, timeout_seconds: float = 5.0) -> None:
        self.timeout_seconds = timeout_seconds
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds + 1.0)

    async def charge(
        self,
        *,
        amount_minor: int,
        currency: str,
        method: str,
        card_number: str | None = None,
        reference: str,
    ) -> ProviderResult:
        """POST the charge; the reference makes a retry idempotent at the provider."""
        body = {
            "amount_minor": amount_minor,
            "currency": currency,
            "method": method,
            "card_number": card_number,
            "reference": reference,
        }
        response = await self._client.post("/charges", json=body)
        response.raise_for_status()
        return _result(response.json())

    async def lookup(self, reference: str) -> ProviderResult | None:
        """GET the charge by reference; None when the provider never saw it."""
        response = await self._client.get(f"/charges/{reference}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return _result(response.json())

    async def refund(self, reference: str) -> bool:
        """POST a refund of the charge; whether money was returned."""
        response = await self._client.post(f"/charges/{reference}/refund")
        response.raise_for_status()
        return bool(response.json()["refunded"])

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _result(body: dict[str, str | None]) -> ProviderResult:
    return ProviderResult(
        ProviderStatus(str(body["status"])), body.get("provider_ref"), body.get("failure_reason")
    )
