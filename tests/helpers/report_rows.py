"""The report's bind rows as one dict per row: the straightforward form of
what bindreport.table.BindTable builds column by column for every renderer.
Only the tests use it, to check the column table against it."""
from bindreport.fields import CELLS, COLUMNS, OPTIONAL_COLUMNS
from bindreport.views import SEED_COLUMNS, _identity, _sort_key, _verdict, identity_columns


def bind_rows(model):
    """Every bind of every host, sorted by host then port."""
    rows = []
    for host in model["hosts"]:
        for b in (host["facts"] or {}).get("binds") or []:
            row = {key: CELLS[key](b) for _, key in COLUMNS + OPTIONAL_COLUMNS}
            row.update(host=host["name"], verdict=_verdict(b), count=b.get("count", 1),
                       user=b.get("user"), unexpected=b.get("verdict") == "unexpected")
            row.update(_identity(b))
            rows.append(row)
    rows.sort(key=_sort_key)
    return rows


def bind_columns(rows):
    """HOST, VERDICT, the seed's columns; ERROR only when some bind failed."""
    cols = [("HOST", "host"), ("VERDICT", "verdict")] + identity_columns(rows) + list(SEED_COLUMNS)
    cols.extend(c for c in OPTIONAL_COLUMNS if any(r[c[1]] for r in rows))
    return cols
