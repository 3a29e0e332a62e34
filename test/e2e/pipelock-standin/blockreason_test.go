package main

import (
	"net/http/httptest"
	"testing"
)

func TestBlockInfoMapping(t *testing.T) {
	cases := []struct {
		info                           blockInfoT
		reason, severity, retry, layer string
	}{
		{blockInfo(scannerAllowlist), "parse_error", "warn", "none", "allowlist"}, // no allowlist case in reasonFromScanner
		{blockInfo(scannerSSRF), "ssrf_private_ip", "critical", "none", "ssrf"},
		{blockInfo(scannerSSRFMetadata), "ssrf_metadata", "critical", "none", "ssrf_metadata"},
		{blockInfo(scannerCoreDLP), "dlp_match", "critical", "none", "core_dlp"},
		{blockInfo(scannerBodyDLP), "dlp_match", "critical", "none", "body_dlp"},
		{blockInfo(scannerRateLimit), "rate_limit", "warn", "transient", "ratelimit"},
		{blockInfo(scannerLength), "url_length", "warn", "policy", "length"},
		{blockInfo(scannerCoreSSRF), "parse_error", "warn", "none", "core_ssrf"},
		{blockInfoFor(reasonDLPMatch, scannerHeaderDLP), "dlp_match", "critical", "none", "header_dlp"},
		{blockInfoFor(reasonDataBudget, layerTLSResponse), "data_budget", "warn", "policy", "tls_response_blocked"},
		{blockInfoFor(reasonCompressedResponse, layerTLSResponse), "compressed_response", "critical", "none", "tls_response_blocked"},
		{blockInfoFor(reasonAuthorityMismatch, ""), "authority_mismatch", "critical", "policy", ""},
	}
	for _, c := range cases {
		i := c.info
		if i.reason != c.reason || i.severity != c.severity || i.retry != c.retry || i.layer != c.layer {
			t.Errorf("got %+v, want %s/%s/%s/%s", i, c.reason, c.severity, c.retry, c.layer)
		}
	}
}

func TestBlockedResponseShape(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set(headerHint, "Domain not on the allowlist. In strict mode, only allowlisted domains are reachable.")
	writeBlockedError(rec, blockInfo(scannerAllowlist), "CONNECT blocked: domain not in allowlist: evil.example", 403)
	want := map[string]string{
		"Content-Type":                     "text/plain; charset=utf-8",
		"X-Content-Type-Options":           "nosniff",
		"X-Pipelock-Block-Reason":          "parse_error",
		"X-Pipelock-Block-Reason-Version":  "1",
		"X-Pipelock-Block-Reason-Severity": "warn",
		"X-Pipelock-Block-Reason-Retry":    "none",
		"X-Pipelock-Block-Reason-Layer":    "allowlist",
		"X-Pipelock-Hint":                  "Domain not on the allowlist. In strict mode, only allowlisted domains are reachable.",
	}
	if rec.Code != 403 {
		t.Fatalf("status %d", rec.Code)
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if body := rec.Body.String(); body != "CONNECT blocked: domain not in allowlist: evil.example\n" {
		t.Errorf("body %q", body)
	}
	// No layer: the optional header is absent.
	rec = httptest.NewRecorder()
	writeBlockedError(rec, blockInfoFor(reasonAuthorityMismatch, ""), "authority mismatch: blocked", 403)
	if _, ok := rec.Header()["X-Pipelock-Block-Reason-Layer"]; ok {
		t.Error("empty layer must not be sent")
	}
}
