package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"claude-bottle.test/pipelock-standin/config"
)

func writeHosts(t *testing.T, content string) *hostsResolver {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return &hostsResolver{path: p}
}

func scannerFor(t *testing.T, yaml string, hosts *hostsResolver) *urlScanner {
	t.Helper()
	cfg, err := config.LoadBytes([]byte(yaml), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newURLScanner(cfg, hosts)
}

func TestMatchDomain(t *testing.T) {
	cases := []struct {
		host, pattern string
		want          bool
	}{
		{"api.test.example", "api.test.example", true},
		{"API.Test.Example.", "api.test.example", true}, // case-insensitive, trailing dot ignored
		{"api.test.example", "API.TEST.EXAMPLE.", true},
		{"other.test.example", "api.test.example", false},
		{"x.wild.test.example", "*.wild.test.example", true},
		{"a.b.c.wild.test.example", "*.wild.test.example", true}, // every depth
		{"wild.test.example", "*.wild.test.example", true},       // the apex too (MatchDomain, not isPassthrough)
		{"evilwild.test.example", "*.wild.test.example", false},
		{"wild.test.example.evil", "*.wild.test.example", false},
		{"10.0.0.1", "10.0.0.1", true}, // IPs match exactly
		{"10.0.0.1", "*.0.0.1", false},
	}
	for _, c := range cases {
		if got := MatchDomain(c.host, c.pattern); got != c.want {
			t.Errorf("MatchDomain(%q, %q) = %v, want %v", c.host, c.pattern, got, c.want)
		}
	}
}

func TestIsPassthrough(t *testing.T) {
	list := []string{"api.anthropic.com", "*.cdn.example"}
	cases := []struct {
		host string
		want bool
	}{
		{"api.anthropic.com", true},
		{"API.ANTHROPIC.COM", true},
		{"x.api.anthropic.com", false},
		{"a.cdn.example", true},
		{"a.b.cdn.example", true},
		{"cdn.example", false}, // intercept.go isPassthrough does NOT match the apex
	}
	for _, c := range cases {
		if got := isPassthrough(c.host, list); got != c.want {
			t.Errorf("isPassthrough(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}

func TestAllowlistEnforcedOnlyInStrictMode(t *testing.T) {
	hosts := writeHosts(t, "203.0.113.7 api.test.example other.example\n")
	for _, tc := range []struct {
		mode    string
		allowed bool
	}{{"strict", false}, {"balanced", true}, {"audit", true}} {
		s := scannerFor(t, "mode: "+tc.mode+"\napi_allowlist: [api.test.example]\n", hosts)
		r := s.Scan("https://other.example/")
		if r.allowed != tc.allowed {
			t.Errorf("%s: allowed=%v (%s)", tc.mode, r.allowed, r.reason)
		}
		if !tc.allowed && (r.reason != "domain not in allowlist: other.example" || r.scanner != scannerAllowlist) {
			t.Errorf("%s: %+v", tc.mode, r)
		}
	}
}

func TestSSRFRanges(t *testing.T) {
	hosts := writeHosts(t, `
10.1.2.3        ten.example
172.20.0.5      docker.example
192.168.1.1     home.example
127.0.0.1       loop.example
169.254.169.254 metadata.example
168.63.129.16   wire.example
100.64.0.9      cgnat.example
0.1.2.3         zero.example
224.0.0.5       mcast.example
fd00::1         ula.example
fe80::1         ll.example
203.0.113.7     public.example
10.9.0.4        allowed.example
`)
	base := "mode: strict\napi_allowlist: ['*.example']\nssrf:\n  ip_allowlist: [10.9.0.0/16]\n"
	s := scannerFor(t, base, hosts)
	cases := []struct {
		host, reason, label string
	}{
		{"ten.example", "SSRF blocked: ten.example resolves to internal IP 10.1.2.3", scannerSSRF},
		{"docker.example", "SSRF blocked: docker.example resolves to internal IP 172.20.0.5", scannerSSRF},
		{"home.example", "SSRF blocked: home.example resolves to internal IP 192.168.1.1", scannerSSRF},
		{"loop.example", "SSRF blocked: loop.example resolves to internal IP 127.0.0.1", scannerSSRF},
		{"metadata.example", "SSRF blocked: metadata.example resolves to cloud metadata endpoint 169.254.169.254", scannerSSRFMetadata},
		{"wire.example", "SSRF blocked: wire.example resolves to cloud metadata endpoint 168.63.129.16", scannerSSRFMetadata},
		{"cgnat.example", "SSRF blocked: cgnat.example resolves to internal IP 100.64.0.9", scannerSSRF},
		{"zero.example", "SSRF blocked: zero.example resolves to internal IP 0.1.2.3", scannerSSRF},
		{"mcast.example", "SSRF blocked: mcast.example resolves to internal IP 224.0.0.5", scannerSSRF},
		{"ula.example", "SSRF blocked: ula.example resolves to internal IP fd00::1", scannerSSRF},
		{"ll.example", "SSRF blocked: ll.example resolves to internal IP fe80::1", scannerSSRF},
		{"unknown.example", "SSRF check failed: DNS resolution error for unknown.example: lookup unknown.example: no such host", scannerSSRF},
		{"public.example", "", ""},
		{"allowed.example", "", ""}, // inside ssrf.ip_allowlist
	}
	for _, c := range cases {
		r := s.Scan("https://" + c.host + "/")
		if c.reason == "" {
			if !r.allowed {
				t.Errorf("%s: blocked: %s", c.host, r.reason)
			}
			continue
		}
		if r.allowed || r.reason != c.reason || r.scanner != c.label {
			t.Errorf("%s: got %+v, want %q (%s)", c.host, r, c.reason, c.label)
		}
	}
	// An allowlisted host that resolves internal gets the operator hint (scanner.go checkSSRF).
	if r := s.Scan("https://ten.example/"); r.hint != `add "ten.example" to trusted_domains to allow internal IP resolution` {
		t.Errorf("hint: %q", r.hint)
	}
	// trusted_domains bypass the internal-IP check by name.
	s = scannerFor(t, base+"trusted_domains: [ten.example]\n", hosts)
	if r := s.Scan("https://ten.example/"); !r.allowed {
		t.Errorf("trusted domain blocked: %s", r.reason)
	}
	// IP literals: allowlisted as literals they still meet the guard (an IP resolves to itself).
	s = scannerFor(t, "mode: strict\napi_allowlist: [10.1.2.3, 10.9.0.4]\nssrf:\n  ip_allowlist: [10.9.0.0/16]\n", hosts)
	if r := s.Scan("https://10.1.2.3/"); r.reason != "SSRF blocked: 10.1.2.3 resolves to internal IP 10.1.2.3" {
		t.Errorf("literal: %+v", r)
	}
	if r := s.Scan("https://10.9.0.4/"); !r.allowed {
		t.Errorf("ip_allowlisted literal blocked: %s", r.reason)
	}
	// internal: [] switches the DNS check off; the core floor still blocks private literals.
	s = scannerFor(t, "mode: strict\napi_allowlist: ['*.example', 10.1.2.3]\ninternal: []\n", hosts)
	if r := s.Scan("https://ten.example/"); !r.allowed {
		t.Errorf("internal: [] should not resolve-check: %s", r.reason)
	}
	if r := s.Scan("https://10.1.2.3/"); r.reason != "core SSRF: 10.1.2.3 is a private/internal IP address" || r.scanner != scannerCoreSSRF {
		t.Errorf("core literal: %+v", r)
	}
}

func TestURLChecks(t *testing.T) {
	hosts := writeHosts(t, "203.0.113.7 api.test.example\n")
	s := scannerFor(t, "mode: strict\napi_allowlist: [api.test.example]\n", hosts)
	cases := []struct {
		url, reason, label string
	}{
		{"https://api.test.example/x?k=AKIAIOSFODNN7EXAMPLE", "core DLP match: AWS Access ID (critical)", scannerCoreDLP},
		{"https://api.test.example/ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "core DLP match: GitHub Token (critical)", scannerCoreDLP},
		{"https://api.test.example/?q=AKIA%49OSFODNN7EXAMPLE", "core DLP match: AWS Access ID (critical)", scannerCoreDLP}, // URL-decoded
		{"https://api.test.example/a%0d%0ab", "CRLF injection sequence in URL", scannerCRLF},
		{"https://api.test.example/a/../etc", "path traversal sequence in URL", scannerPathTraversal},
		{"ftp://api.test.example/", `scheme "ftp" not allowed: only http and https`, scannerScheme},
		{"https://api.test.example/" + string(make([]byte, 2100)), "URL length", scannerLength},
		{"https://api.test.example/fine?x=1", "", ""},
	}
	for _, c := range cases {
		r := s.Scan(c.url)
		if c.reason == "" {
			if !r.allowed {
				t.Errorf("%s blocked: %s", c.url, r.reason)
			}
			continue
		}
		if r.allowed || r.scanner != c.label || len(r.reason) < len(c.reason) || r.reason[:len(c.reason)] != c.reason {
			t.Errorf("%.60s: got %+v, want %q", c.url, r, c.reason)
		}
	}
}

func TestRateLimit(t *testing.T) {
	hosts := writeHosts(t, "203.0.113.7 a.test.example b.test.example\n")
	s := scannerFor(t, "mode: strict\napi_allowlist: ['*.test.example']\nfetch_proxy:\n  monitoring:\n    max_requests_per_minute: 2\n", hosts)
	now := time.Unix(1000, 0)
	s.rateLimiter.now = func() time.Time { return now }
	// One bucket per registrable domain: a. and b.test.example share it.
	for i, host := range []string{"a.test.example", "b.test.example"} {
		if r := s.Scan("https://" + host + "/"); !r.allowed {
			t.Fatalf("request %d blocked: %s", i, r.reason)
		}
	}
	r := s.Scan("https://a.test.example/")
	if r.allowed || r.scanner != scannerRateLimit || r.reason != "rate limit exceeded for a.test.example" {
		t.Fatalf("%+v", r)
	}
	now = now.Add(61 * time.Second) // the window slides
	if r := s.Scan("https://a.test.example/"); !r.allowed {
		t.Fatalf("after the window: %s", r.reason)
	}
}

func TestHostsResolverNeverLeavesTheFile(t *testing.T) {
	h := writeHosts(t, "# comment\n10.1.2.3 a.example A2.example # trailing\n::1 six.example\n")
	if ips, err := h.LookupHost("a2.example."); err != nil || ips[0] != "10.1.2.3" {
		t.Fatalf("%v %v", ips, err)
	}
	if _, err := h.LookupHost("example.com"); err == nil {
		t.Fatal("a name outside the hosts file must not resolve")
	}
	if !h.dialable("10.1.2.3") || !h.dialable("::1") || h.dialable("203.0.113.7") {
		t.Fatal("dialable must be exactly the hosts-file addresses")
	}
}

func TestDialPortsRemapOnlyTheSocket(t *testing.T) {
	h := &hostsResolver{ports: parseDialPorts("443=40123, 80=40124,bad,=1,2=")}
	for from, want := range map[string]string{"443": "40123", "80": "40124", "8443": "8443", "2": "2"} {
		if got := h.dialPort(from); got != want {
			t.Errorf("dialPort(%s) = %s, want %s", from, got, want)
		}
	}
	if got := (&hostsResolver{ports: parseDialPorts("")}).dialPort("443"); got != "443" {
		t.Errorf("without %s, 443 stays 443 (got %s)", DialPortsEnv, got)
	}
}
