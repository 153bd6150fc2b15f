#!/usr/bin/env bash
# Installs Beam's Prism runner, the version of the Beam pin, into a cache folder; prints its path.
# Idempotent: a binary already there for this version is kept. Needs Go >= 1.21 (it fetches the
# toolchain Prism's go.mod asks for, go 1.26, from the Go module proxy by itself) and the proxy.
set -euo pipefail

BEAM_VERSION="${BEAM_VERSION:-2.77.0}"
CACHE="${REGISTRY_SCRUB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-scrub}"
BIN_DIR="$CACHE/prism-v$BEAM_VERSION"
PRISM="$BIN_DIR/prism"

if [ -x "$PRISM" ]; then
  echo "$PRISM"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-prism: no 'go' on PATH; Prism is built with 'go install' (Go >= 1.21; see docs/runners.md)" >&2
  exit 1
fi
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [ "${go_minor:-0}" -lt 21 ] 2>/dev/null; then
  echo "install-prism: $(go env GOVERSION) cannot fetch the go 1.26 toolchain Prism needs; install Go >= 1.21 (see docs/runners.md)" >&2
  exit 1
fi
# Prism's go.mod asks for go 1.26. An older Go fetches that toolchain from the Go module proxy
# itself, unless its distribution pinned GOTOOLCHAIN=local (Debian's and Ubuntu's do): lift that.
if [ "$go_minor" -lt 26 ]; then
  export GOTOOLCHAIN=auto
fi
mkdir -p "$BIN_DIR"
echo "install-prism: building Prism v$BEAM_VERSION into $BIN_DIR (a few minutes, once)" >&2
GOBIN="$BIN_DIR" go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$BEAM_VERSION" >&2
echo "$PRISM"
