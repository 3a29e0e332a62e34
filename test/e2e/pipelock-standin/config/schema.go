// Package config is the TEST-ONLY stand-in's copy of the slice of pipelock's config schema that
// claude-bottle renders (sidecars/pipelock/config.ts). Mirrors pipelock internal/config/schema.go:
// same YAML names, same Go type names (config.Config, config.FetchProxy, ...) so yaml.v3's
// strict-decoding errors read exactly like pipelock's ("field x not found in type config.Config").
//
// Fields pipelock knows but the stand-in does not implement are declared as yaml.Node: the decoder
// accepts them (so a truly unknown key still fails with pipelock's message) and Load refuses them
// afterwards, loudly, instead of silently ignoring a setting the real binary would enforce.
package config

import "gopkg.in/yaml.v3"

const (
	ModeStrict   = "strict"
	ModeBalanced = "balanced"
	ModeAudit    = "audit"

	ActionWarn  = "warn"
	ActionBlock = "block"

	HeaderModeSensitive = "sensitive"
	HeaderModeAll       = "all"

	// DefaultListen mirrors schema.go DefaultListen.
	DefaultListen = "127.0.0.1:8888"
)

// Config mirrors schema.go Config. Implemented keys are typed; the rest are yaml.Node (refused if present).
type Config struct {
	Version             int                 `yaml:"version"`
	Mode                string              `yaml:"mode"`
	Enforce             *bool               `yaml:"enforce"`
	ExplainBlocks       *bool               `yaml:"explain_blocks"`
	APIAllowlist        []string            `yaml:"api_allowlist"`
	FetchProxy          FetchProxy          `yaml:"fetch_proxy"`
	ForwardProxy        ForwardProxy        `yaml:"forward_proxy"`
	TLSInterception     TLSInterception     `yaml:"tls_interception"`
	RequestBodyScanning RequestBodyScanning `yaml:"request_body_scanning"`
	SSRF                SSRF                `yaml:"ssrf"`
	Logging             LoggingConfig       `yaml:"logging"`
	Internal            []string            `yaml:"internal"`
	TrustedDomains      []string            `yaml:"trusted_domains"`
	// MetricsListen mirrors schema.go Config.MetricsListen: a separate listener for /metrics and
	// /stats (empty: they are served on fetch_proxy.listen). Start-only, like pipelock's.
	MetricsListen string `yaml:"metrics_listen"`

	// pipelock top-level sections the stand-in does not implement (schema.go Config).
	Suppress                   yaml.Node `yaml:"suppress"`
	WebSocketProxy             yaml.Node `yaml:"websocket_proxy"`
	DLP                        yaml.Node `yaml:"dlp"`
	CanaryTokens               yaml.Node `yaml:"canary_tokens"`
	ResponseScanning           yaml.Node `yaml:"response_scanning"`
	MCPInputScanning           yaml.Node `yaml:"mcp_input_scanning"`
	MCPToolScanning            yaml.Node `yaml:"mcp_tool_scanning"`
	MCPDataClassLabels         yaml.Node `yaml:"mcp_data_class_labels"`
	MCPToolPolicy              yaml.Node `yaml:"mcp_tool_policy"`
	Defer                      yaml.Node `yaml:"defer"`
	GitProtection              yaml.Node `yaml:"git_protection"`
	SessionProfiling           yaml.Node `yaml:"session_profiling"`
	AdaptiveEnforcement        yaml.Node `yaml:"adaptive_enforcement"`
	MCPSessionBinding          yaml.Node `yaml:"mcp_session_binding"`
	RequestPolicy              yaml.Node `yaml:"request_policy"`
	KillSwitch                 yaml.Node `yaml:"kill_switch"`
	HealthWatchdog             yaml.Node `yaml:"health_watchdog"`
	Sentry                     yaml.Node `yaml:"sentry"`
	Containment                yaml.Node `yaml:"containment"`
	Emit                       yaml.Node `yaml:"emit"`
	ToolChainDetection         yaml.Node `yaml:"tool_chain_detection"`
	MCPWSListener              yaml.Node `yaml:"mcp_ws_listener"`
	CrossRequestDetection      yaml.Node `yaml:"cross_request_detection"`
	ReverseProxy               yaml.Node `yaml:"reverse_proxy"`
	ScanAPI                    yaml.Node `yaml:"scan_api"`
	AddressProtection          yaml.Node `yaml:"address_protection"`
	SeedPhraseDetection        yaml.Node `yaml:"seed_phrase_detection"`
	Rules                      yaml.Node `yaml:"rules"`
	FileSentry                 yaml.Node `yaml:"file_sentry"`
	Sandbox                    yaml.Node `yaml:"sandbox"`
	FlightRecorder             yaml.Node `yaml:"flight_recorder"`
	EvidenceProvenance         yaml.Node `yaml:"evidence_provenance"`
	DashboardSnapshot          yaml.Node `yaml:"dashboard_snapshot"`
	MCPBinaryIntegrity         yaml.Node `yaml:"mcp_binary_integrity"`
	MCPToolProvenance          yaml.Node `yaml:"mcp_tool_provenance"`
	BehavioralBaseline         yaml.Node `yaml:"behavioral_baseline"`
	Airlock                    yaml.Node `yaml:"airlock"`
	BrowserShield              yaml.Node `yaml:"browser_shield"`
	MediaPolicy                yaml.Node `yaml:"media_policy"`
	A2AScanning                yaml.Node `yaml:"a2a_scanning"`
	Taint                      yaml.Node `yaml:"taint"`
	MediationEnvelope          yaml.Node `yaml:"mediation_envelope"`
	Redaction                  yaml.Node `yaml:"redaction"`
	Learn                      yaml.Node `yaml:"learn"`
	Guard                      yaml.Node `yaml:"guard"`
	LearnLock                  yaml.Node `yaml:"learn_lock"`
	Conductor                  yaml.Node `yaml:"conductor"`
	Agents                     yaml.Node `yaml:"agents"`
	DefaultAgentIdentity       yaml.Node `yaml:"default_agent_identity"`
	BindDefaultAgentIdentity   yaml.Node `yaml:"bind_default_agent_identity"`
	LicenseKey                 yaml.Node `yaml:"license_key"`
	LicenseFile                yaml.Node `yaml:"license_file"`
	LicenseCRLFile             yaml.Node `yaml:"license_crl_file"`
	LicenseIntermediateFile    yaml.Node `yaml:"license_intermediate_file"`
	LicenseRequireIntermediate yaml.Node `yaml:"license_require_intermediate"`
	LicenseCRLMaxAge           yaml.Node `yaml:"license_crl_max_age"`
	LicensePublicKey           yaml.Node `yaml:"license_public_key"`
	DNS                        yaml.Node `yaml:"dns"`

	rawBytes []byte `yaml:"-"`
	// omitted records which security booleans the file left out (load.go applySecurityDefaults).
	omitted map[string]bool `yaml:"-"`
}

// FetchProxy mirrors schema.go FetchProxy.
type FetchProxy struct {
	Listen         string     `yaml:"listen"`
	TimeoutSeconds yaml.Node  `yaml:"timeout_seconds"`
	MaxResponseMB  yaml.Node  `yaml:"max_response_mb"`
	UserAgent      yaml.Node  `yaml:"user_agent"`
	Monitoring     Monitoring `yaml:"monitoring"`
}

// Monitoring mirrors schema.go Monitoring. Only the rate limit and the URL length cap are implemented.
type Monitoring struct {
	MaxURLLength                int       `yaml:"max_url_length"`
	EntropyThreshold            yaml.Node `yaml:"entropy_threshold"`
	SubdomainEntropyThreshold   yaml.Node `yaml:"subdomain_entropy_threshold"`
	MaxReqPerMinute             int       `yaml:"max_requests_per_minute"`
	MaxDataPerMinute            yaml.Node `yaml:"max_data_per_minute"`
	Blocklist                   yaml.Node `yaml:"blocklist"`
	SubdomainEntropyExclusions  yaml.Node `yaml:"subdomain_entropy_exclusions"`
	QueryEntropyExclusions      yaml.Node `yaml:"query_entropy_exclusions"`
	PathEntropyExclusions       yaml.Node `yaml:"path_entropy_exclusions"`
	QueryEntropyParamExclusions yaml.Node `yaml:"query_entropy_param_exclusions"`
	ScanNestedURLs              yaml.Node `yaml:"scan_nested_urls"`
}

// ForwardProxy mirrors schema.go ForwardProxy.
type ForwardProxy struct {
	Enabled                bool      `yaml:"enabled"`
	MaxTunnelSeconds       int       `yaml:"max_tunnel_seconds"`
	IdleTimeoutSeconds     int       `yaml:"idle_timeout_seconds"`
	SNIVerification        *bool     `yaml:"sni_verification"`
	SNIRequireTLS          yaml.Node `yaml:"sni_require_tls"`
	RedirectWebSocketHosts yaml.Node `yaml:"redirect_websocket_hosts"`
}

// SNIVerificationEnabled mirrors ForwardProxy.SNIVerificationEnabled (nil = true).
func (f ForwardProxy) SNIVerificationEnabled() bool {
	return f.SNIVerification == nil || *f.SNIVerification
}

// TLSInterception mirrors schema.go TLSInterception (fully implemented).
type TLSInterception struct {
	Enabled            bool     `yaml:"enabled"`
	CACertPath         string   `yaml:"ca_cert"`
	CAKeyPath          string   `yaml:"ca_key"`
	PassthroughDomains []string `yaml:"passthrough_domains"`
	CertTTL            string   `yaml:"cert_ttl"`
	CertCacheSize      int      `yaml:"cert_cache_size"`
	MaxResponseBytes   int64    `yaml:"max_response_bytes"`
}

// RequestBodyScanning mirrors schema.go RequestBodyScanning.
type RequestBodyScanning struct {
	Enabled                  bool      `yaml:"enabled"`
	Action                   string    `yaml:"action"`
	PatternActions           yaml.Node `yaml:"pattern_actions"`
	DisablePatterns          yaml.Node `yaml:"disable_patterns"`
	MaxBodyBytes             int       `yaml:"max_body_bytes"`
	ScanHeaders              bool      `yaml:"scan_headers"`
	HeaderMode               string    `yaml:"header_mode"`
	SensitiveHeaders         []string  `yaml:"sensitive_headers"`
	IgnoreHeaders            yaml.Node `yaml:"ignore_headers"`
	ContentEntropyEnabled    yaml.Node `yaml:"content_entropy_enabled"`
	ContentEntropyAction     yaml.Node `yaml:"content_entropy_action"`
	ContentEntropyThreshold  yaml.Node `yaml:"content_entropy_threshold"`
	ContentEntropyMinLength  yaml.Node `yaml:"content_entropy_min_length"`
	ContentEntropyExclusions yaml.Node `yaml:"content_entropy_exclusions"`
	ContentEntropyWarnRoutes yaml.Node `yaml:"content_entropy_warn_routes"`
	SigV4CredentialRoutes    yaml.Node `yaml:"sigv4_credential_routes"`
	TrustedHosts             yaml.Node `yaml:"trusted_hosts"`
}

// SSRF mirrors schema.go SSRF.
type SSRF struct {
	IPAllowlist []string `yaml:"ip_allowlist"`
}

// LoggingConfig mirrors schema.go LoggingConfig.
type LoggingConfig struct {
	Format         string `yaml:"format"`
	Output         string `yaml:"output"`
	File           string `yaml:"file"`
	IncludeAllowed bool   `yaml:"include_allowed"`
	IncludeBlocked bool   `yaml:"include_blocked"`
}

// EnforceEnabled mirrors Config.EnforceEnabled (nil = true).
func (c *Config) EnforceEnabled() bool { return c.Enforce == nil || *c.Enforce }

// ExplainBlocksEnabled mirrors Config.ExplainBlocksEnabled (nil = false).
func (c *Config) ExplainBlocksEnabled() bool { return c.ExplainBlocks != nil && *c.ExplainBlocks }
