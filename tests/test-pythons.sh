#!/usr/bin/env bash
# Installs registry-scrub into a fresh venv for every Python of 3.10 to 3.13 found on this
# machine (pyenv's versions, then python3.X on PATH), as a user would (`pip install -e
# '.[dev]'` from PyPI, without requirements.lock: the lock is the Dataflow image's, 3.11 only),
# and runs on each: the pure core tests, then scans of the demo bucket against the real
# gcp-storage-emulator, through the library and through the `registry-scrub demo` command.
#
#   bash tests/test-pythons.sh              # every version found (`make test-pythons`)
#   PYTHON_VERSIONS="3.10 3.13" bash tests/test-pythons.sh
#   PYTHONS_SKIP=3.11 bash tests/test-pythons.sh   # the whole suite runs on 3.11 already
#   PYTHONS_MISSING_OK=1 PYTHON_VERSIONS="3.10 3.13" bash tests/test-pythons.sh   # `make test`
#
# A version with no interpreter here is reported as "not found" and is not a failure: the
# docs claim only versions that ran (docs/runners.md, "Python versions"). The venvs stay in
# .venv-pythons/<version>/ and are reinstalled only when pyproject.toml or the interpreter changes.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=${PYTHON_VERSIONS:-"3.10 3.11 3.12 3.13"}
venv_root=${PYTHONS_VENV_ROOT:-.venv-pythons}
skip=${PYTHONS_SKIP:-}

# The pure core tests, and the progress line through a pseudo-terminal and a pipe.
core_tests=(
  tests/test_core_*.py tests/test_compat.py tests/test_manifests_core.py tests/test_read_verdict.py
  tests/test_recovery_core.py tests/test_recovery_sniff.py tests/test_report_model.py tests/test_budget.py
  tests/test_config.py tests/test_bq_schema.py tests/test_cost_model.py tests/test_progress.py
  tests/test_template_metadata.py tests/test_dockerfile.py
)
# End to end on Beam's local runner against the emulator: the demo's scan with its exact
# findings, once through the library and once through the command line a user types.
scan_tests=(
  tests/test_demo_manifests.py
  "tests/test_cli.py::test_demo_finds_every_planted_problem_and_leaves_the_report"
)

# The newest patch release of $1 (e.g. 3.12) found here, as an absolute path; nothing if none.
find_python() {
  local want=$1 candidate found=()
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
  if [ -d "$pyenv_root/versions" ]; then
    while IFS= read -r candidate; do
      found+=("$candidate/bin/python$want")
    done < <(find "$pyenv_root/versions" -mindepth 1 -maxdepth 1 -name "$want.*" | sort -V -r)
  fi
  found+=("$(command -v "python$want" || true)" "/usr/bin/python$want" "/usr/local/bin/python$want")
  for candidate in "${found[@]}"; do
    if [ -z "$candidate" ] || [ ! -x "$candidate" ]; then continue; fi
    # pyenv's shims exist for versions that are not active here; ask the interpreter itself.
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
}

ensure_venv() {
  local python=$1 venv=$2 stamp
  stamp="$("$python" -VV | tr -d '\n') $(sha256sum pyproject.toml | cut -c1-16)"
  if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$venv"
  # Called as an `if` condition, where `set -e` does not apply: each step says so itself.
  "$python" -m venv "$venv" || return 1
  "$venv/bin/python" -m pip install --quiet --upgrade pip || return 1
  "$venv/bin/python" -m pip install --quiet -e '.[dev]' || return 1
  "$venv/bin/python" -m pip check || return 1
  echo "$stamp" >"$venv/.installed"
}

summary=()
failed=0
tried=0
for version in $versions; do
  if [ "$version" = "$skip" ]; then
    summary+=("$version  skipped here: the whole suite runs on it (make test)")
    continue
  fi
  python=$(find_python "$version")
  if [ -z "$python" ]; then
    summary+=("$version  not found on this machine: not tested")
    continue
  fi
  tried=$((tried + 1))
  full=$("$python" -c 'import platform; print(platform.python_version())')
  venv="$venv_root/$version"
  echo "=== Python $full ($python) in $venv"
  started=$SECONDS
  if ! ensure_venv "$python" "$venv"; then
    summary+=("$full  FAILED to install: pip install -e '.[dev]'")
    failed=1
    continue
  fi
  installed=$((SECONDS - started))
  beam=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("apache-beam"))')
  started=$SECONDS
  if NO_GCE_CHECK=true "$venv/bin/python" -m pytest -q -p no:cacheprovider "${core_tests[@]}" "${scan_tests[@]}"; then
    summary+=("$full  ok: Beam $beam; core tests and the demo scans passed (install ${installed}s, tests $((SECONDS - started))s)")
  else
    summary+=("$full  FAILED: Beam $beam; see the pytest output above")
    failed=1
  fi
done

echo
echo "Python versions, $(date -u +%Y-%m-%d):"
printf '  %s\n' "${summary[@]}"
if [ "$tried" -eq 0 ]; then
  echo "no Python of $versions found here: nothing was tested" >&2
  # `make test` on a machine with only the main venv's Python (a Debian and its one python3).
  [ -n "${PYTHONS_MISSING_OK:-}" ] || exit 1
fi
exit "$failed"
