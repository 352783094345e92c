"""``/docs`` from local files: Swagger UI served by the service itself, no CDN.

FastAPI's default ``/docs`` page loads Swagger UI's JavaScript and CSS from cdn.jsdelivr.net, so on
an air-gapped cluster it renders blank. The ``swagger-ui-bundle`` package (PyPI, Apache-2.0; in the
``server`` extra) ships the Swagger UI distribution; we mount it at ``/docs/static`` and render the
page with FastAPI's own ``get_swagger_ui_html`` pointed there (FastAPI's "self-hosting the docs UI"
pattern). ReDoc (``/redoc``) is switched off: it too would come from a CDN.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"


def install_docs(app: FastAPI, title: str) -> None:
    """Serve ``/docs`` and its assets from the installed ``swagger_ui_bundle`` package."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        @app.get(DOCS_URL, include_in_schema=False)
        async def docs_missing() -> Response:
            return PlainTextResponse(
                "The API docs page needs the swagger-ui-bundle package, which serves Swagger UI "
                "locally: pip install 'smart-model-manager[server]'. The schema is at "
                f"{app.openapi_url}.", status_code=404)
        return

    app.mount(STATIC_URL, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - API docs",
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            # Swagger UI would otherwise ask validator.swagger.io to badge the schema
            swagger_ui_parameters={**swagger_ui_default_parameters, "validatorUrl": None})


__all__ = ["DOCS_URL", "STATIC_URL", "install_docs"]
