package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"claude-bottle.test/pipelock-standin/testutil"
)

func TestLoadRefusals(t *testing.T) {
	dir := t.TempDir()
	cert, key := testutil.WriteCA(t, dir, 0o600)
	base := testutil.Rendered(cert, key)
	loose := t.TempDir()
	_, looseKey := testutil.WriteCA(t, loose, 0o644)
	group := t.TempDir()
	_, groupKey := testutil.WriteCA(t, group, 0o640)

	cases := []struct {
		name string
		yaml string
		want string // "" = loads
	}{
		{"the rendered config loads", base, ""},
		{"unknown top-level field (KnownFields)", base + "bogus_field: 1\n", "field bogus_field not found in type config.Config"},
		{"unknown nested field", strings.Replace(base, "  enabled: true\n  ca_cert", "  enabled: true\n  bogus: 1\n  ca_cert", 1), "field bogus not found in type config.TLSInterception"},
		{"unknown monitoring field", strings.Replace(base, "max_requests_per_minute: 6000", "max_requests_per_minute: 6000\n    bogus: 2", 1), "field bogus not found in type config.Monitoring"},
		{"second YAML document", base + "---\nmode: strict\n", "multiple YAML documents not supported (pipelock config must be a single document)"},
		{"pipelock section the stand-in lacks", base + "dlp:\n  include_defaults: false\n", StandIn + " does not implement dlp"},
		{"nested pipelock key the stand-in lacks", strings.Replace(base, "max_requests_per_minute: 6000", "max_requests_per_minute: 6000\n    blocklist: [x.example]", 1), "does not implement fetch_proxy.monitoring.blocklist"},
		{"kill switch", base + "kill_switch:\n  enabled: false\n", "does not implement kill_switch"},
		{"enforce false", strings.Replace(base, "enforce: true", "enforce: false", 1), "does not implement enforce: false"},
		{"header_mode all", strings.Replace(base, "header_mode: sensitive", "header_mode: all", 1), "does not implement request_body_scanning.header_mode: all"},
		{"strict with an empty allowlist", strings.Replace(base, "api_allowlist:\n  - \"*.wild.test.example\"\n  - api.test.example\n", "api_allowlist: []\n", 1), "strict mode requires at least one domain in api_allowlist"},
		{"bad mode", strings.Replace(base, "mode: strict", "mode: paranoid", 1), `invalid mode "paranoid": must be strict, balanced, or audit`},
		{"ssrf CIDR with host bits", strings.Replace(base, "127.0.0.1/32", "10.0.0.5/8", 1), `ssrf.ip_allowlist CIDR "10.0.0.5/8" has host bits set (did you mean "10.0.0.0/8"?)`},
		{"ssrf catch-all", strings.Replace(base, "127.0.0.1/32", "0.0.0.0/0", 1), "is a catch-all (/0)"},
		{"body action", strings.Replace(base, "action: block", "action: strip", 1), `invalid request_body_scanning.action "strip": must be warn or block`},
		{"CA key 0644", strings.Replace(base, key, looseKey, 1), "CA key " + looseKey + " is too permissive (mode 0644): restrict to 0600 or 0640"},
		{"CA key 0640 is fine", strings.Replace(base, key, groupKey, 1), ""},
		{"missing CA cert", strings.Replace(base, cert, filepath.Join(dir, "nope.pem"), 1), "CA cert not found at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadBytes([]byte(tc.yaml), "pipelock.yaml", dir)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want load, got %v", err)
				}
				if cfg.Mode != ModeStrict {
					t.Fatalf("mode %q", cfg.Mode)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestLoadErrorShapes(t *testing.T) {
	dir := t.TempDir()
	cert, key := testutil.WriteCA(t, dir, 0o600)
	path := filepath.Join(dir, "pipelock.yaml")
	body := testutil.Rendered(cert, key)
	if err := os.WriteFile(path, []byte(body+"bogus_field: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	// load.go wraps decode errors as "parsing config <path>: yaml: unmarshal errors: ... line N: field X not found in type config.Config"
	want := fmt.Sprintf("parsing config %s: yaml: unmarshal errors:\n  line %d: field bogus_field not found in type config.Config", path, strings.Count(body, "\n")+1)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), "reading config "+filepath.Join(dir, "missing.yaml")+": ") {
		t.Fatalf("got %v", err)
	}
}

func TestHashAndDefaults(t *testing.T) {
	dir := t.TempDir()
	cert, key := testutil.WriteCA(t, dir, 0o600)
	raw := testutil.Rendered(cert, key)
	cfg, err := LoadBytes([]byte(raw), "x", dir)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(raw))
	if cfg.Hash() != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash %s is not the sha256 of the raw bytes", cfg.Hash())
	}
	// Omitted keys take pipelock's defaults: caps 5 MiB, security booleans true, internal = default list.
	min := "mode: balanced\ntls_interception:\n  enabled: true\n  ca_cert: " + cert + "\n  ca_key: " + key + "\n"
	cfg, err = LoadBytes([]byte(min), "x", dir)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_body_bytes", cfg.RequestBodyScanning.MaxBodyBytes, DefaultMaxBodyBytes},
		{"max_response_bytes", cfg.TLSInterception.MaxResponseBytes, int64(DefaultMaxResponseBytes)},
		{"body scanning on", cfg.RequestBodyScanning.Enabled, true},
		{"header scanning on", cfg.RequestBodyScanning.ScanHeaders, true},
		{"action", cfg.RequestBodyScanning.Action, ActionWarn},
		{"rate limit", cfg.FetchProxy.Monitoring.MaxReqPerMinute, DefaultMaxReqPerMinute},
		{"listen", cfg.FetchProxy.Listen, DefaultListen},
		{"internal", len(cfg.Internal), len(DefaultInternal)},
		{"allowlist stays empty", len(cfg.APIAllowlist), 0},
		{"sensitive headers", len(cfg.RequestBodyScanning.SensitiveHeaders), len(DefaultSensitiveHeaders)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v want %v", c.name, c.got, c.want)
		}
	}
	// An explicit `internal: []` switches the DNS SSRF check off (it is not refilled).
	cfg, err = LoadBytes([]byte(min+"internal: []\n"), "x", dir)
	if err != nil || len(cfg.Internal) != 0 {
		t.Fatalf("internal: [] must stay empty: %v %v", cfg.Internal, err)
	}
	// A relative CA path resolves against the config file's directory.
	cfg, err = LoadBytes([]byte("mode: balanced\ntls_interception:\n  enabled: true\n  ca_cert: ca.pem\n  ca_key: ca-key.pem\n"), "x", dir)
	if err != nil || cfg.TLSInterception.CACertPath != cert {
		t.Fatalf("relative CA path: %v %v", cfg, err)
	}
}
