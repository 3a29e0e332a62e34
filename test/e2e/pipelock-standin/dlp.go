package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"claude-bottle.test/pipelock-standin/config"
)

// corePattern mirrors one entry of internal/config/dlp_patterns.go's core set (coreDLPPatternNames +
// defaultDLPPatternSet regexes). scanner/core.go initCoreScanner forces (?i) onto every core regex.
type corePattern struct {
	name, severity string
	re             *regexp.Regexp
}

var coreDLPPatterns = func() []corePattern {
	defs := []struct{ name, regex string }{
		{"AWS Access ID", `(AKIA|A3T|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16,}`},
		{"AWS Secret Key", `(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY|secret.?access.?key|SecretAccessKey)\s*["'=:\s]{1,5}\s*[A-Za-z0-9/+=]{40}`},
		{"GCP Service Account Key", `"type"\s*:\s*"service_account"`},
		{"GitHub Token", `gh[pousr]_[A-Za-z0-9_]{36,}`},
		{"GitHub Fine-Grained PAT", `github_pat_[a-zA-Z0-9_]{36,}`},
		{"GitLab PAT", `glpat-[a-zA-Z0-9\-_]{20,}`},
		{"Slack Token", `xox[bpras]-[0-9a-zA-Z-]{15,}`},
		{"Private Key Header", `-----BEGIN\s+(RSA\s+|EC\s+|DSA\s+|OPENSSH\s+|PGP\s+)?PRIVATE\s+KEY(\s+BLOCK)?-----`},
	}
	out := make([]corePattern, 0, len(defs))
	for _, d := range defs {
		out = append(out, corePattern{name: d.name, severity: "critical", re: regexp.MustCompile("(?i)" + d.regex)})
	}
	return out
}()

// scanTextCoreDLP mirrors scanner/core.go scanCoreDLP: the text as is, its iterative URL decode, the
// dot-collapsed and whitespace-compacted forms, and (only when nothing matched) base64/hex decodes of
// long tokens. Not mirrored: normalize.ForDLP's Unicode folding, HTML-entity decoding and the
// recursive multi-encoding fixpoint. Returns pattern names in core-pattern order, deduplicated.
func scanTextCoreDLP(text string) []string {
	if text == "" {
		return nil
	}
	variants := []string{text}
	if d := iterativeDecode(text); d != text {
		variants = append(variants, d)
	}
	if strings.Contains(text, ".") {
		variants = append(variants, strings.ReplaceAll(text, ".", ""))
	}
	if c := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, text); c != text {
		variants = append(variants, c)
	}
	names := matchCore(variants)
	if len(names) == 0 {
		names = matchCore(decodedTokens(text))
	}
	return names
}

func matchCore(texts []string) []string {
	var names []string
	for _, p := range coreDLPPatterns {
		for _, t := range texts {
			if p.re.MatchString(t) {
				names = append(names, p.name)
				break
			}
		}
	}
	return names
}

// decodedTokens returns printable base64/hex decodes of tokens of 10+ characters
// (core.go decodeCoreDLPTextSegments, one level deep).
func decodedTokens(text string) []string {
	var out []string
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '+' || r == '/' || r == '=' || r == '-' || r == '_')
	}) {
		if len(tok) < 10 {
			continue
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(tok); err == nil && printable(b) {
				out = append(out, string(b))
			}
		}
		if b, err := hex.DecodeString(tok); err == nil && printable(b) {
			out = append(out, string(b))
		}
	}
	return out
}

func printable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// iterativeDecode mirrors scanner.IterativeDecode: URL-decode until the string stops changing.
func iterativeDecode(s string) string {
	for i := 0; i < 500; i++ {
		d, err := url.QueryUnescape(s)
		if err != nil || d == s {
			break
		}
		s = d
	}
	return s
}

// bodyScanResult mirrors the parts of proxy/bodyscan.go BodyScanResult the stand-in fills.
type bodyScanResult struct {
	clean      bool
	reason     string   // set for fail-closed results (too big, compressed, unparsable)
	dlpMatches []string // core pattern names
	failClosed bool     // no replayable bytes: block regardless of action
}

// blockReason mirrors intercept.go/forward.go: the fail-closed reason, else the pattern names.
func (r bodyScanResult) blockReason() string {
	if r.reason != "" {
		return r.reason
	}
	return "request body contains secret: " + strings.Join(r.dlpMatches, ", ")
}

// scanRequestBody mirrors proxy/bodyscan.go scanRequestBody for the core patterns: compressed bodies
// and bodies over max_body_bytes fail closed; JSON and form bodies are scanned field by field, plus
// the fields joined (sorted) so a secret split across fields is still seen; anything else as text.
func scanRequestBody(body io.Reader, contentType, contentEncoding string, maxBytes int) ([]byte, bodyScanResult) {
	if hasNonIdentityEncoding(contentEncoding) {
		return nil, bodyScanResult{reason: fmt.Sprintf("request body uses Content-Encoding %q; compressed bodies cannot be scanned for secrets", contentEncoding), failClosed: true}
	}
	buf, err := io.ReadAll(io.LimitReader(body, int64(maxBytes)+1))
	if err != nil {
		return nil, bodyScanResult{reason: fmt.Sprintf("error reading request body: %v", err), failClosed: true}
	}
	if len(buf) > maxBytes {
		return nil, bodyScanResult{reason: fmt.Sprintf("request body exceeds max_body_bytes (%d)", maxBytes), failClosed: true}
	}
	if len(buf) == 0 {
		return buf, bodyScanResult{clean: true}
	}
	texts, errText := extractBodyText(buf, contentType)
	if errText != "" {
		return nil, bodyScanResult{reason: errText, failClosed: true}
	}
	seen := map[string]bool{}
	var names []string
	addAll := func(ns []string) {
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	for _, t := range texts {
		addAll(scanTextCoreDLP(t))
	}
	sorted := append([]string(nil), texts...)
	sort.Strings(sorted)
	addAll(scanTextCoreDLP(strings.Join(sorted, "\n")))
	if len(names) == 0 {
		return buf, bodyScanResult{clean: true}
	}
	return buf, bodyScanResult{dlpMatches: names}
}

// extractBodyText mirrors bodyscan.go extractBodyTextForDLP: JSON keys and scalar values (a body
// that does not parse fails closed), form keys and values, otherwise the body as one text.
func extractBodyText(body []byte, contentType string) ([]string, string) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var texts []string
		depth, started := 0, false
		for {
			tok, err := dec.Token()
			if errors.Is(err, io.EOF) {
				if !started {
					return nil, "decoding JSON body for DLP: empty JSON body"
				}
				if depth != 0 {
					return nil, "decoding JSON body for DLP: unexpected EOF"
				}
				return texts, ""
			}
			if err != nil {
				return nil, "decoding JSON body for DLP: " + err.Error()
			}
			if started && depth == 0 {
				return nil, "decoding JSON body for DLP: multiple JSON values"
			}
			started = true
			switch v := tok.(type) {
			case json.Delim:
				if v == '{' || v == '[' {
					depth++
				} else {
					depth--
				}
			case string:
				texts = append(texts, v)
			case json.Number:
				texts = append(texts, v.String())
			case bool:
				texts = append(texts, strconv.FormatBool(v))
			}
		}
	case mediaType == "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, "invalid application/x-www-form-urlencoded body"
		}
		var texts []string
		for k, vs := range vals {
			texts = append(texts, k)
			texts = append(texts, vs...)
		}
		return texts, ""
	default:
		return []string{string(body)}, ""
	}
}

// scanRequestHeaders mirrors bodyscan.go scanRequestHeaders in `sensitive` mode: only the
// configured header names are scanned (so Authorization carrying a token passes when the list
// leaves it out, as measured on v2.3.0).
func scanRequestHeaders(h http.Header, cfg *config.Config) []string {
	var names []string
	for _, name := range cfg.RequestBodyScanning.SensitiveHeaders {
		for _, v := range h.Values(name) {
			names = append(names, scanTextCoreDLP(v)...)
		}
	}
	return names
}

// hasNonIdentityEncoding mirrors proxy hasNonIdentityEncoding (comma-separated tokens, RFC 7231).
func hasNonIdentityEncoding(enc string) bool {
	for _, tok := range strings.Split(enc, ",") {
		tok = strings.ToLower(strings.TrimSpace(tok))
		if tok != "" && tok != "identity" {
			return true
		}
	}
	return false
}
