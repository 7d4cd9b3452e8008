"""Payment dependencies: the settings and the app's payment provider."""

from typing import Annotated

from fastapi import Depends, Request

from regional_api.config import RegionalSettings, get_settings
from regional_api.payments.provider import PaymentProvider, SimulatedProvider

SettingsDep = Annotated[RegionalSettings, Depends(get_settings)]


async def get_provider(request: Request) -> PaymentProvider:
    """The app's payment provider; the simulated one unless a real one was installed."""
    provider: PaymentProvider | None = getattr(request.app.state, "payment_provider", None)
    if provider is None:
        provider = SimulatedProvider()
        request.app.state.payment_provider = provider
    return provider


ProviderDep = Annotated[PaymentProvider, Depends(get_provider)]
