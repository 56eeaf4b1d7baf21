"""The cap on records a host returns (max_records): facts stay bounded on a busy
host, and the records that matter are the ones kept.

The policy has judged every record before the cap applies, so the cap never
hides anything from fail_on_unexpected; it only limits what travels to the
controller. Totals in the facts' counts stay exact; the rest is counted as
omitted. Which records are kept, most significant first:
  1. unexpected (or expired) records, what the audit is for;
  2. listeners: binds whose socket listened, listener records;
  3. other binds to a requested port (expected, or no policy);
  4. failed binds;
  5. client binds (port 0 asked: the kernel picked the port).
Within a rank, the more bind calls (count) first, then the earlier. Kept
records stay in their original order.

Size: a summary record is about 680 bytes of JSON and 1.8 KB once parsed on
the controller, so the default of 500 records per host (and 500 listeners)
is at most ~0.35 MB of JSON and ~0.9 MB parsed per host: 1000 hosts within
~1 GB of controller memory (README "Bounded facts")."""
from .policy import is_client

DEFAULT_MAX_RECORDS = 500
DEFAULT_MAX_EVENTS = 10000   # events mode: events judged per window (past it: dropped, counted)


def rank(rec):
    """0 = most significant (see the module docstring)."""
    if rec.get("verdict") in ("unexpected", "expired") and not rec.get("error"):
        return 0
    if rec.get("listened") or rec.get("state"):
        return 1
    if rec.get("error"):
        return 3
    if is_client(rec):
        return 4
    return 2


def keep_significant(records, limit):
    """-> (kept records in their original order, number omitted)."""
    if limit is None or len(records) <= limit:
        return records, 0
    order = sorted(range(len(records)), key=lambda i: (
        rank(records[i]), -(records[i].get("count") or 1), i))
    kept = sorted(order[:limit])
    return [records[i] for i in kept], len(records) - limit
