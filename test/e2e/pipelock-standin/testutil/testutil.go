// Package testutil holds fixtures shared by the stand-in's Go tests (imported only by _test files,
// so it never reaches the binary).
package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WriteCA writes a P-256 CA with a SEC1 "EC PRIVATE KEY" (as claude-bottle's components/ca.ts mints
// pipelock's CA) into dir; the key file gets keyMode exactly.
func WriteCA(t *testing.T, dir string, keyMode os.FileMode) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), keyMode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, keyMode); err != nil { // umask-proof
		t.Fatal(err)
	}
	return certPath, keyPath
}

// Rendered is the shape contracts/pipelock.ts renderPipelockConfig writes (allowlist api.test.example
// and *.wild.test.example, loopback SSRF-allowlisted for local test servers, metrics on a free
// loopback port).
func Rendered(caCert, caKey string) string {
	return `# Rendered by claude-bottle
version: 1
mode: strict
enforce: true
explain_blocks: true
api_allowlist:
  - "*.wild.test.example"
  - api.test.example
fetch_proxy:
  listen: 0.0.0.0:8888
  monitoring:
    max_requests_per_minute: 6000
metrics_listen: 127.0.0.1:0
forward_proxy:
  enabled: true
  max_tunnel_seconds: 3600
  idle_timeout_seconds: 1800
tls_interception:
  enabled: true
  ca_cert: ` + caCert + `
  ca_key: ` + caKey + `
  passthrough_domains:
    - api.anthropic.com
  max_response_bytes: 134217728
request_body_scanning:
  enabled: true
  action: block
  max_body_bytes: 33554432
  scan_headers: true
  header_mode: sensitive
  sensitive_headers:
    - Cookie
    - X-Token
    - Proxy-Authorization
    - X-Goog-Api-Key
ssrf:
  ip_allowlist:
    - 127.0.0.1/32
logging:
  format: json
  output: stdout
  include_allowed: true
  include_blocked: true
`
}
