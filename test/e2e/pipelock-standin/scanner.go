package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"claude-bottle.test/pipelock-standin/config"
)

// scanResult mirrors internal/scanner/scanner.go Result (the fields the proxy paths read).
type scanResult struct {
	allowed bool
	reason  string
	scanner string
	hint    string
}

// scannerHints mirrors scanner.go scannerHints (the v2.3.0-era table: its core-DLP text is the hint
// measured on the real binary). Hints reach the client only with explain_blocks (X-Pipelock-Hint).
var scannerHints = map[string]string{
	scannerSSRF:          "SSRF protection blocked this URL. It may resolve to a private IP or DNS resolution failed.",
	scannerRateLimit:     "Rate limit exceeded. Retry later or adjust fetch_proxy.monitoring.max_requests_per_minute.",
	scannerLength:        "URL exceeds maximum length. Check for data stuffing in query parameters.",
	scannerScheme:        "Only http and https schemes are allowed.",
	scannerAllowlist:     "Domain not on the allowlist. In strict mode, only allowlisted domains are reachable.",
	scannerParser:        "The URL could not be parsed.",
	scannerCRLF:          "CRLF injection sequence detected in URL. This is never legitimate in normal traffic.",
	scannerPathTraversal: "Path traversal sequence detected. Review the URL for directory escape attempts.",
	scannerCoreDLP:       "Core DLP pattern matched. This is a critical credential detection that cannot be disabled.",
	scannerCoreSSRF:      "Core SSRF protection blocked this URL. Private IP ranges are always blocked.",
}

// coreInternalCIDRs mirrors scanner/core.go coreInternalCIDRDefs: always checked when SSRF is active.
var coreInternalCIDRs = mustCIDRs([]string{
	"0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
	"168.63.129.16/32", "100.64.0.0/10", "224.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
})

// metadataIPs mirrors scanner.go metadataIPv4s / metadataIPv6.
var metadataIPs = map[string]bool{"169.254.169.254": true, "168.63.129.16": true, "fd00:ec2::254": true}

func mustCIDRs(list []string) []*net.IPNet {
	out := make([]*net.IPNet, 0, len(list))
	for _, c := range list {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	return out
}

// urlScanner mirrors scanner.New + Scan for the implemented layers. One is built per loaded config
// (a reload builds a new one, so the rate-limit window restarts, as in pipelock).
type urlScanner struct {
	allowlist    []string // enforced only in strict mode (scanner.New)
	rawAllowlist []string // api_allowlist in every mode, for hints (IsInAPIAllowlist)
	internal     []*net.IPNet
	ipAllowlist  []*net.IPNet
	trusted      []string
	maxURLLength int
	resolver     *hostsResolver
	rateLimiter  *rateLimiter
}

func newURLScanner(cfg *config.Config, resolver *hostsResolver) *urlScanner {
	s := &urlScanner{
		rawAllowlist: cfg.APIAllowlist,
		internal:     mustCIDRs(cfg.Internal),
		ipAllowlist:  mustCIDRs(cfg.SSRF.IPAllowlist),
		trusted:      cfg.TrustedDomains,
		maxURLLength: cfg.FetchProxy.Monitoring.MaxURLLength,
		resolver:     resolver,
		rateLimiter:  newRateLimiter(cfg.FetchProxy.Monitoring.MaxReqPerMinute),
	}
	if cfg.Mode == config.ModeStrict {
		s.allowlist = cfg.APIAllowlist
	}
	return s
}

// Scan mirrors scanner.go Scan/scan, in its order: length, parse, scheme, CRLF, path traversal,
// allowlist, core DLP, SSRF, rate limit. Not implemented (pipelock would also run them): the
// blocklist, the non-core DLP patterns, path/query/subdomain entropy, the data budget.
func (s *urlScanner) Scan(rawURL string) scanResult {
	r := s.scan(rawURL)
	if !r.allowed && r.hint == "" {
		r.hint = scannerHints[r.scanner]
	}
	return r
}

func (s *urlScanner) scan(rawURL string) scanResult {
	if s.maxURLLength > 0 && len(rawURL) > s.maxURLLength {
		return scanResult{reason: fmt.Sprintf("URL length %d exceeds maximum %d", len(rawURL), s.maxURLLength), scanner: scannerLength}
	}
	parsed, err := url.Parse(rawURL)
	if err != nil {
		return scanResult{reason: "invalid URL", scanner: scannerParser}
	}
	hostname := strings.ToLower(parsed.Hostname())
	if parsed.Scheme != "http" && parsed.Scheme != "https" {
		return scanResult{reason: fmt.Sprintf("scheme %q not allowed: only http and https", parsed.Scheme), scanner: scannerScheme}
	}
	if r := checkCRLF(rawURL); !r.allowed {
		return r
	}
	if r := checkPathTraversal(parsed); !r.allowed {
		return r
	}
	if r := s.checkAllowlist(hostname); !r.allowed {
		return r
	}
	if r := checkCoreDLPURL(parsed); !r.allowed {
		return r
	}
	if r := s.checkSSRF(hostname); !r.allowed {
		return r
	}
	if !s.rateLimiter.checkAndRecord(baseDomain(hostname)) {
		return scanResult{reason: fmt.Sprintf("rate limit exceeded for %s", hostname), scanner: scannerRateLimit}
	}
	return scanResult{allowed: true, scanner: "all"}
}

// MatchDomain mirrors scanner.MatchDomain: case-insensitive, trailing dot ignored, "*.x" matches
// every subdomain depth AND the apex x, IP addresses match exactly.
func MatchDomain(hostname, pattern string) bool {
	hostname = strings.ToLower(strings.TrimSuffix(hostname, "."))
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	if net.ParseIP(hostname) != nil {
		return hostname == pattern
	}
	if strings.HasPrefix(pattern, "*.") {
		return hostname == pattern[2:] || strings.HasSuffix(hostname, pattern[1:])
	}
	return hostname == pattern
}

// isPassthrough mirrors proxy/intercept.go isPassthrough: a different matcher from the allowlist's,
// "*.x" matches subdomains but NOT the apex x.
func isPassthrough(host string, domains []string) bool {
	host = strings.ToLower(host)
	for _, p := range domains {
		p = strings.ToLower(p)
		if p == host || (strings.HasPrefix(p, "*.") && strings.HasSuffix(host, p[1:])) {
			return true
		}
	}
	return false
}

// checkAllowlist mirrors scanner.go checkAllowlist (empty list = everything allowed).
func (s *urlScanner) checkAllowlist(hostname string) scanResult {
	if len(s.allowlist) == 0 {
		return scanResult{allowed: true}
	}
	for _, p := range s.allowlist {
		if MatchDomain(hostname, p) {
			return scanResult{allowed: true}
		}
	}
	return scanResult{reason: fmt.Sprintf("domain not in allowlist: %s", hostname), scanner: scannerAllowlist}
}

func (s *urlScanner) inAPIAllowlist(hostname string) bool {
	for _, p := range s.rawAllowlist {
		if MatchDomain(hostname, p) {
			return true
		}
	}
	return false
}

func (s *urlScanner) ipAllowlisted(ip net.IP) bool {
	for _, n := range s.ipAllowlist {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// checkSSRF mirrors scanner.go checkSSRF: active only when `internal` is non-empty; the checked set
// is the core CIDRs plus `internal`; an address inside ssrf.ip_allowlist is skipped (it is still
// "internal", just trusted); trusted_domains bypass the check by name (never for IP literals); a
// resolution failure fails closed. Resolution is the stand-in's hosts file, never DNS.
func (s *urlScanner) checkSSRF(hostname string) scanResult {
	if len(s.internal) == 0 {
		return s.checkCoreSSRFLiteral(hostname)
	}
	all := append(append([]*net.IPNet{}, coreInternalCIDRs...), s.internal...)
	ips, err := s.resolver.LookupHost(hostname)
	if err != nil {
		return scanResult{reason: fmt.Sprintf("SSRF check failed: DNS resolution error for %s: lookup %s: no such host", hostname, hostname), scanner: scannerSSRF}
	}
	if s.isTrustedDomain(hostname) {
		return scanResult{allowed: true}
	}
	for _, ipStr := range ips {
		ip := net.ParseIP(ipStr)
		if ip == nil {
			continue
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		for _, n := range all {
			if !n.Contains(ip) {
				continue
			}
			if s.ipAllowlisted(ip) {
				continue
			}
			label, reason := scannerSSRF, fmt.Sprintf("SSRF blocked: %s resolves to internal IP %s", hostname, ipStr)
			if metadataIPs[ip.String()] {
				label, reason = scannerSSRFMetadata, fmt.Sprintf("SSRF blocked: %s resolves to cloud metadata endpoint %s", hostname, ipStr)
			}
			r := scanResult{reason: reason, scanner: label}
			if s.inAPIAllowlist(hostname) {
				if net.ParseIP(hostname) != nil {
					r.hint = fmt.Sprintf("add %q to ssrf.ip_allowlist to allow this internal IP", ipStr)
				} else {
					r.hint = fmt.Sprintf("add %q to trusted_domains to allow internal IP resolution", hostname)
				}
			}
			return r
		}
	}
	return scanResult{allowed: true}
}

// checkCoreSSRFLiteral mirrors scanner/core.go checkCoreSSRFLiteral: the floor for IP literals that
// runs only when `internal` is empty (SSRF DNS check off).
func (s *urlScanner) checkCoreSSRFLiteral(hostname string) scanResult {
	ip := net.ParseIP(hostname)
	if ip == nil {
		return scanResult{allowed: true}
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	if s.ipAllowlisted(ip) {
		return scanResult{allowed: true}
	}
	for _, n := range coreInternalCIDRs {
		if n.Contains(ip) {
			return scanResult{reason: fmt.Sprintf("core SSRF: %s is a private/internal IP address", hostname), scanner: scannerCoreSSRF}
		}
	}
	return scanResult{allowed: true}
}

func (s *urlScanner) isTrustedDomain(hostname string) bool {
	if net.ParseIP(hostname) != nil {
		return false
	}
	for _, p := range s.trusted {
		if MatchDomain(hostname, p) {
			return true
		}
	}
	return false
}

// checkCoreDLPURL mirrors scanner/core.go checkCoreDLP over the targets it builds: path, decoded
// query, each query key/value, the dot-collapsed hostname, the decoded path, and the whole URL.
// Reason text: "core DLP match: <name> (<severity>)".
func checkCoreDLPURL(u *url.URL) scanResult {
	targets := []string{u.Path, iterativeDecode(u.RawQuery)}
	for k, vs := range u.Query() {
		targets = append(targets, iterativeDecode(k))
		for _, v := range vs {
			targets = append(targets, iterativeDecode(v))
		}
	}
	if h := u.Hostname(); strings.Contains(h, ".") {
		targets = append(targets, strings.ReplaceAll(h, ".", ""))
	}
	targets = append(targets, iterativeDecode(u.EscapedPath()), u.String())
	for _, p := range coreDLPPatterns {
		for _, t := range targets {
			if t != "" && p.re.MatchString(t) {
				return scanResult{reason: fmt.Sprintf("core DLP match: %s (%s)", p.name, p.severity), scanner: scannerCoreDLP}
			}
		}
	}
	return scanResult{allowed: true}
}

// checkCRLF mirrors scanner.go checkCRLF.
func checkCRLF(rawURL string) scanResult {
	if i := strings.IndexByte(rawURL, '#'); i != -1 {
		rawURL = rawURL[:i]
	}
	lower := strings.ToLower(rawURL)
	switch {
	case strings.Contains(lower, "%0d%0a"):
		return scanResult{reason: "CRLF injection sequence in URL", scanner: scannerCRLF}
	case strings.Contains(lower, "%250d%250a"):
		return scanResult{reason: "double-encoded CRLF injection sequence in URL", scanner: scannerCRLF}
	case strings.Contains(lower, "%0a") || strings.Contains(lower, "%0d"):
		return scanResult{reason: "encoded CR or LF in URL", scanner: scannerCRLF}
	case strings.Contains(lower, "%250a") || strings.Contains(lower, "%250d"):
		return scanResult{reason: "double-encoded CR or LF in URL", scanner: scannerCRLF}
	case strings.ContainsAny(rawURL, "\r\n"):
		return scanResult{reason: "raw CRLF bytes in URL", scanner: scannerCRLF}
	}
	return scanResult{allowed: true}
}

// checkPathTraversal mirrors scanner.go checkPathTraversal.
func checkPathTraversal(u *url.URL) scanResult {
	raw := u.RawPath
	if raw == "" {
		raw = u.Path
	}
	lower := strings.ToLower(raw)
	for _, dd := range []string{"..", "%2e.", ".%2e", "%2e%2e"} {
		for _, left := range []string{"/", "\\", "%2f", "%5c"} {
			for _, right := range []string{"/", "\\", "%2f", "%5c"} {
				if strings.Contains(lower, left+dd+right) {
					return scanResult{reason: "path traversal sequence in URL", scanner: scannerPathTraversal}
				}
			}
			if strings.HasSuffix(lower, left+dd) {
				return scanResult{reason: "path traversal sequence in URL", scanner: scannerPathTraversal}
			}
		}
	}
	if strings.Contains(lower, "/%252e%252e/") || strings.Contains(lower, "/%252e%252e%252f") || strings.HasSuffix(lower, "/%252e%252e") {
		return scanResult{reason: "double-encoded path traversal in URL", scanner: scannerPathTraversal}
	}
	return scanResult{allowed: true}
}

// baseDomain approximates scanner.go baseDomain (registrable domain via the public-suffix list) as
// the last two labels; IP literals count as themselves. Only the rate-limit bucket key depends on it.
func baseDomain(host string) string {
	if net.ParseIP(host) != nil {
		return host
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(labels) <= 2 {
		return host
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// rateLimiter mirrors scanner/ratelimit.go: a per-domain sliding one-minute window, checked and
// recorded atomically (CheckAndRecord).
type rateLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	hits   map[string][]time.Time
	now    func() time.Time
}

func newRateLimiter(perMinute int) *rateLimiter {
	return &rateLimiter{limit: perMinute, window: time.Minute, hits: map[string][]time.Time{}, now: time.Now}
}

func (r *rateLimiter) checkAndRecord(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	kept := r.hits[key][:0]
	for _, t := range r.hits[key] {
		if now.Sub(t) < r.window {
			kept = append(kept, t)
		}
	}
	if len(kept) >= r.limit {
		r.hits[key] = kept
		return false
	}
	r.hits[key] = append(kept, now)
	return true
}

// hostPort splits a CONNECT target the way forward.go handleConnect does (default port 443).
func hostPort(target string) (host, port string) {
	h, p, err := net.SplitHostPort(target)
	if err != nil {
		return strings.TrimPrefix(strings.TrimSuffix(target, "]"), "["), "443"
	}
	return h, p
}
