#!/usr/bin/env bash
# Renew constraints.txt: resolve the newest releases that pyproject.toml allows in a fresh venv (no pip
# cache), run the whole test suite against them, and only if it passes write the frozen set to
# constraints.txt.  CI installs with `-c constraints.txt`, so a machine's preinstalled packages and a
# release published tomorrow cannot change what the tests run against until this script is rerun.
#
#   tools/refresh_constraints.sh            # resolve, test, write constraints.txt
#   tools/refresh_constraints.sh --no-test  # resolve and write only (review the diff, then run the tests)
#   KEEP_VENV=1 tools/refresh_constraints.sh   # keep the venv (its path is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=$(mktemp -d /tmp/mtls-constraints.XXXXXX)
trap '[ -n "${KEEP_VENV:-}" ] || rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q --no-cache-dir -e '.[test,lab,report,dask]'
if [ "${1:-}" != "--no-test" ]; then
  "$venv/bin/python" -m pytest -q -p no:cacheprovider
fi
{
  echo "# Pinned by tools/refresh_constraints.sh on $(date -u +%Y-%m-%d) with $("$venv/bin/python" -V)."
  echo "# The test command installs with -c constraints.txt; pyproject.toml holds the supported ranges."
  "$venv/bin/python" -m pip freeze --exclude-editable --exclude mtls-analyzer | grep -v '^pip=='
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages pinned (venv: $venv)"
