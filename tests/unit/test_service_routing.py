"""DirectRoute, the fast path: well-formed requests skip FastAPI's handler; everything else goes through it."""

from __future__ import annotations

import fastapi.routing
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from smart_model_manager.service.routing import DirectRoute, direct

pytestmark = pytest.mark.unit


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str]


class Reply(BaseModel):
    n: int
    first: str


@pytest.fixture
def client(monkeypatch):
    fastapi_calls: list[str] = []
    real = fastapi.routing.get_request_handler

    def counting(*args, **kwargs):
        handler = real(*args, **kwargs)

        async def wrapped(request: Request):
            fastapi_calls.append(request.url.path)
            return await handler(request)
        return wrapped

    monkeypatch.setattr(fastapi.routing, "get_request_handler", counting)
    seen: list[list[str]] = []

    @direct(Body)
    async def endpoint(body: Body, request: Request) -> dict:
        seen.append(body.texts)
        return {"n": len(body.texts), "first": body.texts[0] if body.texts else ""}

    app = FastAPI()
    app.router.add_api_route("/x", endpoint, methods=["POST"], response_model=Reply, route_class_override=DirectRoute)
    with TestClient(app) as c:
        yield c, fastapi_calls, seen


# No Content-Type follows FastAPI's rule for the route (strict by default since FastAPI 0.120: not JSON);
# test_service_fastpath_property.py checks that both paths answer it alike.
@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "application/vnd.smm+json",
                                   "Application/JSON"])
def test_well_formed_requests_take_the_direct_path(client, ctype):
    c, fastapi_calls, seen = client
    headers = {"Content-Type": ctype} if ctype else {}
    r = c.post("/x", content='{"texts": ["café ✓", "b"]}'.encode(), headers=headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"n": 2, "first": "café ✓"}
    assert Reply.model_validate(r.json())  # the response model's shape, though not re-validated
    assert seen == [["café ✓", "b"]] and fastapi_calls == []


@pytest.mark.parametrize(("body", "ctype", "status"), [
    (b'{"texts": [1]}', "application/json", 422),       # fails validation
    (b'{"texts": ["a"], "x": 1}', "application/json", 422),  # extra field
    (b'{"texts": ["a",]}', "application/json", 422),     # bad JSON (FastAPI's own error; the app maps it to 400)
    (b"", "application/json", 422),                      # empty body
    (b'{"texts": ["a"]}', "text/plain", 422),            # not JSON: FastAPI passes bytes to validation
])
def test_everything_else_is_fastapis(client, body, ctype, status):
    c, fastapi_calls, seen = client
    r = c.post("/x", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status
    assert fastapi_calls == ["/x"] and seen == []  # FastAPI handled it, and the endpoint never ran


def test_an_unmarked_endpoint_is_refused():
    async def plain(request: Request) -> dict:
        return {}

    app = FastAPI()
    with pytest.raises(TypeError, match="needs an endpoint marked with @direct"):
        app.router.add_api_route("/y", plain, methods=["POST"], route_class_override=DirectRoute)


def test_the_service_serves_v1_sentiment_by_the_direct_route_and_documents_it_as_before():
    from smart_model_manager.service.app import create_app

    app = create_app(loader=lambda name: None)
    routes = {r.path: r for r in app.routes if hasattr(r, "methods")}
    assert isinstance(routes["/v1/sentiment"], DirectRoute)
    assert not isinstance(routes["/v1/analyze"], DirectRoute)  # its reply has datetimes: FastAPI serializes
    op = app.openapi()["paths"]["/v1/sentiment"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SentimentRequest")
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SentimentResponse")
    assert {"413", "415", "422", "503"} <= set(op["responses"])
