"""API authentication on SQLite and PostgreSQL: login, every kind of bad token, roles, refresh
rotation and reuse, logout that survives a restart, rate limits, and the signing secret rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cryptoarb.api import users
from cryptoarb.api.auth import SecretRefused, load_secret
from cryptoarb.config_api import ApiSettings
from tests.api_support import (
    ADMIN,
    PASSWORD,
    SECRET,
    VIEWER,
    Api,
    add_users,
    cheap_argon2,  # noqa: F401  (autouse fixture)
    forge,
    make_api,
    open_db,
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
             ) -> Iterator[tuple[Any, str]]:
    request.getfixturevalue("cheap_argon2")  # before the users are added
    db, url, schema = open_db(backend, tmp_path_factory.mktemp(backend))
    add_users(db)
    yield db, url
    db.dispose()
    if schema is not None:
        schema.close()


@pytest.fixture(scope="module")
def api(database: tuple[Any, str]) -> Iterator[Api]:
    a = make_api(*database, login_per_ip=10_000)  # one client address for every test of the module
    with a.client:
        yield a


def _get(api: Api, token: str) -> Any:
    return api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})


def test_login_gives_a_working_pair(api: Api) -> None:
    t = api.login()
    assert set(t) == {"access_token", "refresh_token", "token_type", "expires_in"} and t["token_type"] == "bearer"
    r = _get(api, t["access_token"])
    assert r.status_code == 200 and r.json()["username"] == ADMIN and r.json()["role"] == "admin"


@pytest.mark.parametrize(("body", "status"), [
    ({"username": ADMIN, "password": "wrong password"}, 401),
    ({"username": "nobody", "password": PASSWORD}, 401),
    ({"username": ADMIN}, 422),
    ({"username": 5, "password": []}, 422),
])
def test_bad_logins(api: Api, body: dict[str, Any], status: int) -> None:
    r = api.client.post("/api/login", json=body)
    assert r.status_code == status, r.text
    assert "access_token" not in r.text
    if status == 401:
        assert r.json() == {"detail": "wrong user name or password"}  # the same for a wrong name and password


def test_no_token_and_malformed_header(api: Api) -> None:
    r = api.client.get("/api/runs")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "Bearer" in r.json()["detail"]
    assert api.client.get("/api/runs", headers={"Authorization": "Basic abc"}).status_code == 401
    assert api.client.get("/api/runs", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401


@pytest.mark.parametrize(("token", "why"), [
    (lambda: forge({"exp": int(time.time()) - 5, "iat": int(time.time()) - 100}), "expired"),
    (lambda: forge({}, key="another-secret-that-is-long-enough-0123456789"), "signature"),
    (lambda: forge({"aud": "someone-else"}), "audience"),
    (lambda: forge({"iss": "evil"}), "issuer"),
    (lambda: forge({"jti": None}), "jti"),
    (lambda: forge({"exp": None}), "exp"),
    (lambda: forge({"typ": "refresh"}), "not an access token"),
    (lambda: forge({"sub": "ghost"}), "no longer exists"),
    (lambda: forge({}, algorithm="HS512"), "algorithm"),
], ids=["expired", "wrong-key", "wrong-audience", "wrong-issuer", "no-jti", "no-exp", "refresh-as-access",
        "unknown-user", "other-alg"])
def test_bad_tokens_are_refused_with_the_reason(api: Api, token: Any, why: str) -> None:
    r = _get(api, token())
    assert r.status_code == 401, r.text
    assert why in r.json()["detail"]


def test_tampered_and_alg_none_tokens(api: Api) -> None:
    import base64
    import json

    good = api.login()["access_token"]
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["role"], claims["sub"] = "admin", VIEWER
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _get(api, f"{head}.{forged_body}.{sig}").status_code == 401  # signature no longer matches
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    r = _get(api, f"{none_head}.{body}.")
    assert r.status_code == 401 and "algorithm" in r.json()["detail"]


def test_the_role_comes_from_the_database(api: Api) -> None:
    # a viewer's token claiming admin is still a viewer: kill refused
    token = forge({"sub": VIEWER, "role": "admin"})
    r = api.client.post("/api/risk/kill", json={"reason": "x"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]


def test_viewer_reads_but_may_not_steer(api: Api) -> None:
    h = api.auth(VIEWER)
    assert api.client.get("/api/risk", headers=h).status_code == 200
    for method, path, body in (("post", "/api/risk/kill", {"reason": "x"}), ("post", "/api/risk/resume", None),
                               ("put", "/api/settings", {"detector": {"min_profit_bps": 3}})):
        r = getattr(api.client, method)(path, json=body, headers=h)
        assert r.status_code == 403, (path, r.text)


def test_refresh_rotates_and_reuse_revokes_the_login(api: Api) -> None:
    first = api.login()
    second = api.client.post("/api/token/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"] and _get(api, pair["access_token"]).status_code == 200
    # the used token again: refused, and the whole login (its successor too) is revoked
    again = api.client.post("/api/token/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    r = api.client.post("/api/token/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    # an access token is not a refresh token
    r = api.client.post("/api/token/refresh", json={"refresh_token": pair["access_token"]})
    assert r.status_code == 401 and "not a refresh token" in r.json()["detail"]


def test_logout_revocation_survives_a_restart(api: Api, database: tuple[Any, str]) -> None:
    t = api.login()
    h = {"Authorization": f"Bearer {t['access_token']}"}
    r = api.client.post("/api/logout", json={"refresh_token": t["refresh_token"]}, headers=h)
    assert r.status_code == 200
    assert _get(api, t["access_token"]).json()["detail"] == "token revoked (logged out)"
    restarted = make_api(*database)  # a new process on the same database
    with restarted.client:
        assert _get(restarted, t["access_token"]).status_code == 401
        r = restarted.client.post("/api/token/refresh", json={"refresh_token": t["refresh_token"]})
        assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_password_change_and_removal_end_tokens(api: Api, database: tuple[Any, str]) -> None:
    db, _ = database
    users.add_user(db, "temp-user", "viewer", PASSWORD)
    t = api.login("temp-user")
    time.sleep(1.05)  # tokens carry whole seconds: the change must be in a later second
    users.set_password(db, "temp-user", "another password")
    assert "password was changed" in _get(api, t["access_token"]).json()["detail"]
    assert api.client.post("/api/token/refresh", json={"refresh_token": t["refresh_token"]}).status_code == 401
    t2 = api.login("temp-user", "another password")
    users.remove_user(db, "temp-user")
    assert "no longer exists" in _get(api, t2["access_token"]).json()["detail"]


def test_login_rate_limits(database: tuple[Any, str]) -> None:
    a = make_api(*database, login_per_user=3, login_per_ip=6, login_window_s=60)
    with a.client:
        for _ in range(3):
            assert a.client.post("/api/login", json={"username": VIEWER, "password": "nope"}).status_code == 401
        r = a.client.post("/api/login", json={"username": VIEWER, "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, r.text  # even the right password
        assert a.client.post("/api/login", json={"username": ADMIN, "password": PASSWORD}).status_code == 200
        for _ in range(2):
            a.client.post("/api/login", json={"username": "x", "password": "y"})
        # six attempts from this address: the next is refused whoever it is for
        r = a.client.post("/api/login", json={"username": ADMIN, "password": PASSWORD})
        assert r.status_code == 429 and "too many login attempts" in r.json()["detail"]


def test_secret_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    for bad, why in (("", "no JWT secret"), ("short-secret", "at least 32"), ("changeme", "well-known"),
                     ("x" * 40, "well-known")):
        with pytest.raises(SecretRefused, match=why):
            load_secret(ApiSettings(jwt_secret=bad))
    assert load_secret(ApiSettings(jwt_secret=SECRET)) == (SECRET, "api.jwt_secret (ARB_API__JWT_SECRET)")
    monkeypatch.setenv("JWT_SECRET", SECRET[::-1])
    assert load_secret(ApiSettings()) == (SECRET[::-1], "JWT_SECRET")
    monkeypatch.delenv("JWT_SECRET")
    f = tmp_path / "jwt"
    f.write_text(SECRET + "\n")
    assert load_secret(ApiSettings(jwt_secret_file=str(f)))[0] == SECRET
    with pytest.raises(SecretRefused, match="cannot read"):
        load_secret(ApiSettings(jwt_secret_file=str(tmp_path / "missing")))
    dev, where = load_secret(ApiSettings(jwt_secret="changeme"), dev=True)
    assert len(dev) >= 32 and dev != "changeme" and "dev mode" in where
