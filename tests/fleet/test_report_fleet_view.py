"""The fleet view in a real browser (headless Chromium), at 5 hosts (a real
ansible-playbook run with the stand-in trace task: 3 traced, 1 failed,
1 unreachable) and at 10,000 generated hosts: failing hosts on top, the heat
map and the chart present, filter, sort and lazy host details working from
the URL fragment, no horizontal scroll at 1400 px, screenshots taken."""
import os
import re
from html.parser import HTMLParser

import pytest

from report_run import read, report_facts as rf, run_standin
from test_report_browser import chromium, png_pixels

from bindreport import build_report, write_reports
from bindreport.annotate import annotate_report
from bindreport.render import HTML_HOST_DETAILS

pytestmark = [pytest.mark.slow]

WIDTH = 1400
HTML_BUDGET = 25 * 1000 * 1000     # bytes of report.html at 10,000 hosts (README: size budget)
UNREACHABLE_RGB = (0xb0, 0x00, 0x20)   # tr.sev-unreachable td, report.css
FAILED_RGB = (0xe4, 0x57, 0x2e)        # tr.sev-failed td
BAR_RGB = (0x4f, 0x8f, 0xcf)           # svg.chart rect.bar and .cell.on


class Page(HTMLParser):
    """The dumped DOM: body attributes, every table's rows (hidden, class,
    cells), the counters, the chart's bars, the lazy host panel."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.body, self.tables, self.counters, self.bars, self.matrices = {}, {}, {}, 0, 0
        self.lazy = None
        self._stack, self._row, self._cell, self._counter = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table":
            self._stack.append(a.get("id"))
            self.tables.setdefault(a.get("id"), [])
            if "matrix" in (a.get("class") or ""):
                self.matrices += 1
        if tag == "tr" and self._stack:
            self._row = ("hidden" in a, a.get("class") or "", [])
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag == "span" and (a.get("id") or "").endswith("-shown"):
            self._counter = a["id"][:-len("-shown")]
            self.counters[self._counter] = ""
        if tag == "rect" and "bar" in (a.get("class") or ""):
            self.bars += 1
        if tag == "div" and a.get("id") == "lazy-host":
            self.lazy = a

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row[2].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.tables[self._stack[-1]].append(self._row)
            self._row = None
        if tag == "table" and self._stack:
            self._stack.pop()
        if tag == "span":
            self._counter = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._counter:
            self.counters[self._counter] += data

    def body_rows(self, table):
        return [r for r in self.tables[table][1:]]


def page(tmp_path, path, fragment=""):
    p = Page()
    p.feed(chromium(tmp_path, "file://" + path + fragment, "--dump-dom", "--window-size=%d,1800" % WIDTH))
    assert p.body.get("data-js") == "ready"            # the page's own script ran under the CSP
    return p


def screenshot(tmp_path, path, name):
    shot = str(tmp_path / name)
    chromium(tmp_path, "file://" + path, "--screenshot=" + shot, "--window-size=%d,1800" % WIDTH,
             "--hide-scrollbars")
    width, height, colours = png_pixels(shot)
    assert (width, height) == (WIDTH, 1800)
    return colours


def five_hosts():
    ok = [rf.listener(10, "sshd", 22), rf.listener(11, "nginx", 443)]
    return {
        "web1": {"status": "ok", "facts": rf.facts("web1", listeners=ok, binds=[rf.bind(11, "nginx", 443)]),
                 "msg": None},
        "web2": {"status": "ok", "facts": rf.facts("web2", listeners=ok + [
            rf.listener(66, "nc", 4444, verdict="unexpected")], binds=[rf.bind(66, "nc", 4444, verdict="unexpected")]),
            "msg": None},
        "db1": {"status": "ok", "facts": rf.facts("db1", listeners=[rf.listener(10, "sshd", 22),
                                                                   rf.listener(12, "postgres", 5432)]), "msg": None},
        "broken": {"status": "failed", "facts": None, "msg": "tracefs is not mounted at /sys/kernel/tracing: "
                   "mount -t tracefs nodev /sys/kernel/tracing (and a long explanation that must wrap, not "
                   "scroll: " + "x" * 300 + ")"},
        "gone": {"status": "unreachable", "facts": None, "msg": "Failed to connect"},
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    work = tmp_path_factory.mktemp("view5")
    proc = run_standin(str(work), five_hosts(), BIND_REPORT_FORMATS="html,json")
    path = str(work / "reports" / "report.html")
    assert os.path.isfile(path), proc.stdout + proc.stderr
    return path


def test_five_hosts_failing_first_matrix_chart_no_sideways_scroll(tmp_path, small):
    p = page(tmp_path, small)
    assert int(p.body["data-page-width"]) <= WIDTH     # the 300-character reason wraps
    attention = [(cls, cells[0], cells[2]) for _, cls, cells in p.body_rows("attention-table")]
    assert attention == [("sev-unreachable", "gone", "unreachable"), ("sev-failed", "broken", "failed"),
                         ("sev-unexpected", "web2", "unexpected")]
    assert p.matrices == 1                               # no inventory groups: one "(no group)" map
    matrix = p.tables["matrix-1"]
    assert matrix[0][2] == ["HOST", "22TCP · 3", "443TCP · 2", "4444TCP · 1", "5432TCP · 1"]
    assert {cells[0]: cells[1:] for _, _, cells in matrix[1:]} == {
        "db1": ["■", "", "", "■"], "web1": ["■", "■", "", ""], "web2": ["■", "■", "✖", ""]}
    assert p.bars == 4
    assert p.counters["host-table"] == "Showing 5 of 5 hosts"


def test_five_hosts_filter_and_sort_from_the_fragment(tmp_path, small):
    p = page(tmp_path, small, "#f.host-table=web&sort=host-table:4:desc")
    rows = p.body_rows("host-table")
    assert p.counters["host-table"] == "Showing 2 of 5 hosts"
    # LISTENERS descending; ties keep the report's order (by name)
    assert [(hidden, cells[0], cells[4]) for hidden, _, cells in rows] == [
        (False, "web2", "3"), (True, "db1", "2"), (False, "web1", "2"), (True, "broken", "0"), (True, "gone", "0")]
    p = page(tmp_path, small, "#sort=binds:port:desc")   # a column by its key
    ports = [cells[6] for _, _, cells in p.body_rows("binds")]
    assert ports == ["4444", "443"]


def test_five_hosts_screenshot(tmp_path, small):
    colours = screenshot(tmp_path, small, "five.png")
    assert UNREACHABLE_RGB in colours and FAILED_RGB in colours and BAR_RGB in colours


def fleet_of(n):
    """n hosts: sshd and nginx everywhere, redis on every 500th (an outlier
    and unexpected), every 997th unreachable and every 991st failed."""
    hosts, groups = {}, {}
    for i in range(n):
        name = "host%05d" % i
        groups[name] = ["web" if i % 2 else "db"]
        if i % 997 == 1:
            hosts[name] = {"status": "unreachable", "facts": None, "msg": "ssh: connect timed out"}
        elif i % 991 == 2:
            hosts[name] = {"status": "failed", "facts": None, "msg": "tracefs is not mounted"}
        else:
            ls = [rf.listener(10, "sshd", 22), rf.listener(11, "nginx", 443)]
            if i % 500 == 7:
                ls.append(rf.listener(13, "redis-server", 6379, verdict="unexpected"))
            hosts[name] = {"status": "ok", "facts": rf.facts(name, listeners=ls, binds=[
                rf.bind(11, "nginx", 443, count=3), rf.bind(20, "python3", 30000 + i % 7, count=2)]), "msg": None}
    return hosts, groups


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("view10k"))
    hosts, groups = fleet_of(10000)
    model = build_report(hosts)
    annotate_report(model, groups=groups)
    write_reports(model, out, ["html"])
    return os.path.join(out, "report.html")


def test_ten_thousand_hosts(tmp_path, big):
    size = os.path.getsize(big)
    print("report.html at 10,000 hosts: %.1f MB (budget %.0f MB)" % (size / 1e6, HTML_BUDGET / 1e6))
    assert size <= HTML_BUDGET
    p = page(tmp_path, big)
    print("page script ready in %s ms" % p.body["data-ready-ms"])
    assert int(p.body["data-page-width"]) <= WIDTH
    attention = p.body_rows("attention-table")
    kinds = [cells[2] for _, _, cells in attention]
    assert kinds == ["unreachable"] * 11 + ["failed"] * 11 + ["unexpected"] * 20
    assert [cells[0] for _, _, cells in attention[:2]] == ["host00001", "host00998"]
    # two groups, each a heat map of port profiles (not 5,000 rows each)
    hosts, groups = fleet_of(10000)
    traced = {g: sum(1 for n, h in hosts.items() if h["status"] == "ok" and groups[n] == [g]) for g in ("db", "web")}
    assert p.matrices == 2
    db, web = p.body_rows("matrix-1"), p.body_rows("matrix-2")
    assert [(cells[0].split(" (")[0], cells[1:]) for _, _, cells in db] == [("%d hosts" % traced["db"], ["■", "■"])]
    # the odd profile first: redis (unexpected) on 20 web hosts
    assert [(cells[0].split(" (")[0], cells[1:]) for _, _, cells in web] == [
        ("20 hosts", ["■", "■", "✖"]), ("%d hosts" % (traced["web"] - 20), ["■", "■", ""])]
    assert p.bars == 3
    # details: the attention hosts have sections, the others open lazily
    text = read(big)
    assert len(re.findall(r'<section class="host ', text)) == 42 <= HTML_HOST_DETAILS
    p = page(tmp_path, big, "#host=9&f.host-table=host0000")
    assert p.lazy is not None and p.lazy.get("data-index") == "9" and "hidden" not in p.lazy
    assert [cells for _, _, cells in p.body_rows("lazy-listeners")] == [
        ["TCP", "0.0.0.0", "22", "LISTEN", "10", "sshd", "root", ""],
        ["TCP", "0.0.0.0", "443", "LISTEN", "11", "nginx", "root", ""]]
    assert p.counters["host-table"] == "Showing 10 of 10000 hosts"
    colours = screenshot(tmp_path, big, "ten-thousand.png")
    assert UNREACHABLE_RGB in colours and FAILED_RGB in colours
