package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// StandIn names the binary in every refusal that is the stand-in's own (not pipelock's).
const StandIn = "pipelock TEST-ONLY STAND-IN"

// Defaults pipelock fills in for zero values (internal/config/defaults.go, normalize.go ApplyDefaults).
const (
	DefaultMaxReqPerMinute    = 60
	DefaultMaxURLLength       = 2048
	DefaultMaxTunnelSeconds   = 300
	DefaultIdleTimeoutSeconds = 120
	DefaultCertTTL            = "24h"
	DefaultCertCacheSize      = 10000
	DefaultMaxResponseBytes   = 5 * 1024 * 1024 // intercept.go interceptDefaultMaxResp
	DefaultMaxBodyBytes       = 5 * 1024 * 1024
)

// DefaultSensitiveHeaders mirrors the v2.3.0 default list (shared/facts/pipelock.md §1).
var DefaultSensitiveHeaders = []string{"Authorization", "Cookie", "X-Api-Key", "X-Token", "Proxy-Authorization", "X-Goog-Api-Key"}

// DefaultInternal is the `internal` list pipelock fills when the key is omitted ("RFC1918, loopback,
// link-local, CGNAT, ULA, multicast (12 entries)"). The exact 12 were not read; the scanner merges
// these with the immutable core CIDRs (scanner/core.go coreInternalCIDRDefs), which cover all of them,
// so the checked set is the same either way.
var DefaultInternal = []string{
	"0.0.0.0/8", "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
	"100.64.0.0/10", "224.0.0.0/4", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
}

// Load reads, parses, defaults and validates a config file. Mirrors internal/config/load.go load():
// same error wrapping ("reading config", "parsing config", "invalid config").
func Load(path string) (*Config, error) {
	data, err := readStableRegularFile(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	return LoadBytes(data, path, filepath.Dir(path))
}

// LoadBytes mirrors load.go loadBytes for the implemented slice of the schema.
func LoadBytes(data []byte, sourceName, configDir string) (*Config, error) {
	cfg := &Config{}
	// Strict parse (load.go: decoder.KnownFields(true)): unknown fields at any level are an error.
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)
	if err := decoder.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing config %s: %w", sourceName, err)
	}
	// load.go: a second `---` document is rejected.
	var extra yaml.Node
	if err := decoder.Decode(&extra); err == nil {
		return nil, fmt.Errorf("parsing config %s: multiple YAML documents not supported (pipelock config must be a single document)", sourceName)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing config %s: %w", sourceName, err)
	}
	cfg.rawBytes = data

	if err := cfg.refuseUnimplemented(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	applySecurityDefaults(data, cfg)
	cfg.ApplyDefaults()

	// load.go: relative CA paths resolve against the config file's directory.
	if cfg.TLSInterception.CACertPath != "" && !filepath.IsAbs(cfg.TLSInterception.CACertPath) {
		cfg.TLSInterception.CACertPath = filepath.Join(configDir, cfg.TLSInterception.CACertPath)
	}
	if cfg.TLSInterception.CAKeyPath != "" && !filepath.IsAbs(cfg.TLSInterception.CAKeyPath) {
		cfg.TLSInterception.CAKeyPath = filepath.Join(configDir, cfg.TLSInterception.CAKeyPath)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	return cfg, nil
}

// Hash mirrors load.go Config.Hash: hex SHA-256 of the raw file bytes.
func (c *Config) Hash() string {
	h := sha256.Sum256(c.rawBytes)
	return hex.EncodeToString(h[:])
}

// refuseUnimplemented is the stand-in's own gate: a key pipelock accepts but the stand-in does not
// implement (any yaml.Node field that was present), or a value of an implemented key whose semantics
// the stand-in lacks, fails the load instead of being ignored.
func (c *Config) refuseUnimplemented() error {
	var keys []string
	collectPresentNodes(reflect.ValueOf(c).Elem(), "", &keys)
	if len(keys) > 0 {
		return fmt.Errorf("%s does not implement %s (pipelock accepts it; remove it or run the real pipelock)", StandIn, strings.Join(keys, ", "))
	}
	if c.Enforce != nil && !*c.Enforce {
		return fmt.Errorf("%s does not implement enforce: false (detect-only mode)", StandIn)
	}
	if c.Logging.Format == "text" {
		return fmt.Errorf("%s does not implement logging.format: text", StandIn)
	}
	if c.Logging.Output == "file" || c.Logging.Output == "both" || c.Logging.File != "" {
		return fmt.Errorf("%s does not implement logging to a file (logging.output: %q, logging.file: %q)", StandIn, c.Logging.Output, c.Logging.File)
	}
	if c.RequestBodyScanning.HeaderMode == HeaderModeAll {
		return fmt.Errorf("%s does not implement request_body_scanning.header_mode: all", StandIn)
	}
	return nil
}

var nodeType = reflect.TypeOf(yaml.Node{})

func collectPresentNodes(v reflect.Value, prefix string, out *[]string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		switch {
		case f.Type == nodeType:
			if v.Field(i).Interface().(yaml.Node).Kind != 0 {
				*out = append(*out, prefix+tag)
			}
		case f.Type.Kind() == reflect.Struct:
			collectPresentNodes(v.Field(i), prefix+tag+".", out)
		}
	}
}

// applySecurityDefaults mirrors normalize.go applySecurityDefaults for the implemented keys: omitted
// security booleans become true (detected from the raw YAML, since a plain bool cannot tell omitted
// from false). logging.include_* default to true the same way (schema defaults table).
func applySecurityDefaults(data []byte, cfg *Config) {
	var raw map[string]any
	_ = yaml.Unmarshal(data, &raw)
	has := func(section, key string) bool {
		m, ok := raw[section].(map[string]any)
		if !ok {
			return false
		}
		_, ok = m[key]
		return ok
	}
	cfg.omitted = map[string]bool{}
	set := func(section, key string, field *bool) {
		if !has(section, key) {
			*field = true
			cfg.omitted[section+"."+key] = true
		}
	}
	set("request_body_scanning", "enabled", &cfg.RequestBodyScanning.Enabled)
	set("request_body_scanning", "scan_headers", &cfg.RequestBodyScanning.ScanHeaders)
	set("logging", "include_allowed", &cfg.Logging.IncludeAllowed)
	set("logging", "include_blocked", &cfg.Logging.IncludeBlocked)
}

// ApplyDefaults mirrors normalize.go ApplyDefaults for the implemented keys. Omitted lists stay
// empty (api_allowlist is not defaulted from a file); `internal` is filled only when nil.
func (c *Config) ApplyDefaults() {
	if c.Mode == "" {
		c.Mode = ModeBalanced
	}
	if c.FetchProxy.Listen == "" {
		c.FetchProxy.Listen = DefaultListen
	}
	if c.FetchProxy.Monitoring.MaxReqPerMinute <= 0 { // normalize.go: cannot be switched off, <= 0 resets
		c.FetchProxy.Monitoring.MaxReqPerMinute = DefaultMaxReqPerMinute
	}
	if c.FetchProxy.Monitoring.MaxURLLength <= 0 {
		c.FetchProxy.Monitoring.MaxURLLength = DefaultMaxURLLength
	}
	if c.ForwardProxy.MaxTunnelSeconds == 0 {
		c.ForwardProxy.MaxTunnelSeconds = DefaultMaxTunnelSeconds
	}
	if c.ForwardProxy.IdleTimeoutSeconds == 0 {
		c.ForwardProxy.IdleTimeoutSeconds = DefaultIdleTimeoutSeconds
	}
	if c.TLSInterception.CertTTL == "" {
		c.TLSInterception.CertTTL = DefaultCertTTL
	}
	if c.TLSInterception.CertCacheSize == 0 {
		c.TLSInterception.CertCacheSize = DefaultCertCacheSize
	}
	if c.TLSInterception.MaxResponseBytes == 0 {
		c.TLSInterception.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.TLSInterception.CACertPath == "" || c.TLSInterception.CAKeyPath == "" {
		home, _ := os.UserHomeDir()
		if c.TLSInterception.CACertPath == "" {
			c.TLSInterception.CACertPath = filepath.Join(home, ".pipelock", "ca.pem")
		}
		if c.TLSInterception.CAKeyPath == "" {
			c.TLSInterception.CAKeyPath = filepath.Join(home, ".pipelock", "ca-key.pem")
		}
	}
	if c.RequestBodyScanning.Action == "" {
		c.RequestBodyScanning.Action = ActionWarn
	}
	if c.RequestBodyScanning.MaxBodyBytes == 0 {
		c.RequestBodyScanning.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestBodyScanning.HeaderMode == "" {
		c.RequestBodyScanning.HeaderMode = HeaderModeSensitive
	}
	if c.RequestBodyScanning.SensitiveHeaders == nil {
		c.RequestBodyScanning.SensitiveHeaders = append([]string(nil), DefaultSensitiveHeaders...)
	}
	if c.Logging.Format == "" {
		c.Logging.Format = "json"
	}
	if c.Logging.Output == "" {
		c.Logging.Output = "stdout"
	}
	if c.Internal == nil {
		c.Internal = append([]string(nil), DefaultInternal...)
	}
}

// Validate mirrors validate.go ValidateWithWarnings for the implemented keys, in pipelock's
// dispatch order and with its messages.
func (c *Config) Validate() error {
	switch c.Mode { // validateMode
	case ModeStrict, ModeBalanced, ModeAudit:
	default:
		return fmt.Errorf("invalid mode %q: must be strict, balanced, or audit", c.Mode)
	}
	if c.Mode == ModeStrict && len(c.APIAllowlist) == 0 {
		return fmt.Errorf("strict mode requires at least one domain in api_allowlist")
	}
	switch c.Logging.Format { // validateLogging
	case "json", "text":
	default:
		return fmt.Errorf("invalid logging format %q: must be json or text", c.Logging.Format)
	}
	switch c.Logging.Output {
	case "stdout", "file", "both":
	default:
		return fmt.Errorf("invalid logging output %q: must be stdout, file, or both", c.Logging.Output)
	}
	if c.FetchProxy.Monitoring.MaxReqPerMinute < 0 { // validateFetchProxy
		return fmt.Errorf("fetch_proxy.monitoring.max_requests_per_minute must be >= 0")
	}
	if c.ForwardProxy.Enabled { // validateForwardProxy
		if c.ForwardProxy.MaxTunnelSeconds <= 0 {
			return fmt.Errorf("forward_proxy.max_tunnel_seconds must be positive")
		}
		if c.ForwardProxy.IdleTimeoutSeconds <= 0 {
			return fmt.Errorf("forward_proxy.idle_timeout_seconds must be positive")
		}
	}
	if c.RequestBodyScanning.Enabled { // validateRequestBodyScanning
		switch c.RequestBodyScanning.Action {
		case ActionWarn, ActionBlock:
		default:
			return fmt.Errorf("invalid request_body_scanning.action %q: must be warn or block", c.RequestBodyScanning.Action)
		}
		if c.RequestBodyScanning.MaxBodyBytes <= 0 {
			return fmt.Errorf("request_body_scanning.max_body_bytes must be positive")
		}
		switch c.RequestBodyScanning.HeaderMode {
		case HeaderModeSensitive, HeaderModeAll:
		default:
			return fmt.Errorf("invalid request_body_scanning.header_mode %q: must be sensitive or all", c.RequestBodyScanning.HeaderMode)
		}
	}
	if err := c.validateTLSInterception(); err != nil {
		return err
	}
	for _, cidr := range c.Internal { // validateInternalCIDRs
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("invalid internal CIDR %q: %w", cidr, err)
		}
	}
	if err := c.validateSSRF(); err != nil {
		return err
	}
	return validateTrustedDomains(c.TrustedDomains, "trusted_domains")
}

// validateTLSInterception mirrors validate.go validateTLSInterception (CA files exist; the key file is
// neither world-accessible, group-writable nor executable: perm & 0o137 == 0, so 0600/0640 pass).
func (c *Config) validateTLSInterception() error {
	if !c.TLSInterception.Enabled {
		return nil
	}
	ttl, err := time.ParseDuration(c.TLSInterception.CertTTL)
	if err != nil {
		return fmt.Errorf("tls_interception.cert_ttl: %w", err)
	}
	if ttl <= 0 {
		return errors.New("tls_interception.cert_ttl must be positive")
	}
	if c.TLSInterception.CertCacheSize <= 0 {
		return errors.New("tls_interception.cert_cache_size must be > 0")
	}
	if c.TLSInterception.MaxResponseBytes <= 0 {
		return errors.New("tls_interception.max_response_bytes must be > 0")
	}
	certPath, keyPath := c.TLSInterception.CACertPath, c.TLSInterception.CAKeyPath
	if _, err := os.Stat(certPath); err != nil {
		return fmt.Errorf("CA cert not found at %s (run 'pipelock tls init'): %w", certPath, err)
	}
	keyInfo, err := os.Stat(keyPath)
	if err != nil {
		return fmt.Errorf("CA key not found at %s (run 'pipelock tls init'): %w", keyPath, err)
	}
	if keyInfo.Mode().Perm()&0o137 != 0 {
		return fmt.Errorf("CA key %s is too permissive (mode %04o): restrict to 0600 or 0640", keyPath, keyInfo.Mode().Perm())
	}
	return nil
}

// validateSSRF mirrors validate.go validateSSRF: canonical CIDRs only, no /0.
func (c *Config) validateSSRF() error {
	for _, cidr := range c.SSRF.IPAllowlist {
		ip, ipNet, err := net.ParseCIDR(cidr)
		if err != nil {
			return fmt.Errorf("invalid ssrf.ip_allowlist CIDR %q: %w", cidr, err)
		}
		if ones, _ := ipNet.Mask.Size(); ones == 0 {
			return fmt.Errorf("ssrf.ip_allowlist CIDR %q is a catch-all (/0) and would disable SSRF protection", cidr)
		}
		if !ip.Equal(ipNet.IP) {
			return fmt.Errorf("ssrf.ip_allowlist CIDR %q has host bits set (did you mean %q?)", cidr, ipNet.String())
		}
	}
	return nil
}

// validateTrustedDomains mirrors validate.go ValidateTrustedDomains (normalizes in place).
func validateTrustedDomains(domains []string, label string) error {
	for i, raw := range domains {
		d := strings.TrimSuffix(strings.TrimSpace(strings.ToLower(raw)), ".")
		if d == "" {
			return fmt.Errorf("%s[%d] is empty", label, i)
		}
		if strings.Contains(d, "://") || strings.Contains(d, "/") || strings.Contains(d, ":") {
			return fmt.Errorf("%s[%d] %q: use a hostname pattern, not a URL or host:port", label, i, raw)
		}
		if d == "*" {
			return fmt.Errorf("%s[%d]: bare wildcard disables all SSRF protection", label, i)
		}
		if strings.HasPrefix(d, "*.") {
			if strings.Count(d[2:], ".") < 1 {
				return fmt.Errorf("%s[%d] %q: wildcard must target a concrete domain like *.example.com", label, i, raw)
			}
		} else if strings.ContainsAny(d, "*?[]") {
			return fmt.Errorf("%s[%d] %q: only exact hosts and *.example.com wildcards are supported", label, i, raw)
		}
		domains[i] = d
	}
	return nil
}

// readStableRegularFile mirrors load.go readStableRegularFile (a file rewritten mid-read is retried
// on the next reload event rather than half-loaded).
func readStableRegularFile(path string) ([]byte, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	after, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !after.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file after read")
	}
	if before.Size() != after.Size() || !before.ModTime().Equal(after.ModTime()) || before.Mode().Perm() != after.Mode().Perm() {
		return nil, fmt.Errorf("file changed while reading; retrying on next reload event")
	}
	return data, nil
}
