#!/usr/bin/env bash
# Helpers for deploy.sh: variable checks, dry-run printing, idempotent create-if-absent.
# shellcheck shell=bash

DRY_RUN="${DRY_RUN:-0}"

die() {
  echo "deploy: $*" >&2
  exit 2
}

is_dry_run() {
  [[ "$DRY_RUN" == 1 ]]
}

# require VAR...: refuse to go on while any is unset or empty, naming every one.
require() {
  local missing=() name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || missing+=("$name")
  done
  if ((${#missing[@]})); then
    die "missing variable(s): ${missing[*]} (see jobs/deploy/env.example)"
  fi
}

# require_one_of VAR...: at least one of them set.
require_one_of() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] && return 0
  done
  die "missing variable: set at least one of $* (see jobs/deploy/env.example)"
}

# plain VAR...: values end up inside JSON and gcloud lists; refuse what would break them.
plain() {
  local name
  for name in "$@"; do
    if [[ "${!name:-}" =~ [[:space:]\"\\\'~\^] ]]; then
      die "$name: quotes, backslashes, '~', '^' and spaces are not allowed (got '${!name}')"
    fi
  done
}

# A command as a person would type it: plain words bare, anything else single-quoted.
show() {
  local out=() arg
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+=("$arg")
    else
      out+=("'${arg//\'/\'\\\'\'}'")
    fi
  done
  printf '%s\n' "${out[*]}"
}

# run CMD...: print it; in a real run also execute it.
run() {
  printf '+ '
  show "$@"
  is_dry_run || "$@"
}

# exists CMD...: whether a describe command succeeds. A dry run prints it and answers
# "absent", so that the create that would follow is printed too.
exists() {
  if is_dry_run; then
    printf '? '
    show "$@"
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# ensure "DESCRIBE CMD" -- CREATE CMD...: create only what is not there yet.
ensure() {
  local -a describe=()
  while [[ "$1" != "--" ]]; do
    describe+=("$1")
    shift
  done
  shift
  if exists "${describe[@]}"; then
    echo "= exists: ${describe[*]}"
  else
    run "$@"
  fi
}

# csv_each "a,b" FUNC: FUNC a; FUNC b
csv_each() {
  local list="$1" item
  shift
  IFS=',' read -r -a items <<<"$list"
  for item in "${items[@]}"; do
    [[ -n "$item" ]] && "$@" "$item"
  done
}
