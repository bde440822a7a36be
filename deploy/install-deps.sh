#!/usr/bin/env bash
# Installs the Debian packages CTBus builds against, when they are missing:
#   libzmq3-dev     ZeroMQ (libzmq 4.3) with CURVE, bound by Sources/CZeroMQ
#   libsqlite3-dev  SQLite, used by GRDB for journals and the broker store
# --with-protoc adds protobuf-compiler and libprotobuf-dev, needed only to regenerate the schema
# code (Schemas/generate.sh): protoc alone cannot compile Schemas/, whose envelope imports
# google/protobuf/timestamp.proto, a well-known type Debian ships in libprotobuf-dev.
# --tests adds what the test suite drives: chromium, chromium-driver, python3-selenium (the
# console's browser tests run Debian's headless Chromium through Selenium; nothing is downloaded)
# python3-jsonschema (the console's API answers are checked against docs/openapi.json),
# python3-cryptography, protobuf-compiler, libprotobuf-dev, python3-protobuf and python3-zmq (independent scripts
# check the signature format and journal exports, Tests/signatures/, and the minimal Python node of
# PROTOCOL.md 9 speaks to a real broker, Tests/python/) and
# prometheus (its promtool checks the metrics, deploy/prometheus/ and the alert rules) and
# systemd (systemd-analyze verify checks deploy/systemd/; nothing is started).
# Runs as root or through sudo; does nothing when everything is there.
set -euo pipefail
packages=(libzmq3-dev libsqlite3-dev)
for option in "$@"; do
  case "$option" in
    --with-protoc) packages+=(protobuf-compiler libprotobuf-dev) ;;
    --tests) packages+=(chromium chromium-driver python3-selenium python3-jsonschema python3-cryptography protobuf-compiler libprotobuf-dev python3-protobuf python3-zmq prometheus systemd) ;;
    *) echo "install-deps: unknown option $option (--tests, --with-protoc)" >&2; exit 2 ;;
  esac
done
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
command -v swift >/dev/null || { echo "install-deps: swift is not on PATH; install Swift 6 first" >&2; exit 1; }
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
