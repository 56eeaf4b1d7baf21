"""report.html from a real playbook run (stand-in trace task, see
test_report_callback.py), opened in headless Chromium (Debian's chromium):
the page runs its own script under its CSP, builds the sortable / filterable
table, keeps hostile names as text, and renders the unexpected rows red."""
import os
import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from report_run import read, report_facts as rf, run_standin

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1400, 1800
UNEXPECTED_RGB = (0xff, 0xd9, 0xd9)  # tr.unexpected td background in report.css


def chromium(tmp_path, url, *args):
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--user-data-dir=" + str(profile)] + list(args) + [url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Rows(HTMLParser):
    """Rows of the #binds table in the dumped DOM: (hidden, [cell texts])."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows, self.body_attrs, self.counter = [], {}, None
        self._table = self._row = self._cell = None
        self._in_counter = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = a
        if tag == "table":
            self._table = a.get("id")
        if self._table == "binds" and tag == "tr" and self._row is None:
            self._row = ("hidden" in a, [])
        if self._row is not None and tag == "td":
            self._cell = []
        if a.get("id") == "binds-shown":
            self._in_counter, self.counter = True, ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row[1].append("".join(self._cell))
            self._cell = None
        if tag == "tr" and self._row is not None:
            if self._row[1]:
                self.rows.append(self._row)
            self._row = None
        if tag == "table":
            self._table = None
        if tag == "span":
            self._in_counter = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_counter:
            self.counter += data


def dom(tmp_path, html_path, fragment=""):
    p = Rows()
    p.feed(chromium(tmp_path, "file://" + html_path + fragment, "--dump-dom"))
    return p


def png_pixels(path):
    """(width, height, set of RGB colours) of an 8-bit RGB/RGBA PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours, i = bytearray(stride), set(), 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xff
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xff
            elif ftype == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 0xff
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xff
        for x in range(0, stride, bpp):
            colours.add(tuple(line[x:x + 3]))
        prev = line
    return width, height, colours


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    work = tmp_path_factory.mktemp("browser")
    proc = run_standin(str(work), rf.fleet(), BIND_REPORT_FORMATS="html")
    path = str(work / "reports" / "report.html")
    assert os.path.isfile(path), proc.stdout + proc.stderr
    return path


def test_page_builds_table_and_keeps_names_as_text(tmp_path, report_html):
    page = dom(tmp_path, report_html)
    assert page.body_attrs.get("data-js") == "ready"  # the inline script ran under the CSP
    assert page.counter == "Showing 14 of 14 binds"
    assert len(page.rows) == 14 and not any(hidden for hidden, _ in page.rows)
    comms = [cells[4] for _, cells in page.rows]
    assert comms[4:9] == [rf.HOSTILE_SCRIPT, rf.HOSTILE_ATTR, "\\x1b[31mred\\x1b[0m", "two\\nlines",
                          "bad\ufffd\ufffdname"]
    text = chromium(tmp_path, "file://" + report_html, "--dump-dom")
    # the browser's DOM has no element the names could have injected
    assert "<img" not in text and text.count("<script") == 1
    assert re.search(r'<th aria-sort="none"><button type="button" title="sort by PORT">PORT</button></th>',
                     text)
    for reason in ("tracefs is not mounted", "unsupported: no kernel BTF", "Connection refused"):
        assert reason in text


def test_filter_and_sort_from_url_fragment(tmp_path, report_html):
    page = dom(tmp_path, report_html, "#q=nginx")
    assert page.counter == "Showing 4 of 14 binds"
    shown = [cells for hidden, cells in page.rows if not hidden]
    assert [(c[0], c[4], c[7]) for c in shown] == [("web1", "nginx", "80"), ("web1", "nginx", "443"),
                                                   ("web2", "nginx", "80"), ("web2", "nginx", "443")]
    # unexpected only, sorted by PORT (column 7) descending, numerically
    page = dom(tmp_path, report_html, "#unexpected=1&sort=binds:7:desc")
    assert page.counter == "Showing 8 of 14 binds"
    shown = [cells for hidden, cells in page.rows if not hidden]
    assert [int(c[7]) for c in shown] == [8000, 7004, 7003, 7002, 7001, 7000, 5432, 4444]
    assert {c[1] for c in shown} == {"unexpected"}


def test_screenshot_shows_highlighted_rows(tmp_path, report_html):
    shot = str(tmp_path / "report.png")
    chromium(tmp_path, "file://" + report_html, "--screenshot=" + shot,
             "--window-size=%d,%d" % (WIDTH, HEIGHT), "--hide-scrollbars")
    width, height, colours = png_pixels(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    # the stylesheet applied (allowed by the CSP hash): unexpected rows are red
    assert UNEXPECTED_RGB in colours
    assert (255, 255, 255) in colours and len(colours) > 50
