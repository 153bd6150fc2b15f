#!/usr/bin/env bash
# Installs the Debian packages the tests run for real, when they are missing:
# the registry server and skopeo (manifest tests), shellcheck (deploy scripts), a Java
# runtime (Beam's FlinkRunner starts its job server with it; tests/test_runners.py), and
# chromium (renders report.html offline in tests/test_report_browser.py), and openssl (hashes
# a CA folder the way OpenSSL looks certificates up; tests/test_gcs_adapter_transport.py).
# Prism is built with Go by tests/install-prism.sh (`make runners`), not from a Debian package:
# Debian bookworm's golang-go is 1.19, too old to fetch the go 1.26 toolchain Prism needs.
set -euo pipefail

needed=()
command -v docker-registry >/dev/null 2>&1 || needed+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || needed+=(skopeo)
command -v shellcheck >/dev/null 2>&1 || needed+=(shellcheck)
command -v java >/dev/null 2>&1 || needed+=(openjdk-17-jre-headless)
command -v chromium >/dev/null 2>&1 || needed+=(chromium)
command -v openssl >/dev/null 2>&1 || needed+=(openssl)
[ ${#needed[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi
echo "installing Debian packages: ${needed[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${needed[@]}"
