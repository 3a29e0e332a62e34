package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"claude-bottle.test/pipelock-standin/config"
	"claude-bottle.test/pipelock-standin/testutil"
)

// upstreamCertDir holds httptest's built-in server certificate (SANs example.com, 127.0.0.1); the
// stand-in verifies intercepted upstreams against the system roots, which read SSL_CERT_DIR, so it
// must be set before anything in this binary loads them.
var upstreamCertDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "standin-roots-")
	if err != nil {
		panic(err)
	}
	probe := httptest.NewTLSServer(http.NotFoundHandler())
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: probe.Certificate().Raw})
	probe.Close()
	if err := os.WriteFile(filepath.Join(dir, "httptest.pem"), pemBytes, 0o644); err != nil {
		panic(err)
	}
	upstreamCertDir = dir
	os.Setenv("SSL_CERT_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type harness struct {
	srv      *server
	proxy    *httptest.Server
	upstream *httptest.Server
	seen     atomic.Int64
	caPool   *x509.CertPool
	dir      string
	out, err *syncBuffer
	cert     string
	key      string
}

// newHarness runs the stand-in in-process in front of an httptest TLS upstream reachable as
// example.com (hosts file) and allowlisted, with `edit` applied to the rendered config.
func newHarness(t *testing.T, edit func(string) string) *harness {
	t.Helper()
	h := &harness{dir: t.TempDir(), out: &syncBuffer{}, err: &syncBuffer{}}
	h.upstream = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.seen.Add(1)
		if strings.HasPrefix(r.URL.Path, "/bytes/") {
			var n int
			fmt.Sscanf(r.URL.Path, "/bytes/%d", &n)
			w.Write(bytes.Repeat([]byte("a"), n))
			return
		}
		if r.URL.Path == "/gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte("x"))
			return
		}
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, ": keepalive\n\ndata: one\n\ndata: AKIAIOSFODNN7EXAMPLE\n\ndata: three\n\n")
			return
		}
		body, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "bytes": len(body), "accept_encoding": r.Header.Get("Accept-Encoding")})
	}))
	// The stand-in dials the upstream before answering CONNECT and drops that connection when it
	// intercepts (as forward.go does); the upstream's "TLS handshake error: EOF" lines are that.
	h.upstream.Config.ErrorLog = log.New(io.Discard, "", 0)
	h.upstream.StartTLS()
	t.Cleanup(h.upstream.Close)
	h.cert, h.key = testutil.WriteCA(t, h.dir, 0o600)
	yaml := strings.Replace(testutil.Rendered(h.cert, h.key), "  - api.test.example\n", "  - api.test.example\n  - example.com\n", 1)
	if edit != nil {
		yaml = edit(yaml)
	}
	path := filepath.Join(h.dir, "pipelock.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	hosts := writeHosts(t, "127.0.0.1 example.com api.test.example\n")
	h.srv = &server{path: path, log: &auditLogger{out: h.out, errOut: h.err, includeAllowed: true, includeBlocked: true}, resolver: hosts, started: time.Now()}
	st, err := h.srv.buildState(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.state.Store(st)
	h.proxy = httptest.NewServer(h.srv)
	t.Cleanup(h.proxy.Close)
	caPEM, _ := os.ReadFile(h.cert)
	h.caPool = x509.NewCertPool()
	h.caPool.AppendCertsFromPEM(caPEM)
	return h
}

// tunnel CONNECTs to the upstream as example.com and starts TLS inside with the given SNI.
func (h *harness) tunnel(t *testing.T, sni string) *tls.Conn {
	t.Helper()
	port := h.upstream.URL[strings.LastIndex(h.upstream.URL, ":")+1:]
	resp, conn, br := h.rawConnect(t, "example.com:"+port, "")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	return tls.Client(&bufferedConn{Conn: conn, r: br}, &tls.Config{ServerName: sni, RootCAs: h.caPool})
}

func (h *harness) upstreamURL(path string) string {
	return "https://example.com:" + h.upstream.URL[strings.LastIndex(h.upstream.URL, ":")+1:] + path
}

// client goes through the proxy and trusts `roots` for the inner TLS.
func (h *harness) client(roots *x509.CertPool) *http.Client {
	pu, _ := url.Parse(h.proxy.URL)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

// rawConnect sends a CONNECT and returns pipelock's answer (a refused CONNECT never reaches the
// client through http.Transport with its headers intact).
func (h *harness) rawConnect(t *testing.T, target string, extra string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", h.proxy.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, extra)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return resp, c, br
}

func TestConnectRefusals(t *testing.T) {
	h := newHarness(t, nil)
	cases := []struct {
		target, extra, body, reason, layer string
	}{
		{"evil.example:443", "", "CONNECT blocked: domain not in allowlist: evil.example\n", "parse_error", "allowlist"},
		{"api.test.example:443", "Cookie: t=AKIAIOSFODNN7EXAMPLE\r\n", "CONNECT blocked: header DLP match\n", "dlp_match", "dlp"},
	}
	for _, c := range cases {
		resp, _, _ := h.rawConnect(t, c.target, c.extra)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || string(body) != c.body || resp.Header.Get(headerReason) != c.reason || resp.Header.Get(headerLayer) != c.layer || resp.Header.Get(headerVersion) != "1" {
			t.Errorf("%s: %d %q %v", c.target, resp.StatusCode, body, resp.Header)
		}
	}
	// explain_blocks: true carries the hint.
	resp, _, _ := h.rawConnect(t, "evil.example:443", "")
	if resp.Header.Get(headerHint) == "" {
		t.Error("explain_blocks: the hint header is missing")
	}
	if !strings.Contains(h.out.String(), `"event":"blocked","method":"CONNECT","url":"evil.example:443","scanner":"allowlist"`) {
		t.Errorf("no blocked audit line:\n%s", h.out.String())
	}
}

func TestInterceptedTunnel(t *testing.T) {
	h := newHarness(t, func(y string) string {
		return strings.Replace(y, "  max_response_bytes: 134217728\n", "  max_response_bytes: 1000\n", 1)
	})
	c := h.client(h.caPool)
	resp, err := c.Get(h.upstreamURL("/hello"))
	if err != nil {
		t.Fatal(err)
	}
	var echo map[string]any
	json.NewDecoder(resp.Body).Decode(&echo)
	resp.Body.Close()
	if resp.StatusCode != 200 || echo["path"] != "/hello" {
		t.Fatalf("%d %v", resp.StatusCode, echo)
	}
	if iss := resp.TLS.PeerCertificates[0].Issuer.CommonName; iss != "test CA" {
		t.Fatalf("the leaf was not minted by the configured CA (issuer %q)", iss)
	}
	if sans := resp.TLS.PeerCertificates[0].DNSNames; len(sans) != 1 || sans[0] != "example.com" {
		t.Fatalf("leaf SANs %v", sans)
	}
	if echo["accept_encoding"] != "" {
		t.Fatalf("Accept-Encoding must be stripped upstream, got %v", echo["accept_encoding"])
	}
	if !strings.Contains(h.out.String(), `"event":"anomaly","url":"example.com:`) {
		t.Error("no tls_intercept anomaly line")
	}

	before := h.seen.Load()
	blocked := []struct {
		name, method, path, body, header, want, reason, layer string
	}{
		{"body DLP", "POST", "/upload", `{"k":"AKIAIOSFODNN7EXAMPLE"}`, "", "blocked: request body contains secret: AWS Access ID\n", "dlp_match", "body_dlp"},
		{"query DLP", "GET", "/q?k=AKIAIOSFODNN7EXAMPLE", "", "", "blocked: core DLP match: AWS Access ID (critical)\n", "dlp_match", "core_dlp"},
		{"header DLP", "GET", "/h", "", "ghp_" + strings.Repeat("aB3", 12), "blocked: request header contains secret\n", "dlp_match", "header_dlp"},
		{"response over max_response_bytes", "GET", "/bytes/1001", "", "", "blocked: response too large for scanning\n", "data_budget", "tls_response_blocked"},
		{"compressed response", "GET", "/gzip", "", "", "blocked: compressed response cannot be scanned\n", "compressed_response", "tls_response_blocked"},
	}
	for _, b := range blocked {
		req, _ := http.NewRequest(b.method, h.upstreamURL(b.path), strings.NewReader(b.body))
		if b.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if b.header != "" {
			req.Header.Set("Cookie", "s="+b.header)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || string(body) != b.want || resp.Header.Get(headerReason) != b.reason || resp.Header.Get(headerLayer) != b.layer {
			t.Errorf("%s: %d %q %s/%s", b.name, resp.StatusCode, body, resp.Header.Get(headerReason), resp.Header.Get(headerLayer))
		}
	}
	// Request-side refusals never reached the upstream; the two response-side ones did.
	if got := h.seen.Load() - before; got != 2 {
		t.Errorf("upstream saw %d of the refused requests, want 2 (the response-side ones)", got)
	}
	resp, err = c.Get(h.upstreamURL("/bytes/1000"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("exactly max_response_bytes must pass: %v %v", resp, err)
	}
	resp.Body.Close()

	// SSE: events stream one by one, comments are dropped, an event with a secret cuts the stream.
	resp, err = c.Get(h.upstreamURL("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "data: one\n\n" {
		t.Errorf("SSE body %q", body)
	}
}

func TestAuthorityMismatch(t *testing.T) {
	h := newHarness(t, nil)
	tc := h.tunnel(t, "example.com")
	fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n")
	r, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != 403 || string(body) != "authority mismatch: blocked\n" || r.Header.Get(headerReason) != "authority_mismatch" {
		t.Fatalf("%d %q %v", r.StatusCode, body, r.Header)
	}
}

func TestSNIMismatchClosesTheTunnel(t *testing.T) {
	h := newHarness(t, nil)
	tc := h.tunnel(t, "api.test.example")
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("a ClientHello whose SNI differs from the CONNECT host must not get a TLS session")
	}
	if !strings.Contains(h.out.String(), `"category":"mismatch"`) {
		t.Errorf("no SNI mismatch line:\n%s", h.out.String())
	}
}

func TestPassthroughIsSpliced(t *testing.T) {
	h := newHarness(t, func(y string) string {
		return strings.Replace(y, "    - api.anthropic.com\n", "    - api.anthropic.com\n    - example.com\n", 1)
	})
	roots := x509.NewCertPool()
	roots.AddCert(h.upstream.Certificate())
	req, _ := http.NewRequest("POST", h.upstreamURL("/up?k=AKIAIOSFODNN7EXAMPLE"), strings.NewReader(`{"k":"AKIAIOSFODNN7EXAMPLE"}`))
	resp, err := h.client(roots).Do(req)
	if err != nil {
		t.Fatal(err) // fails if pipelock's CA had been presented instead of the upstream's own cert
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a passthrough tunnel is not decrypted, so nothing in it is scanned: %d", resp.StatusCode)
	}
}

func TestReloadSemantics(t *testing.T) {
	h := newHarness(t, nil)
	path := h.srv.path
	orig, _ := os.ReadFile(path)
	write := func(s string) *config.Config {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	allowed := func(host string) bool { return h.srv.state.Load().scanner.checkAllowlist(host).allowed }
	lines := func() int { return strings.Count(h.out.String(), "\n") }

	// 1. A plain allowlist change hot-reloads and logs config_hash = sha256 of the file.
	text := strings.Replace(string(orig), "  - example.com\n", "  - example.com\n  - new.test.example\n", 1)
	cfg := write(text)
	if err := h.srv.reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.out.String(), `"event":"config_reload","status":"success","detail":"mode=strict","config_hash":"`+cfg.Hash()+`"`) {
		t.Fatalf("no success line:\n%s", h.out.String())
	}
	// 2. The same bytes again within 2 s: skipped, nothing logged.
	n := lines()
	if err := h.srv.reload(write(text)); err != nil || lines() != n {
		t.Fatalf("identical reload not skipped: %v\n%s", err, h.out.String())
	}
	// 3. Adding a passthrough domain in strict mode is refused; the old config stays.
	down := strings.Replace(text, "    - api.anthropic.com\n", "    - api.anthropic.com\n    - example.com\n", 1)
	if err := h.srv.reload(write(down)); err == nil || err.Error() != "rejected: security downgrade from strict mode" {
		t.Fatalf("downgrade not refused: %v", err)
	}
	if !strings.Contains(h.out.String(), `"event":"error","method":"CONFIG_RELOAD","resource":"`+path+`","error":"rejected: security downgrade from strict mode"`) {
		t.Fatalf("no rejection line:\n%s", h.out.String())
	}
	if !strings.Contains(h.err.String(), "WARNING: config reload: tls_interception.passthrough_domains - passthrough domains added: example.com") {
		t.Fatalf("no WARNING on stderr:\n%s", h.err.String())
	}
	// 4. While the file still carries the downgrade, a further allowlist removal is refused too:
	// the comparison is with the RUNNING config, so the removed host still answers.
	if err := h.srv.reload(write(strings.Replace(down, "  - new.test.example\n", "", 1))); err == nil {
		t.Fatal("a file that still holds the downgrade must stay refused")
	}
	if !allowed("new.test.example") {
		t.Fatal("the old allowlist must still be enforced after a refused reload")
	}
	// 5. Widening ssrf.ip_allowlist is refused the same way.
	if err := h.srv.reload(write(strings.Replace(text, "    - 127.0.0.1/32\n", "    - 127.0.0.1/32\n    - 10.9.0.0/16\n", 1))); err == nil {
		t.Fatal("ip_allowlist widening must be refused in strict mode")
	}
	// 6. Turning interception off is refused in any mode (implausible teardown).
	err := h.srv.reload(write(strings.Replace(strings.Replace(text, "mode: strict", "mode: balanced", 1), "tls_interception:\n  enabled: true", "tls_interception:\n  enabled: false", 1)))
	if err == nil || !strings.HasPrefix(err.Error(), "rejected: implausibly empty config reload would weaken security posture: tls_interception.enabled disabled") {
		t.Fatalf("teardown: %v", err)
	}
	// 7. tryReload: an unparsable file keeps the old config and says so on stderr.
	os.WriteFile(path, []byte(text+"bogus_field: 1\n"), 0o644)
	h.srv.tryReload()
	if !strings.Contains(h.err.String(), "pipelock: config reload failed: parsing config "+path+": yaml: unmarshal errors:") ||
		!strings.Contains(h.err.String(), "field bogus_field not found in type config.Config") {
		t.Fatalf("stderr:\n%s", h.err.String())
	}
	if !allowed("new.test.example") {
		t.Fatal("a failed reload must keep the running config")
	}
}

func TestWatcherReloadsOnWriteAndRename(t *testing.T) {
	h := newHarness(t, nil)
	path := h.srv.path
	orig, _ := os.ReadFile(path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.srv.watch(ctx, path, 20*time.Millisecond, 10*time.Millisecond)
	waitFor := func(hash string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(h.out.String(), `"config_hash":"`+hash+`"`) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no reload of %s:\n%s", hash, h.out.String())
	}
	time.Sleep(50 * time.Millisecond)
	// In-place write.
	a := strings.Replace(string(orig), "  - example.com\n", "  - example.com\n  - a.test.example\n", 1)
	os.WriteFile(path, []byte(a), 0o644)
	waitFor(sha(a))
	// Atomic rename-replace.
	b := strings.Replace(a, "  - a.test.example\n", "  - b.test.example\n", 1)
	tmp := path + ".tmp"
	os.WriteFile(tmp, []byte(b), 0o644)
	os.Rename(tmp, path)
	waitFor(sha(b))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
