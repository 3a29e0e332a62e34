package main

import "net/http"

// Block-reason header set. Mirrors internal/blockreason/blockreason.go (header names, v1 vocabulary,
// SeverityFor, RetryFor) and internal/proxy/blockheaders.go (reasonFromScanner, blockInfo,
// blockInfoFor, writeBlockedError).

const (
	headerReason   = "X-Pipelock-Block-Reason"
	headerVersion  = "X-Pipelock-Block-Reason-Version"
	headerSeverity = "X-Pipelock-Block-Reason-Severity"
	headerRetry    = "X-Pipelock-Block-Reason-Retry"
	headerLayer    = "X-Pipelock-Block-Reason-Layer"
	headerHint     = "X-Pipelock-Hint"
	schemaVersion  = "1"
)

// Reason codes the stand-in can emit (a subset of the v1 vocabulary).
const (
	reasonSchemeBlocked      = "scheme_blocked"
	reasonSSRFPrivateIP      = "ssrf_private_ip"
	reasonSSRFMetadata       = "ssrf_metadata"
	reasonURLLength          = "url_length"
	reasonRateLimit          = "rate_limit"
	reasonDataBudget         = "data_budget"
	reasonDLPMatch           = "dlp_match"
	reasonAuthorityMismatch  = "authority_mismatch"
	reasonCompressedResponse = "compressed_response"
	reasonParseError         = "parse_error"
	reasonBadRequest         = "bad_request"
	reasonNotEnabled         = "not_enabled"
)

// Scanner labels (internal/scanner/scanner.go, core.go, proxy/bodyscan.go constants).
const (
	scannerParser        = "parser"
	scannerScheme        = "scheme"
	scannerLength        = "length"
	scannerSSRF          = "ssrf"
	scannerSSRFMetadata  = "ssrf_metadata"
	scannerAllowlist     = "allowlist"
	scannerRateLimit     = "ratelimit"
	scannerDLP           = "dlp"
	scannerPathTraversal = "path_traversal"
	scannerCRLF          = "crlf_injection"
	scannerCoreDLP       = "core_dlp"
	scannerCoreSSRF      = "core_ssrf"
	scannerBodyDLP       = "body_dlp"
	scannerHeaderDLP     = "header_dlp"
	layerTLSResponse     = "tls_response_blocked"
)

type blockInfoT struct {
	reason, severity, retry, layer string
}

// reasonFromScanner mirrors blockheaders.go: labels without a case (allowlist, core_ssrf, crlf,
// path_traversal, ...) fall to parse_error.
func reasonFromScanner(label string) string {
	switch label {
	case scannerScheme:
		return reasonSchemeBlocked
	case scannerSSRFMetadata:
		return reasonSSRFMetadata
	case scannerSSRF:
		return reasonSSRFPrivateIP
	case scannerLength:
		return reasonURLLength
	case scannerRateLimit:
		return reasonRateLimit
	case scannerDLP, scannerCoreDLP, scannerBodyDLP:
		return reasonDLPMatch
	default:
		return reasonParseError
	}
}

// severityFor mirrors blockreason.SeverityFor.
func severityFor(reason string) string {
	switch reason {
	case reasonNotEnabled, reasonBadRequest:
		return "info"
	case reasonSchemeBlocked, "path_entropy", "subdomain_entropy", reasonURLLength, reasonRateLimit, reasonDataBudget,
		"media_policy", reasonParseError, "timeout", "pattern_unavailable":
		return "warn"
	default:
		return "critical"
	}
}

// retryFor mirrors blockreason.RetryFor.
func retryFor(reason string) string {
	switch reason {
	case "ssrf_dns_rebind", reasonRateLimit, "airlock_active", "kill_switch_active", "escalation_level",
		"redaction_failure", "timeout", "pattern_unavailable":
		return "transient"
	case "domain_blocklist", "path_entropy", "subdomain_entropy", reasonURLLength, reasonDataBudget, "media_policy",
		"tool_policy_deny", "session_binding", reasonAuthorityMismatch, reasonNotEnabled:
		return "policy"
	default:
		return "none"
	}
}

// blockInfo mirrors blockheaders.go blockInfo: reason from the scanner label, layer = the label.
func blockInfo(scannerLabel string) blockInfoT {
	return blockInfoFor(reasonFromScanner(scannerLabel), scannerLabel)
}

// blockInfoFor mirrors blockheaders.go blockInfoFor.
func blockInfoFor(reason, layer string) blockInfoT {
	return blockInfoT{reason: reason, severity: severityFor(reason), retry: retryFor(reason), layer: layer}
}

// setHeaders mirrors blockreason.Info.SetHeaders.
func (i blockInfoT) setHeaders(h http.Header) {
	h.Set(headerReason, i.reason)
	h.Set(headerVersion, schemaVersion)
	h.Set(headerSeverity, i.severity)
	h.Set(headerRetry, i.retry)
	if i.layer != "" {
		h.Set(headerLayer, i.layer)
	}
}

// writeBlockedError mirrors blockheaders.go writeBlockedError: the header set, then http.Error
// (text/plain; charset=utf-8, nosniff, body + "\n").
func writeBlockedError(w http.ResponseWriter, info blockInfoT, body string, status int) {
	info.setHeaders(w.Header())
	http.Error(w, body, status)
}
