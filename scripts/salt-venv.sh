#!/usr/bin/env bash
# Salt from PyPI in its own venv (Salt pins many packages of its own: kept apart
# from the project's .venv). Idempotent: does nothing when it is already there.
# Used by .ci/run and by the Salt tests' fixture.
set -euo pipefail
SALT_VENV=${BINDTRACE_SALT_VENV:-/opt/bindtrace-salt}
SALT_VERSION=3008.4   # pinned: the version pip resolves and the tests ran with on Python 3.11
if "$SALT_VENV/bin/salt-call" --version 2>/dev/null | grep -q "^salt-call $SALT_VERSION "; then
  exit 0
fi
python3 -m venv "$SALT_VENV"
"$SALT_VENV/bin/pip" install -q --disable-pip-version-check "salt==$SALT_VERSION"
"$SALT_VENV/bin/salt-call" --version
