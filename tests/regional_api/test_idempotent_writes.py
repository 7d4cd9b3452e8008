"""Idempotent writes opt in through one dependency and document the answer they store."""

from harness.tokens import TestIssuer
from tests.regional_api.reservations.conftest import make_app

# Each idempotent write and the model of its stored 201 answer.
IDEMPOTENT = {
    "/shows/{show_id}/holds": "ReservationRead",
    "/shows/{show_id}/best-available": "ReservationRead",
    "/reservations/{reservation_id}/payments": "PaymentOutcome",
    "/shows/{show_id}/sales": "SaleRead",
}


def test_every_idempotent_write_documents_its_key_and_answer(
    regional_dsn: str, issuer: TestIssuer
) -> None:
    """The `Idempotency-Key` header comes only from `IdempotencyDep`, on these writes only."""
    document = make_app(regional_dsn, issuer).openapi()
    keyed = {
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert keyed == set(IDEMPOTENT)
    for path, model in IDEMPOTENT.items():
        created = document["paths"][path]["post"]["responses"]["201"]
        schema = created["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith(f"/{model}"), (path, schema)
