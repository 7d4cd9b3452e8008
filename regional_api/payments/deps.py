"""Payment dependencies: the settings and the app's payment provider."""

from typing import Annotated

from fastapi import Depends, Request

from regional_api.payments.provider import PaymentProvider


async def get_provider(request: Request) -> PaymentProvider:
    """The app's payment provider (`RegionalSettings.payment_provider`; tests may swap it)."""
    provider: PaymentProvider = request.app.state.payment_provider
    return provider


ProviderDep = Annotated[PaymentProvider, Depends(get_provider)]
