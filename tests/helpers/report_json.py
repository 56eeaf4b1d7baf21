"""report.json as the tests read it: schema 2 (records as columns, see README)
or schema 1, read back by bindreport's own loader, with every host's record
lists as plain lists of dicts (the shape the assertions index into)."""
from bindreport.jsontext import loads, plain


def parse(text):
    return plain(loads(text))


def load(path):
    with open(str(path), encoding="utf-8") as f:
        return parse(f.read())
