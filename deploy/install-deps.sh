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
# systemd (systemd-analyze verify checks deploy/systemd/; nothing is started), python3-aiosmtpd
# (the SMTP server notification tests start on loopback), msmtp and msmtp-mta (the sendmail the
# notifier writes mail to, relaying to that server), and python3-pip,
# which fetches axe-core 4.12.1 (the accessibility checker the browser tests run in each console
# page) from the one place it is packaged for Python, PyPI's axe-playwright-python 0.1.8 wheel,
# pinned by its SHA-256, into /usr/local/share/ctbus-tests/axe.min.js.
# Runs as root or through sudo; does nothing when everything is there.
set -euo pipefail
packages=(libzmq3-dev libsqlite3-dev)
tests=false
for option in "$@"; do
  case "$option" in
    --with-protoc) packages+=(protobuf-compiler libprotobuf-dev) ;;
    --tests) tests=true
      packages+=(chromium chromium-driver python3-selenium python3-jsonschema python3-cryptography protobuf-compiler libprotobuf-dev python3-protobuf python3-zmq prometheus systemd python3-pip python3-aiosmtpd msmtp msmtp-mta) ;;
    *) echo "install-deps: unknown option $option (--tests, --with-protoc)" >&2; exit 2 ;;
  esac
done
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  command -v swift >/dev/null || { echo "install-deps: swift is not on PATH; install Swift 6 first" >&2; exit 1; }
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
axe=/usr/local/share/ctbus-tests/axe.min.js
if $tests && [ ! -s "$axe" ]; then
  echo "install-deps: fetching axe-core 4.12.1 (axe-playwright-python 0.1.8 from PyPI) into $axe" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "axe-playwright-python==0.1.8 --hash=sha256:fdd263c998388f1a8e67cad02677e612d946248bd44d163be5e8650ea31f95f8" > "$work/requirements.txt"
  /usr/bin/python3 -m pip download --quiet --no-deps --require-hashes --only-binary :all: -r "$work/requirements.txt" -d "$work"
  /usr/bin/python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("axe_playwright_python/axe.min.js"))' \
    "$work"/axe_playwright_python-0.1.8-py3-none-any.whl > "$work/axe.min.js"
  head -c 20 "$work/axe.min.js" | grep -q "axe v4.12.1" || { echo "install-deps: the wheel does not hold axe-core 4.12.1" >&2; exit 1; }
  $sudo install -D -m 0644 "$work/axe.min.js" "$axe"
fi
