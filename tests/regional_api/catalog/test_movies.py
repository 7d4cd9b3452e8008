"""Movies over HTTP: create, search, read, change, unique external ids, admin-only writes."""

import httpx

from common.ids import new_id
from tests.regional_api.catalog.conftest import Auth

DUNE = {
    "title": "Dune: Part Two",
    "description": "Sand.",
    "genres": ["Sci-Fi", " Adventure ", "Sci-Fi"],
    "duration_minutes": 166,
    "age_rating": "12",
    "poster_url": "https://img.example/dune.jpg",
    "external_id": "tmdb:693134",
}


def test_movie_crud_and_search(api: httpx.Client, auth: Auth) -> None:
    created = api.post("/movies", json=DUNE, headers=auth.admin)
    assert created.status_code == 201, created.text
    movie = created.json()
    assert movie["id"].startswith("mov-eu-west-")
    assert movie["genres"] == ["Sci-Fi", "Adventure"]
    assert movie["poster_url"] == "https://img.example/dune.jpg"
    for title in ("Alien", "Aliens", "100% Wolf"):
        body = {"title": title, "duration_minutes": 100}
        assert api.post("/movies", json=body, headers=auth.admin).status_code == 201

    assert api.get(f"/movies/{movie['id']}").json() == movie
    found = api.get("/movies", params={"q": "alien"}).json()
    assert [m["title"] for m in found["items"]] == ["Alien", "Aliens"]
    assert found["total"] == 2
    literal = api.get("/movies", params={"q": "100%"}).json()
    assert [m["title"] for m in literal["items"]] == ["100% Wolf"]
    page = api.get("/movies", params={"limit": 2, "offset": 2}).json()
    assert (page["total"], len(page["items"]), page["offset"]) == (4, 2, 2)

    patched = api.patch(
        f"/movies/{movie['id']}",
        json={"title": "Dune 2", "poster_url": None},
        headers=auth.admin,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["title"], patched.json()["poster_url"]) == ("Dune 2", None)
    assert patched.json()["duration_minutes"] == 166


def test_external_ids_are_unique(api: httpx.Client, auth: Auth) -> None:
    first = api.post("/movies", json=DUNE, headers=auth.admin).json()
    again = api.post("/movies", json=DUNE | {"title": "Copy"}, headers=auth.admin)
    assert again.status_code == 409
    assert (again.json()["error"], again.json()["movie_id"]) == ("movie_exists", first["id"])
    other = api.post("/movies", json=DUNE | {"external_id": "tmdb:1"}, headers=auth.admin).json()
    clash = api.patch(
        f"/movies/{other['id']}", json={"external_id": "tmdb:693134"}, headers=auth.admin
    )
    assert (clash.status_code, clash.json()["error"]) == (409, "movie_exists")


def test_bad_movie_input_is_422(api: httpx.Client, auth: Auth) -> None:
    for body in (
        DUNE | {"duration_minutes": 0},
        DUNE | {"duration_minutes": "long"},
        DUNE | {"title": ""},
        DUNE | {"poster_url": "not a url"},
        DUNE | {"genres": [""]},
        DUNE | {"rating": 5},
        {"title": "No duration"},
    ):
        response = api.post("/movies", json=body, headers=auth.admin)
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation_error"
    movie = api.post("/movies", json=DUNE, headers=auth.admin).json()
    nulled = api.patch(f"/movies/{movie['id']}", json={"title": None}, headers=auth.admin)
    assert nulled.status_code == 422
    assert api.get("/movies", params={"limit": 500}).status_code == 422
    assert api.get("/movies", params={"q": "a\x00b"}).status_code == 422
    nul = api.post("/movies", json=DUNE | {"title": "a\u0000b"}, headers=auth.admin)
    assert (nul.status_code, nul.json()["error"]) == (422, "validation_error")


def test_only_admins_write_movies(api: httpx.Client, auth: Auth) -> None:
    cinema_id = new_id("cin", "eu-west")
    for headers, expected in [({}, 401), (auth.customer, 403), (auth.staff(cinema_id), 403)]:
        assert api.post("/movies", json=DUNE, headers=headers).status_code == expected
    movie = api.post("/movies", json=DUNE, headers=auth.admin).json()
    path = f"/movies/{movie['id']}"
    assert api.patch(path, json={"title": "X"}).status_code == 401
    assert api.patch(path, json={"title": "X"}, headers=auth.customer).status_code == 403
    assert api.get(path).status_code == 200  # anyone reads


def test_unknown_movies_are_404(api: httpx.Client, auth: Auth) -> None:
    unknown = new_id("mov", "eu-west")
    response = api.get(f"/movies/{unknown}")
    assert (response.status_code, response.json()["error"]) == (404, "movie_not_found")
    patch = api.patch(f"/movies/{unknown}", json={"title": "X"}, headers=auth.admin)
    assert patch.status_code == 404
    assert api.get("/movies/garbage").status_code == 404
