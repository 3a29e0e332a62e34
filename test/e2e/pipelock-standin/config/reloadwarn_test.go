package config

import (
	"strings"
	"testing"

	"claude-bottle.test/pipelock-standin/testutil"
)

func TestValidateReloadDowngrades(t *testing.T) {
	dir := t.TempDir()
	cert, key := testutil.WriteCA(t, dir, 0o600)
	base := testutil.Rendered(cert, key)
	load := func(y string) *Config {
		t.Helper()
		c, err := LoadBytes([]byte(y), "x", dir)
		if err != nil {
			t.Fatalf("%v\n%s", err, y)
		}
		return c
	}
	old := load(base)
	withSSRF := func(list string) string {
		return strings.Replace(base, "  ip_allowlist:\n    - 127.0.0.1/32\n", "  ip_allowlist:\n"+list, 1)
	}
	cases := []struct {
		name   string
		yaml   string
		fields []string // expected warning fields; nil = hot-reloads
	}{
		{"allowlist host added", strings.Replace(base, "  - api.test.example\n", "  - api.test.example\n  - new.example\n", 1), nil},
		{"allowlist host removed", strings.Replace(base, "  - api.test.example\n", "", 1), nil},
		{"caps and timers raised", strings.NewReplacer("max_requests_per_minute: 6000", "max_requests_per_minute: 9000",
			"max_tunnel_seconds: 3600", "max_tunnel_seconds: 7200").Replace(base) + "", nil},
		{"explain_blocks off", strings.Replace(base, "explain_blocks: true", "explain_blocks: false", 1), nil},
		{"passthrough removed", strings.Replace(base, "  passthrough_domains:\n    - api.anthropic.com\n", "  passthrough_domains: []\n", 1), nil},
		{"passthrough added", strings.Replace(base, "    - api.anthropic.com\n", "    - api.anthropic.com\n    - api.test.example\n", 1), []string{"tls_interception.passthrough_domains"}},
		{"passthrough case change is not an addition", strings.Replace(base, "    - api.anthropic.com\n", "    - API.Anthropic.com\n", 1), nil},
		{"ip_allowlist widened", withSSRF("    - 127.0.0.1/32\n    - 10.9.0.0/16\n"), []string{"ssrf.ip_allowlist"}},
		{"ip_allowlist /32 -> /8 widens", withSSRF("    - 127.0.0.0/8\n"), []string{"ssrf.ip_allowlist"}},
		{"ip_allowlist narrowed", strings.Replace(base, "ssrf:\n  ip_allowlist:\n    - 127.0.0.1/32\n", "", 1), nil},
		{"mode strict -> balanced", strings.Replace(base, "mode: strict", "mode: balanced", 1), []string{"mode"}},
		{"body action block -> warn", strings.Replace(base, "action: block", "action: warn", 1), []string{"request_body_scanning.action"}},
		{"interception off", strings.Replace(base, "tls_interception:\n  enabled: true", "tls_interception:\n  enabled: false", 1), []string{"tls_interception.enabled"}},
		{"trusted domain added", base + "trusted_domains: [intranet.example]\n", []string{"trusted_domains"}},
		{"internal emptied", base + "internal: []\n", []string{"internal"}},
		{"size caps changed", strings.NewReplacer("max_response_bytes: 134217728", "max_response_bytes: 1048576", "max_body_bytes: 33554432", "max_body_bytes: 67108864").Replace(base), nil},
		{"metrics_listen changed (restart-only)", strings.Replace(base, "metrics_listen: 127.0.0.1:0", "metrics_listen: 127.0.0.1:9191", 1), []string{"metrics_listen"}},
		{"body scanning off", strings.Replace(base, "request_body_scanning:\n  enabled: true", "request_body_scanning:\n  enabled: false", 1), []string{"request_body_scanning.enabled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := ValidateReload(old, load(tc.yaml))
			var got []string
			for _, w := range ws {
				got = append(got, w.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("warnings %v, want %v", ws, tc.fields)
			}
			// In strict mode any warning refuses the whole reload (server.go reloadDowngradeRejectReason).
			reason := ReloadDowngradeRejectReason(old, ws)
			if (len(tc.fields) > 0) != (reason == "strict mode") {
				t.Fatalf("reject reason %q for warnings %v", reason, ws)
			}
		})
	}
}

func TestWarningTextAndNonStrict(t *testing.T) {
	dir := t.TempDir()
	cert, key := testutil.WriteCA(t, dir, 0o600)
	base := testutil.Rendered(cert, key)
	old, _ := LoadBytes([]byte(base), "x", dir)
	upd, _ := LoadBytes([]byte(strings.Replace(base, "    - api.anthropic.com\n", "    - api.anthropic.com\n    - api.test.example\n", 1)), "x", dir)
	ws := ValidateReload(old, upd)
	if len(ws) != 1 || ws[0].Message != "passthrough domains added: api.test.example — these CONNECT tunnels now bypass body scanning" {
		t.Fatalf("%+v", ws)
	}
	bal, _ := LoadBytes([]byte(strings.Replace(base, "mode: strict", "mode: balanced", 1)), "x", dir)
	if r := ReloadDowngradeRejectReason(bal, ws); r != "" {
		t.Fatalf("balanced mode must not reject an advisory downgrade, got %q", r)
	}
}

func TestImplausibleTeardown(t *testing.T) {
	dir := t.TempDir()
	cert, key := testutil.WriteCA(t, dir, 0o600)
	base := testutil.Rendered(cert, key)
	old, _ := LoadBytes([]byte(base), "x", dir)
	cases := []struct{ name, yaml, want string }{
		{"same", base, ""},
		{"forward proxy off", strings.Replace(base, "forward_proxy:\n  enabled: true", "forward_proxy:\n  enabled: false", 1), "forward_proxy.enabled disabled"},
		{"interception off", strings.Replace(base, "tls_interception:\n  enabled: true", "tls_interception:\n  enabled: false", 1), "tls_interception.enabled disabled"},
		{"internal emptied", base + "internal: []\n", "internal CIDR list emptied"},
	}
	for _, tc := range cases {
		upd, err := LoadBytes([]byte(tc.yaml), "x", dir)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(ImplausibleReloadTeardownReasons(old, upd), ", ")
		if got != tc.want {
			t.Errorf("%s: got %q want %q", tc.name, got, tc.want)
		}
	}
}
