#!/usr/bin/env bash
# Regenerates the Swift code of the schemas into Sources/CTBusSchema/Generated and records the
# SHA-256 of every input and output in SOURCES.sha256 (a test compares it with the tree, so a
# .proto edited without regenerating, or generated code edited by hand, fails the suite).
#
# Needs Debian's protoc and the well-known types the envelope imports (protobuf-compiler and
# libprotobuf-dev: ./deploy/install-deps.sh --with-protoc); builds protoc-gen-swift from the
# swift-protobuf package this project depends on (about a minute the first time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v protoc >/dev/null || { echo "generate.sh: protoc missing: ./deploy/install-deps.sh --with-protoc" >&2; exit 1; }
swift build -c release --product protoc-gen-swift >/dev/null
plugin="$(swift build -c release --show-bin-path)/protoc-gen-swift"
out=Sources/CTBusSchema/Generated
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" \
       --swift_out="$out" --swift_opt=Visibility=Public --swift_opt=FileNaming=DropPath \
       -I Schemas Schemas/ctbus/v1/*.proto
sha256sum Schemas/ctbus/v1/*.proto "$out"/*.pb.swift > "$out/SOURCES.sha256"
echo "generated: $(ls "$out"/*.pb.swift | tr '\n' ' ')"
