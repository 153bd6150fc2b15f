#!/usr/bin/env bash
# Installs the peer tools tests/test_peer_agreement.py runs side by side with registry-scrub
# into one cache folder, with `go install` and GOBIN (as tests/install-prism.sh does for Prism):
#   crane           github.com/google/go-containerregistry/cmd/crane (validate: digests and diff_ids)
#   oci-image-tool  github.com/opencontainers/image-tools/cmd/oci-image-tool (validate --type imageLayout)
# distribution's garbage collector and skopeo are Debian packages (tests/system-deps.sh).
# crane is required: a failure to build it fails this script. oci-image-tool is tried once per
# cache folder; when the Go module proxy does not serve it (on 2026-11-27 it answered
# "403 Forbidden: This module version is not available") or it does not build with this Go,
# the reason is kept in oci-image-tool.unavailable, which the test quotes in its skip reason.
# Delete that file to try again. Prints the bin folder. Needs Go >= 1.21 and the module proxy.
set -euo pipefail

CRANE_VERSION="${CRANE_VERSION:-v0.22.1}"
IMAGE_TOOLS_VERSION="${IMAGE_TOOLS_VERSION:-latest}"
CACHE="${REGISTRY_SCRUB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/registry-scrub}"
BIN_DIR="$CACHE/bin"
mkdir -p "$BIN_DIR"

if ! command -v go >/dev/null 2>&1; then
  echo "install-peers: no 'go' on PATH; the peer tools are built with 'go install' (Go >= 1.21)" >&2
  exit 1
fi
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [ "${go_minor:-0}" -lt 21 ] 2>/dev/null; then
  echo "install-peers: $(go env GOVERSION) is too old; install Go >= 1.21" >&2
  exit 1
fi
# go-containerregistry's go.mod may ask for a newer Go than the one installed: let Go fetch that
# toolchain from the module proxy (Debian's and Ubuntu's Go pin GOTOOLCHAIN=local).
export GOTOOLCHAIN=auto

# The version is kept next to the binary, so a change of CRANE_VERSION rebuilds it.
if [ ! -x "$BIN_DIR/crane" ] || [ "$(cat "$BIN_DIR/crane.version" 2>/dev/null)" != "$CRANE_VERSION" ]; then
  echo "install-peers: building crane $CRANE_VERSION into $BIN_DIR" >&2
  GOBIN="$BIN_DIR" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" >&2
  echo "$CRANE_VERSION" >"$BIN_DIR/crane.version"
fi

if [ ! -x "$BIN_DIR/oci-image-tool" ] && [ ! -e "$BIN_DIR/oci-image-tool.unavailable" ]; then
  echo "install-peers: trying oci-image-tool@$IMAGE_TOOLS_VERSION (optional)" >&2
  if ! log="$(GOBIN="$BIN_DIR" go install "github.com/opencontainers/image-tools/cmd/oci-image-tool@$IMAGE_TOOLS_VERSION" 2>&1)"; then
    printf '%s (%s): %s\n' "go install github.com/opencontainers/image-tools/cmd/oci-image-tool@$IMAGE_TOOLS_VERSION" \
      "$(go env GOVERSION)" "$(printf '%s' "$log" | tr '\n' ' ' | cut -c1-600)" >"$BIN_DIR/oci-image-tool.unavailable"
    echo "install-peers: oci-image-tool is not available: $(cat "$BIN_DIR/oci-image-tool.unavailable")" >&2
  fi
fi
echo "$BIN_DIR"
