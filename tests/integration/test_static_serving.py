"""Static files over HTTP (issue #19, serving): mcs-api serves the hashed
assets under /assets/ precompressed (the .br/.gz siblings written by
web/scripts/precompress.mjs) when Accept-Encoding allows, with a year's
immutable caching, and index.html / client routes with no-cache. Bytes and
headers are read off a raw HTTP connection, so nothing decodes for us."""
import gzip
import http.client
import shutil
import subprocess

import pytest

from apihelpers import api_launcher  # noqa: F401
from mcshelpers import REPO

IMMUTABLE = "public, max-age=31536000, immutable"


def fetch(api, path, accept_encoding=None):
    c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        return r.status, r.msg, body
    finally:
        c.close()


@pytest.fixture
def dist(tmp_path):
    """A built app in miniature: index.html and a hashed script big enough
    to be worth compressing, precompressed by the build's own script."""
    node = shutil.which("node")
    if not node:
        pytest.fail("node is missing (scripts/deps.sh)", pytrace=False)
    web = tmp_path / "dist"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<html>APP</html>")
    js = "".join(f"export const v{i} = '报警 alarm {i % 17}';\n" for i in range(4000)).encode()
    (web / "assets" / "index-Ab12Cd34.js").write_bytes(js)
    (web / "assets" / "tiny-Zz99Yy88.css").write_text("a{}")
    subprocess.run([node, str(REPO / "web/scripts/precompress.mjs"), str(web)], check=True,
                   capture_output=True, timeout=120)
    return web, js


def test_hashed_assets_precompressed_and_cached_for_a_year(api_launcher, dist):  # noqa: F811
    web, js = dist
    a = api_launcher.start(WEB_ROOT=str(web))
    gz_file = (web / "assets" / "index-Ab12Cd34.js.gz").read_bytes()
    br_file = (web / "assets" / "index-Ab12Cd34.js.br").read_bytes()
    assert len(gz_file) < len(js) // 3 and len(br_file) < len(js) // 3

    # gzip only: the .gz sibling's bytes, which decompress to the script.
    st, h, body = fetch(a, "/assets/index-Ab12Cd34.js", "gzip, deflate")
    assert st == 200 and h["Content-Encoding"] == "gzip"
    assert body == gz_file and gzip.decompress(body) == js
    assert int(h["Content-Length"]) == len(gz_file)
    assert "javascript" in h["Content-Type"]
    assert h.get_all("Cache-Control") == [IMMUTABLE]
    assert h["Vary"] == "Accept-Encoding"

    # brotli preferred when allowed, as browsers send it.
    st, h, body = fetch(a, "/assets/index-Ab12Cd34.js", "gzip, deflate, br, zstd")
    assert st == 200 and h["Content-Encoding"] == "br" and body == br_file
    assert h.get_all("Cache-Control") == [IMMUTABLE] and h["Vary"] == "Accept-Encoding"

    # No Accept-Encoding, identity, or both refused by q=0: the file as it is.
    for ae in (None, "identity", "br;q=0, gzip;q=0.000", "*;q=0"):
        st, h, body = fetch(a, "/assets/index-Ab12Cd34.js", ae)
        assert st == 200 and body == js, ae
        assert "Content-Encoding" not in h, ae
        assert h["Vary"] == "Accept-Encoding" and h.get_all("Cache-Control") == [IMMUTABLE], ae
    # "*" covers both; an explicit q=0 for br leaves gzip.
    assert fetch(a, "/assets/index-Ab12Cd34.js", "*")[1]["Content-Encoding"] == "br"
    assert fetch(a, "/assets/index-Ab12Cd34.js", "br;q=0, *")[1]["Content-Encoding"] == "gzip"

    # Too small to compress: no sibling, no Vary, still immutable.
    st, h, body = fetch(a, "/assets/tiny-Zz99Yy88.css", "gzip, br")
    assert st == 200 and body == b"a{}" and "Content-Encoding" not in h and "Vary" not in h
    assert h.get_all("Cache-Control") == [IMMUTABLE]


def test_html_and_client_routes_revalidate(api_launcher, dist):  # noqa: F811
    web, _ = dist
    a = api_launcher.start(WEB_ROOT=str(web))
    for path in ("/", "/index.html", "/dashboard", "/assets/gone-00000000.js"):
        st, h, body = fetch(a, path, "gzip, br")
        assert st == 200 and body == b"<html>APP</html>", path
        assert h.get_all("Cache-Control") == ["no-cache"], path
        assert "Content-Encoding" not in h, path
