"""The cinema directory: regions, cinemas, and the versioned map with ETag / 304."""

from tests.global_api.support import GlobalClient


def test_region_upsert_and_listing(api: GlobalClient) -> None:
    api.region("us-east")
    api.region("eu-west")
    replaced = api.http.put(
        "/directory/regions/eu-west",
        json={
            "code": "eu-west",
            "name": "Europe West",
            "currency": "EUR",
            "endpoints": ["http://127.0.0.1:8101/", "http://127.0.0.1:8102"],
        },
        headers=api.admin_headers(),
    )
    assert replaced.status_code == 200
    assert replaced.json()["endpoints"] == ["http://127.0.0.1:8101", "http://127.0.0.1:8102"]
    regions = api.http.get("/directory/regions").json()
    assert [r["code"] for r in regions] == ["eu-west", "us-east"]
    assert regions[0]["name"] == "Europe West"


def test_cinema_create_read_update_and_filters(api: GlobalClient) -> None:
    paris = api.cinema("eu-west", city="Paris")
    nyc = api.cinema("us-east", city="New York", timezone="America/New_York")
    assert paris["id"].startswith("cin-eu-west-")
    assert nyc["id"].startswith("cin-us-east-")
    assert api.http.get(f"/directory/cinemas/{paris['id']}").json() == paris
    assert api.http.get("/directory/cinemas/cin-eu-west-000000000000").status_code == 404
    by_city = api.http.get("/directory/cinemas", params={"city": "new york"}).json()
    assert [c["id"] for c in by_city] == [nyc["id"]]
    by_region = api.http.get("/directory/cinemas", params={"region": "eu-west"}).json()
    assert [c["id"] for c in by_region] == [paris["id"]]
    patched = api.http.patch(
        f"/directory/cinemas/{paris['id']}",
        json={"name": "Grand Rex", "timezone": "Europe/Berlin"},
        headers=api.admin_headers(),
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Grand Rex"
    assert patched.json()["region"] == "eu-west"
    region_change = api.http.patch(
        f"/directory/cinemas/{paris['id']}", json={"region": "us-east"}, headers=api.admin_headers()
    )
    assert region_change.status_code == 422


def test_map_etag_and_not_modified(api: GlobalClient) -> None:
    empty = api.http.get("/directory/map")
    assert empty.status_code == 200
    etag = empty.headers["ETag"]
    assert etag == f'"{empty.json()["version"]}"'
    assert empty.json()["cinemas"] == []

    same = api.http.get("/directory/map", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["ETag"] == etag

    cinema = api.cinema()
    changed = api.http.get("/directory/map", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    body = changed.json()
    assert [c["id"] for c in body["cinemas"]] == [cinema["id"]]
    assert [r["code"] for r in body["regions"]] == ["eu-west"]
    new_etag = changed.headers["ETag"]
    weak = api.http.get("/directory/map", headers={"If-None-Match": f'"other", W/{new_etag}'})
    assert weak.status_code == 304

    api.http.patch(
        f"/directory/cinemas/{cinema['id']}", json={"city": "Lyon"}, headers=api.admin_headers()
    )
    after_patch = api.http.get("/directory/map", headers={"If-None-Match": new_etag})
    assert after_patch.status_code == 200
    assert after_patch.json()["cinemas"][0]["city"] == "Lyon"
    # A repeat read serves the cached rendering with the same version.
    assert api.http.get("/directory/map").json() == after_patch.json()
