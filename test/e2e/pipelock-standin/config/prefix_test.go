package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestRenderedConfigPrefixes: every byte prefix of the pipelock.yaml claude-bottle renders
// (contracts/pipelock.ts pipelockConfigToYaml), offered as a reload to a stand-in running the full
// file, goes through the reload path serve.go mirrors from pipelock (LoadBytes, the implausible-
// teardown check, ValidateReload + ReloadDowngradeRejectReason). Each prefix must be refused, or
// be the full config with a subset of its api_allowlist (an empty entry matches no host:
// MatchDomain compares a non-wildcard pattern for equality). The file comes from the TypeScript
// renderer: test/integration/pipelock-standin.test.ts sets CBTEST_RENDERED_PIPELOCK.
func TestRenderedConfigPrefixes(t *testing.T) {
	file := os.Getenv("CBTEST_RENDERED_PIPELOCK")
	if file == "" {
		t.Skip("CBTEST_RENDERED_PIPELOCK unset: test/integration/pipelock-standin.test.ts renders the file and runs this")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	full, err := LoadBytes(data, "pipelock.yaml", filepath.Dir(file))
	if err != nil {
		t.Fatalf("the rendered config must load: %v", err)
	}
	allowed := map[string]bool{"": true}
	for _, h := range full.APIAllowlist {
		allowed[h] = true
	}
	accepted, narrower := 0, 0
	for cut := 0; cut < len(data); cut++ {
		cfg, err := LoadBytes(data[:cut], "pipelock.yaml", filepath.Dir(file))
		if err != nil {
			continue
		}
		if len(ImplausibleReloadTeardownReasons(full, cfg)) > 0 || ReloadDowngradeRejectReason(full, ValidateReload(full, cfg)) != "" {
			continue
		}
		accepted++
		for _, h := range cfg.APIAllowlist {
			if !allowed[h] {
				t.Fatalf("prefix of %d bytes allows %q, which the full file does not", cut, h)
			}
		}
		if len(cfg.APIAllowlist) < len(full.APIAllowlist) {
			narrower++
		}
		a, b := *cfg, *full
		a.APIAllowlist, b.APIAllowlist = nil, nil
		a.rawBytes, b.rawBytes = nil, nil // the file's bytes (Hash); a prefix's differ by definition
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("prefix of %d bytes is accepted and differs from the full config beyond api_allowlist", cut)
		}
	}
	t.Logf("%d prefixes: %d accepted, %d of them with a shorter allowlist", len(data), accepted, narrower)
}
