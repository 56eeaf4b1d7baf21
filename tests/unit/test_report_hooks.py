"""The report names the kernel hook that traced each host (issue 14's trust
line): the terminal summary groups hosts by hook, Markdown and HTML carry each
host's trust line. Facts as the host library builds them (trace.build_facts)."""
import report_facts as rf
from bindreport import build_report, render, render_terminal
from bindreport.sanitize import markdown
from bindtrace.facts import trust_line

SEES = "bind(2), io_uring IORING_OP_BIND and in-kernel binds (kernel_bind)"


def host(name, hook, where, not_used=None, lost=0):
    f = rf.facts(name, [rf.bind(10, "nginx", 80, count=1)], lost=lost)
    detail = {"hook": hook, "build": "fast", "where": where, "sees": SEES, "not_used": not_used}
    f["host"].update(hook=hook, hook_build="fast", hook_where=where, hook_sees=SEES,
                     hook_not_used=not_used, trust=trust_line(detail, [], lost))
    return {"status": "ok", "facts": f}


def fleet():
    return build_report({
        "web1": host("web1", "fexit", "fexit on inet_bind/inet6_bind"),
        "web2": host("web2", "fexit", "fexit on inet_bind/inet6_bind"),
        "dev1": host("dev1", "tracepoint", "tracepoint syscalls:sys_exit_bind",
                     "fexit: refused (EPERM); kprobe: kprobes are not available", lost=3),
        "old": {"status": "ok", "facts": rf.facts("old", [])},   # facts from before the ladder
    })


def test_trust_line_names_hook_build_why_not_cheaper_missing_and_lost():
    assert trust_line({"hook": "tracepoint", "build": "compat", "where": "tracepoint X",
                       "sees": "bind(2) calls", "not_used": "fexit: refused"}, ["uid"], 7) == (
        "hook tracepoint (tracepoint X, build compat); sees bind(2) calls; cheaper hooks not "
        "used: fexit: refused; missing fields: uid; lost: 7")
    assert trust_line({}, [], 0) is None


def test_terminal_groups_hosts_by_hook():
    out = render_terminal(fleet())
    assert "hooks: fexit: 2 (web1, web2); ?: 1 (old); tracepoint: 1 (dev1)" in out.splitlines()


def test_markdown_and_html_carry_each_hosts_trust_line():
    model = fleet()
    dev1 = ("hook tracepoint (tracepoint syscalls:sys_exit_bind, build fast); sees " + SEES +
            "; cheaper hooks not used: fexit: refused (EPERM); kprobe: kprobes are not "
            "available; missing fields: none; lost: 3")
    md = render(model, "md")
    assert "\n- Hook: " + markdown(dev1) + "\n- Window: " in md
    assert md.count("- Hook: ") == 3
    html = render(model, "html")
    assert "<dt>Hook</dt><dd>" + dev1 + "</dd>" in html
    assert html.count("<dt>Hook</dt>") == 3
