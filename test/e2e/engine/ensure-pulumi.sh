#!/usr/bin/env bash
# Make sure the pulumi CLI at the version our @pulumi/pulumi SDK speaks is on this machine.
# Built once per machine from the Go module proxy (no registry ships the binary here) and cached
# by version under $CBTEST_PULUMI_CACHE (default ~/.cache/claude-bottle/pulumi/<version>).
# Prints the binary's path on the last line of stdout. Idempotent; ~10 min the first time on 2 cores.
set -euo pipefail

VERSION=${CBTEST_PULUMI_VERSION:-v3.248.0}
CACHE=${CBTEST_PULUMI_CACHE:-$HOME/.cache/claude-bottle/pulumi}/$VERSION
BIN=$CACHE/bin/pulumi
say() { echo "[ensure-pulumi] $*" >&2; }
die() { echo "[ensure-pulumi] FAIL: $*" >&2; exit 1; }

if [ -x "$BIN" ] && "$BIN" version 2>/dev/null | grep -qx "$VERSION"; then
  say "cached: $BIN ($VERSION)"
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || die "go not on PATH (the CLI is built from the Go module proxy)"
# pulumi-docker and pulumi-tls are not built here: the e2e tier serves those packages with its
# own provider plugins (test/e2e/engine/). The CLI alone is what the Automation API needs.
work=$(mktemp -d "${TMPDIR:-/tmp}/cbtest-pulumi-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module cbtest/pulumicli

go 1.24

require (
	github.com/pulumi/pulumi/pkg/v3 $VERSION
	github.com/pulumi/pulumi/sdk/v3 $VERSION
)

// pkg/v3's own go.mod carries this replace; a consumer module must repeat it.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
say "resolving modules for pulumi $VERSION (first time only)"
start=$(date +%s)
GOFLAGS=-mod=mod go mod tidy >"$work/tidy.log" 2>&1 || die "go mod tidy failed: $(tail -n3 "$work/tidy.log")"
say "building (this takes ~10 min on 2 cores)"
mkdir -p "$CACHE/bin"
GOFLAGS=-mod=mod go build -o "$BIN.partial" \
  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$VERSION" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >"$work/build.log" 2>&1 || die "go build failed: $(tail -n5 "$work/build.log")"
mv "$BIN.partial" "$BIN"
say "built $BIN in $(( $(date +%s) - start )) s"
"$BIN" version >&2
echo "$BIN"
