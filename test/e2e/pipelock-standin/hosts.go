package main

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// HostsFileEnv lets a test point the stand-in at its own hosts file. TEST-ONLY: it exists so the
// loopback integration test can map names to 127.0.0.1 without touching the machine's /etc/hosts.
// The real pipelock has no such variable (it uses the system resolver).
const HostsFileEnv = "PIPELOCK_STANDIN_HOSTS_FILE"

// DialPortsEnv lets a loopback test run its upstream on an unprivileged port: "443=40123,80=40124"
// dials port 40123 where the target (CONNECT host:443, or an http:// URL) says 443. TEST-ONLY
// plumbing like the hosts file: every check (allowlist, SSRF, DLP) sees the target as requested;
// only the socket the stand-in finally opens goes elsewhere. The real pipelock has no such variable.
const DialPortsEnv = "PIPELOCK_STANDIN_DIAL_PORTS"

// hostsResolver is the stand-in's only name service. Test-traffic safety, not pipelock behaviour:
// names resolve ONLY from the hosts file (the bottle's extra_hosts = the fake internet), never DNS,
// and the dialer refuses any address the hosts file does not list.
type hostsResolver struct {
	path  string
	ports map[string]string
}

func newHostsResolver() *hostsResolver {
	p := os.Getenv(HostsFileEnv)
	if p == "" {
		p = "/etc/hosts"
	}
	return &hostsResolver{path: p, ports: parseDialPorts(os.Getenv(DialPortsEnv))}
}

// parseDialPorts reads "from=to,from=to"; malformed pairs are ignored (and so never remap).
func parseDialPorts(spec string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(spec, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && from != "" && to != "" {
			out[from] = to
		}
	}
	return out
}

// dialPort is the port actually dialled for a target port (itself unless DialPortsEnv remaps it).
func (h *hostsResolver) dialPort(port string) string {
	if to, ok := h.ports[port]; ok {
		return to
	}
	return port
}

// table re-reads the file on every call: docker rewrites /etc/hosts at container start, and tests
// may edit theirs between requests.
func (h *hostsResolver) table() (map[string][]string, map[string]bool) {
	names := map[string][]string{}
	addrs := map[string]bool{}
	b, err := os.ReadFile(h.path)
	if err != nil {
		return names, addrs
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip := net.ParseIP(f[0])
		if ip == nil {
			continue
		}
		canon := ip.String()
		addrs[canon] = true
		for _, n := range f[1:] {
			n = strings.TrimSuffix(strings.ToLower(n), ".")
			names[n] = append(names[n], canon)
		}
	}
	return names, addrs
}

// LookupHost answers like net.Resolver.LookupHost: an IP literal resolves to itself (so the SSRF
// guard sees it exactly as pipelock's does); a name resolves from the hosts file or fails with the
// resolver's "no such host" error.
func (h *hostsResolver) LookupHost(host string) ([]string, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip := net.ParseIP(host); ip != nil {
		return []string{ip.String()}, nil
	}
	names, _ := h.table()
	if ips, ok := names[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// dialable reports whether ip is an address the hosts file lists (the only ones the stand-in dials).
func (h *hostsResolver) dialable(ip string) bool {
	_, addrs := h.table()
	if p := net.ParseIP(ip); p != nil {
		ip = p.String()
	}
	return addrs[ip]
}

// errNotInHostsFile is the stand-in's own refusal (never pipelock's): a target that passed every
// pipelock check but whose address the hosts file does not list is not dialled.
type errNotInHostsFile struct{ addr string }

func (e errNotInHostsFile) Error() string {
	return fmt.Sprintf("pipelock TEST-ONLY STAND-IN: refusing to dial %s: not an address in the hosts file (test traffic stays on the fake internet)", e.addr)
}
