"""The join on the lean path (`common.routing.lean_bodiless`): FastAPI's answers, byte for byte."""

from datetime import timedelta

import httpx

from common.ids import new_id
from harness.tokens import TestIssuer
from regional_api.clock import get_clock
from regional_api.config import RegionalSettings
from regional_api.main import create_app
from tests.regional_api.factories import ShowSeed, seed_show
from tests.regional_api.onsale.test_waiting_room import announce, customer
from tests.regional_api.served import Live

# The join's operation as main documented it before the lean path (docs/architecture.md).
OPERATION = {
    "tags": ["on-sales"],
    "summary": "Join Line",
    "description": "Join a show's waiting room (again: keeps the place) and say where the caller"
    " stands.",
    "operationId": "join_line_shows__show_id__line_post",
    "security": [{"bearer": []}],
    "parameters": [
        {
            "name": "show_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "title": "Show Id"},
        }
    ],
}


def _requests(live: Live, on_sale: ShowSeed, plain: ShowSeed) -> list[tuple[str, dict[str, str]]]:
    """Joins with every kind of answer: waiting, open, each refusal."""
    me = customer(live, "lean")
    return [
        (on_sale.show_id, me),  # waiting (joined by the first pass, kept by the second)
        (on_sale.show_id, me | {"content-type": "application/json"}),  # a body is ignored
        (plain.show_id, me),  # no on-sale: open
        ("show-eu-west-nosuchshow", me),  # 404
        (new_id("show", "us-east"), me),  # another region's show: 404
        ("not-an-id", {}),  # 404 before 401, as FastAPI resolves them
        (on_sale.show_id, {}),  # 401
        (on_sale.show_id, {"Authorization": "Bearer not.a.token"}),  # 401
        (on_sale.show_id, {"Authorization": "Basic eDp4"}),  # 401
    ]


def _answers(live: Live, requests: list[tuple[str, dict[str, str]]]) -> list[tuple[object, ...]]:
    answers = []
    for show_id, headers in requests:
        answer = live.client.post(f"/shows/{show_id}/line", headers=headers, content=b'{"x": 1}')
        answers.append(_bytes(answer))
    return answers


def _bytes(answer: httpx.Response) -> tuple[object, ...]:
    """What a client receives but the date and the request id."""
    headers = {k: v for k, v in answer.headers.items() if k not in ("date", "x-request-id")}
    return answer.status_code, headers, answer.content


def test_the_lean_join_answers_as_fastapi(live: Live, show: ShowSeed) -> None:
    announce(live, show, opens_in=timedelta(hours=1))  # before it, an answer does not age
    requests = _requests(live, show, seed_show(live.dsn))
    lean = _answers(live, requests)
    live.app.dependency_overrides[get_clock] = get_clock  # every request through FastAPI
    assert _answers(live, requests) == lean
    assert [answer[0] for answer in lean] == [200, 200, 200, 404, 404, 404, 401, 401, 401]


def test_the_join_is_documented_as_before(issuer: TestIssuer) -> None:
    document = create_app(RegionalSettings(), jwks=issuer.jwks).openapi()
    operation = document["paths"]["/shows/{show_id}/line"]["post"]
    assert {key: operation[key] for key in OPERATION} == OPERATION
    assert sorted(operation["responses"]) == ["200", "404", "422"]
