"""The bind record's fields, defined once for the hosts and the report in the
host library's record.py (module_utils/bindtrace/record.py)."""
try:  # inside the collection (the callback): module_utils lives beside plugin_utils
    from ...module_utils.bindtrace import record
except ImportError:  # the installed packages (bind-report, the tests)
    from bindtrace import record

FIELDS = record.FIELDS
# kind -> field names, for the shape check of facts from the hosts
INT_FIELDS = tuple(f.name for f in FIELDS if f.kind == record.INT)
TEXT_FIELDS = tuple(f.name for f in FIELDS if f.kind == record.TEXT)
MAP_FIELDS = tuple(f.name for f in FIELDS if f.kind == record.MAP)
BOOL_FIELDS = tuple(f.name for f in FIELDS if f.kind == record.BOOL)
LIST_FIELDS = tuple(f.name for f in FIELDS if f.kind == record.LIST)
# (title, row key) of the report's bind table: always, and when some row has a value
COLUMNS = tuple((f.title, f.name) for f in FIELDS if "R" in f.show)
OPTIONAL_COLUMNS = tuple((f.title, f.name) for f in FIELDS if "r" in f.show)
CELLS = {f.name: f.cell for f in FIELDS if f.title}
