// TEST-ONLY pipelock STAND-IN. The real pipelock cannot be obtained on the machines that run this
// suite, so the e2e tier builds this static binary into an image FROM scratch as /pipelock and
// passes it to the product's own sidecars/pipelock/Dockerfile as PIPELOCK_IMAGE: the bottle runs it
// exactly where the real binary would run. It says it is a stand-in at every start and in `version`.
//
// It is a double of the pipelock behaviours claude-bottle depends on, each mirrored from the
// pipelock source file named at the code (v2.3.0 measurements and 3.x source, see
// shared/facts/pipelock.md and the issue #13 spec): strict config loading, config_hash logging and
// hot reload with strict-mode downgrade refusal, the strict allowlist, TLS interception with the
// configured CA, core DLP on URLs/bodies/headers, the response and body caps, the SSRF guard, and
// the block responses with their X-Pipelock-Block-Reason headers. What it does not implement it
// refuses: an unimplemented config key fails the load, an unimplemented endpoint answers 501.
//
//	pipelock run --config FILE [--listen H:P] [--mode M]
//	pipelock healthcheck [--addr H:P]
//	pipelock version
//
// Test-traffic safety, not policy: names resolve only from the hosts file (PIPELOCK_STANDIN_HOSTS_FILE,
// default /etc/hosts = the bottle's extra_hosts), never DNS, and only addresses it lists are dialled.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

const (
	banner         = "pipelock TEST-ONLY STAND-IN (claude-bottle e2e)"
	standInVersion = "0.0.0-test-only-standin"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "%s: usage: pipelock run --config FILE [--listen H:P] [--mode M] | healthcheck [--addr H:P] | version\n", banner)
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "version":
		fmt.Printf("%s\nversion %s\n", banner, standInVersion)
	case "healthcheck":
		flags, err := parseFlags(args, "--addr")
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", banner, err)
			os.Exit(2)
		}
		addr := flags["--addr"]
		if addr == "" {
			addr = "127.0.0.1:8888"
		}
		os.Exit(healthcheck(addr))
	case "run":
		flags, err := parseFlags(args, "--config", "-c", "--listen", "-l", "--mode", "-m")
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", banner, err)
			os.Exit(2)
		}
		os.Exit(run(first(flags, "--config", "-c"), first(flags, "--listen", "-l"), first(flags, "--mode", "-m")))
	default:
		fmt.Fprintf(os.Stderr, "%s: command %q is not implemented (run, healthcheck, version)\n", banner, os.Args[1])
		os.Exit(2)
	}
}

// parseFlags accepts only the named flags (as "--f v" or "--f=v"); anything else is refused loudly
// rather than ignored, since pipelock would act on it.
func parseFlags(args []string, allowed ...string) (map[string]string, error) {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := args[i], "", false
		for j := 0; j < len(name); j++ {
			if name[j] == '=' {
				name, val, hasVal = args[i][:j], args[i][j+1:], true
				break
			}
		}
		if !ok[name] {
			return nil, fmt.Errorf("flag %q is not implemented by the stand-in", args[i])
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag %q needs a value", name)
			}
			i++
			val = args[i]
		}
		out[name] = val
	}
	return out, nil
}

func first(m map[string]string, names ...string) string {
	for _, n := range names {
		if v := m[n]; v != "" {
			return v
		}
	}
	return ""
}

// healthcheck mirrors `pipelock healthcheck`: GET /health with a 3 s timeout, 0 on 200.
func healthcheck(addr string) int {
	c := http.Client{Timeout: 3 * time.Second}
	r, err := c.Get("http://" + addr + "/health")
	if err != nil {
		return 1
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
