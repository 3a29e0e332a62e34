package config

import (
	"fmt"
	"net"
	"strings"
)

// ReloadWarning mirrors reloadwarn.go ReloadWarning.
type ReloadWarning struct {
	Field   string
	Message string
}

// ValidateReload mirrors internal/config/reloadwarn.go ValidateReload for every item the stand-in's
// schema can express (in the source's order). The sections it cannot express (dlp patterns, MCP,
// taint, emit, media, ...) are refused at load, so they can never be part of a reload here.
func ValidateReload(old, updated *Config) []ReloadWarning {
	var warnings []ReloadWarning
	add := func(field, msg string) { warnings = append(warnings, ReloadWarning{Field: field, Message: msg}) }

	modeRank := map[string]int{ModeStrict: 3, ModeBalanced: 2, ModeAudit: 1}
	if modeRank[updated.Mode] < modeRank[old.Mode] {
		add("mode", fmt.Sprintf("mode downgraded from %s to %s", old.Mode, updated.Mode))
	}
	if len(old.Internal) > 0 && len(updated.Internal) == 0 {
		add("internal", "internal CIDR list emptied — SSRF protection disabled")
	}
	if old.EnforceEnabled() && !updated.EnforceEnabled() {
		add("enforce", "enforcement disabled — switching to detect-only mode")
	}
	// appendActionDowngradeWarnings: request_body_scanning.action (the only action key we carry).
	if old.RequestBodyScanning.Enabled && updated.RequestBodyScanning.Enabled &&
		actionDowngraded(old.RequestBodyScanning.Action, updated.RequestBodyScanning.Action) {
		add("request_body_scanning.action", fmt.Sprintf("action downgraded from %s to %s", old.RequestBodyScanning.Action, updated.RequestBodyScanning.Action))
	}
	if old.ForwardProxy.Enabled && !updated.ForwardProxy.Enabled {
		add("forward_proxy.enabled", "forward proxy disabled")
	}
	if old.TLSInterception.Enabled && !updated.TLSInterception.Enabled {
		add("tls_interception.enabled", "TLS interception disabled — CONNECT tunnel body/header scanning lost")
	}
	if old.TLSInterception.Enabled && updated.TLSInterception.Enabled {
		if added := passthroughDomainsAdded(old.TLSInterception.PassthroughDomains, updated.TLSInterception.PassthroughDomains); len(added) > 0 {
			add("tls_interception.passthrough_domains", fmt.Sprintf("passthrough domains added: %s — these CONNECT tunnels now bypass body scanning", strings.Join(added, ", ")))
		}
	}
	if added := passthroughDomainsAdded(old.TrustedDomains, updated.TrustedDomains); len(added) > 0 {
		add("trusted_domains", fmt.Sprintf("trusted domains added: %s — SSRF internal-IP check bypassed for these hosts", strings.Join(added, ", ")))
	}
	if expanded := ssrfIPAllowlistExpanded(old.SSRF.IPAllowlist, updated.SSRF.IPAllowlist); len(expanded) > 0 {
		add("ssrf.ip_allowlist", fmt.Sprintf("SSRF IP allowlist expanded: %s — SSRF check bypassed for these IP ranges", strings.Join(expanded, ", ")))
	}
	if old.RequestBodyScanning.Enabled && !updated.RequestBodyScanning.Enabled {
		add("request_body_scanning.enabled", "request body scanning disabled")
	}
	// Restart-only keys are warnings too (reloadwarn.go, "requires restart"), so strict mode refuses them.
	if old.MetricsListen != updated.MetricsListen {
		add("metrics_listen", fmt.Sprintf("metrics_listen changed from %q to %q — requires restart", old.MetricsListen, updated.MetricsListen))
	}
	return warnings
}

// ImplausibleReloadTeardownReasons mirrors internal/cli/runtime/server.go implausibleReloadTeardownReasons
// for the keys the stand-in carries. Mode-independent: any reason rejects the reload.
func ImplausibleReloadTeardownReasons(old, updated *Config) []string {
	var reasons []string
	if old.Mode != "" && updated.Mode == "" {
		reasons = append(reasons, "mode cleared")
	}
	if old.FetchProxy.Listen != "" && updated.FetchProxy.Listen == "" {
		reasons = append(reasons, "fetch_proxy.listen cleared")
	}
	if old.EnforceEnabled() && !updated.EnforceEnabled() {
		reasons = append(reasons, "enforce disabled")
	}
	if len(old.Internal) > 0 && len(updated.Internal) == 0 {
		reasons = append(reasons, "internal CIDR list emptied")
	}
	disabled := func(field string, o, n bool) {
		if o && !n {
			reasons = append(reasons, field+" disabled")
		}
	}
	disabled("forward_proxy.enabled", old.ForwardProxy.Enabled, updated.ForwardProxy.Enabled)
	disabled("tls_interception.enabled", old.TLSInterception.Enabled, updated.TLSInterception.Enabled)
	disabled("request_body_scanning.enabled", old.RequestBodyScanning.Enabled, updated.RequestBodyScanning.Enabled)
	return reasons
}

// ReloadDowngradeRejectReason mirrors server.go reloadDowngradeRejectReason: in strict mode ANY
// reload warning rejects the whole reload. The "required contracts" branch needs keys the stand-in
// refuses, so outside strict mode nothing is rejected here.
func ReloadDowngradeRejectReason(old *Config, warnings []ReloadWarning) string {
	if old == nil || len(warnings) == 0 {
		return ""
	}
	if old.Mode == ModeStrict {
		return "strict mode"
	}
	return ""
}

// passthroughDomainsAdded mirrors reloadwarn.go passthroughDomainsAdded (case-insensitive set diff).
func passthroughDomainsAdded(old, updated []string) []string {
	oldSet := make(map[string]struct{}, len(old))
	for _, d := range old {
		oldSet[strings.ToLower(d)] = struct{}{}
	}
	var added []string
	for _, d := range updated {
		if _, ok := oldSet[strings.ToLower(d)]; !ok {
			added = append(added, d)
		}
	}
	return added
}

// ssrfIPAllowlistExpanded mirrors reloadwarn.go ssrfIPAllowlistExpanded: a new CIDR widens coverage
// unless an old CIDR of the same family with an equal or broader mask contains its network address.
func ssrfIPAllowlistExpanded(old, updated []string) []string {
	var oldNets []*net.IPNet
	for _, cidr := range old {
		if _, n, err := net.ParseCIDR(cidr); err == nil {
			oldNets = append(oldNets, n)
		}
	}
	var expanded []string
	for _, cidr := range updated {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			expanded = append(expanded, cidr)
			continue
		}
		covered := false
		for _, o := range oldNets {
			if o.Contains(n.IP) {
				oOnes, oSize := o.Mask.Size()
				nOnes, nSize := n.Mask.Size()
				if oSize == nSize && oOnes <= nOnes {
					covered = true
					break
				}
			}
		}
		if !covered {
			expanded = append(expanded, cidr)
		}
	}
	return expanded
}

// actionDowngraded mirrors reloadwarn.go actionDowngraded over the two actions the stand-in accepts
// (reloadActionStrength: warn 2, block 7; anything else is unranked and never a downgrade).
func actionDowngraded(oldAction, newAction string) bool {
	strength := map[string]int{ActionWarn: 2, ActionBlock: 7}
	o, okO := strength[strings.TrimSpace(oldAction)]
	n, okN := strength[strings.TrimSpace(newAction)]
	return okO && okN && n < o
}
