"""The server's pages (``/``, ``/docs``, ``/redoc``) load everything from the server itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import httpx
import pytest

from dagship import __version__
from tests.helpers import Server

PAGES = ["/", "/docs", "/redoc"]


class _Urls(HTMLParser):
    """Every URL a page names in an attribute (src, href, spec-url, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in {"src", "href", "spec-url", "action", "data", "poster"}:
                self.urls.append((tag, value))


def _named_urls(html: str) -> list[tuple[str, str]]:
    parser = _Urls()
    parser.feed(html)
    # Script text too: Swagger UI is configured in an inline script (`url: '/openapi.json'`).
    quoted = re.findall(r"""['"]((?:https?:)?//[^'"]+|/[^'"\s]*)['"]""", html)
    return parser.urls + [("script", url) for url in quoted]


@pytest.mark.parametrize("page", PAGES)
def test_nothing_a_page_loads_comes_from_the_internet(server: Server, page: str) -> None:
    response = httpx.get(server.url + page, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), html
    assert "validatorUrl" not in html or '"validatorUrl": null' in html
    loaded = [(tag, url) for tag, url in _named_urls(html) if tag in {"script", "link", "redoc"}]
    assert loaded, "the page loads its assets from the server"
    for tag, url in loaded:
        absolute = urljoin(response.url.__str__(), url)
        assert urlparse(absolute).netloc == urlparse(server.url).netloc, (tag, url)
        if tag in {"script", "link"} or url.endswith(".json"):
            asset = httpx.get(absolute)
            assert asset.status_code == 200, (url, asset.status_code)
            assert len(asset.content) > 0


def test_the_assets_name_no_internet_stylesheet_or_import(server: Server) -> None:
    # Stylesheets could still pull fonts or images from elsewhere: they use data: URLs only.
    css = httpx.get(server.url + "/docs/assets/swagger-ui.css")
    assert css.status_code == 200
    assert "@import" not in css.text
    assert all(url.startswith(("data:", '"data:', "'data:")) for url in _css_urls(css.text))


def _css_urls(css: str) -> list[str]:
    return re.findall(r"url\(\s*([^)]+?)\s*\)", css)


def test_the_front_page_links_the_docs_api_and_health(server: Server) -> None:
    page = httpx.get(server.url + "/", headers={"Accept": "text/html"}).text
    for path in ("/docs", "/redoc", "/openapi.json", "/api/v1/info", "/healthz"):
        assert f'href="{path}"' in page
        assert httpx.get(server.url + path).status_code == 200, path
    assert f"dagship {__version__}" in page
    # Scripts and curl get the same as JSON.
    body = httpx.get(server.url + "/").json()
    assert body["name"] == "dagship" and body["version"] == __version__
    assert body["links"]["docs"] == "/docs" and body["links"]["health"] == "/healthz"
