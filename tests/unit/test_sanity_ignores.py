"""Sanity ignore files may hold only what Automation Hub certification allows
(ansible-lint's `sanity` rule list); the collection has none today."""
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANITY = os.path.join(ROOT, "collection", "ansible_collections", "fleetaudit", "bindtrace", "tests", "sanity")
ALLOWED = {"validate-modules:missing-gplv3-license", "action-plugin-docs", "shellcheck", "shebang",
           "pylint:used-before-assignment"} | {
    "%s-%s%s" % (t, v, s) for t in ("import", "compile") for v in ("2.6", "2.7", "3.5") for s in ("", "!skip")}


def test_only_certification_allowed_ignores():
    bad = []
    for path in glob.glob(os.path.join(SANITY, "ignore-*.txt")):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                entry = line.split("#", 1)[0].strip()
                if entry and (len(entry.split()) != 2 or entry.split()[1] not in ALLOWED):
                    bad.append("%s:%d: %s" % (os.path.basename(path), n, entry))
    assert bad == []
