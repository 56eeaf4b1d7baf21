"""Property test: whatever text a process, container or host name holds (any
code point, surrogates included), every format stays valid and inert."""
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from hypothesis import given, settings, strategies as st

import report_facts as rf
from bindreport import build_report, render, render_terminal
from bindreport.jsontext import loads

names = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), min_size=1, max_size=24)


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)


@settings(max_examples=150, deadline=None)
@given(comm=names, container=names, host=names, reason=names)
def test_any_name_keeps_every_format_valid(comm, container, host, reason):
    f = rf.facts("h", [rf.bind(1, comm, 4242, verdict="unexpected",
                               container={"runtime": "docker", "id": "x", "name": container,
                                          "image": "i"})],
                 [rf.listener(1, comm, 4242, verdict="unexpected")])
    m = build_report({host: {"status": "ok", "facts": f},
                      host + "-down": {"status": "unreachable", "msg": reason}})
    data = loads(render(m, "json"))   # report.json read back (schema 2: columns) is the model
    assert data == m
    root = ET.fromstring(render(m, "junit").encode("utf-8"))
    assert len(root.findall("testsuite/testcase")) == 2
    p = Tags()
    p.feed(render(m, "html"))
    assert p.tags.count("script") == 1 and "img" not in p.tags
    assert not [a for a in p.attrs if a.startswith("on")]
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]",
                         render_terminal(m))
    md = render(m, "md")
    assert "<" not in md.replace("&lt;", "")
