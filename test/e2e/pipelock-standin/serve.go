package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"claude-bottle.test/pipelock-standin/config"
)

// configReloadAuditMethod is the method field of reload-rejection error events; older pipelock code
// passes this literal (the 3.x constant's value was not read).
const configReloadAuditMethod = "CONFIG_RELOAD"

type server struct {
	path     string
	state    atomic.Pointer[runtimeState]
	log      *auditLogger
	resolver *hostsResolver
	started  time.Time

	reloadMu       sync.Mutex
	lastReloadHash string
	lastReloadAt   time.Time
}

// buildState builds what a loaded config needs: the URL scanner and, with interception on, the cert
// cache from the CA files (certgen.LoadCA). With prev set (a reload), a CA that fails to load keeps
// the previous cache and reports the error, as server.go does after LoadCertCache fails.
func (s *server) buildState(cfg *config.Config, prev *runtimeState) (*runtimeState, error) {
	st := &runtimeState{cfg: cfg, scanner: newURLScanner(cfg, s.resolver)}
	if !cfg.TLSInterception.Enabled {
		return st, nil
	}
	ca, key, err := loadCA(cfg.TLSInterception.CACertPath, cfg.TLSInterception.CAKeyPath)
	if err != nil {
		if prev != nil {
			st.certs = prev.certs
		}
		return st, err
	}
	ttl, _ := time.ParseDuration(cfg.TLSInterception.CertTTL)
	st.certs = newCertCache(ca, key, ttl, cfg.TLSInterception.CertCacheSize)
	return st, nil
}

func (s *server) applyLogging(cfg *config.Config) {
	s.log.mu.Lock()
	s.log.includeAllowed, s.log.includeBlocked = cfg.Logging.IncludeAllowed, cfg.Logging.IncludeBlocked
	s.log.mu.Unlock()
}

// run mirrors internal/cli/runtime/run.go + server.go start-up: load (strict; any error exits
// non-zero), --listen/--mode override the file at start only, banner on stderr, a "startup" audit
// event carrying config_hash, then serve until SIGINT/SIGTERM.
func run(configPath, listenFlag, modeFlag string) int {
	log := newAuditLogger()
	log.stderr("%s — NOT the real pipelock; a test double for claude-bottle's e2e and integration tests\n", banner)
	if configPath == "" {
		log.stderr("pipelock: %s requires --config (pipelock's built-in defaults are not implemented)\n", config.StandIn)
		return 2
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		log.stderr("pipelock: %v\n", err)
		return 1
	}
	if listenFlag != "" {
		cfg.FetchProxy.Listen = listenFlag
	}
	if modeFlag != "" {
		cfg.Mode = modeFlag
		if err := cfg.Validate(); err != nil {
			log.stderr("pipelock: invalid config: %v\n", err)
			return 1
		}
	}
	s := &server{path: configPath, log: log, resolver: newHostsResolver(), started: time.Now()}
	st, err := s.buildState(cfg, nil)
	if err != nil {
		log.stderr("pipelock: loading TLS interception CA: %v\n", err)
		return 1
	}
	s.state.Store(st)
	s.applyLogging(cfg)

	ln, err := net.Listen("tcp", cfg.FetchProxy.Listen)
	if err != nil {
		log.stderr("pipelock: %v\n", err)
		return 1
	}
	// pipelock logs the configured address; with port 0 (tests) the bound one is the useful answer.
	listen := cfg.FetchProxy.Listen
	if strings.HasSuffix(listen, ":0") {
		listen = ln.Addr().String()
	}
	log.stderr("Pipelock v%s starting\n  Mode:   %s\n  Listen: %s\n  Config: %s\n", standInVersion, cfg.Mode, listen, configPath)
	log.LogStartup(listen, cfg.Mode, standInVersion, cfg.Hash())
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			log.stderr("pipelock: metrics listener: %v\n", err)
			return 1
		}
		// pipelock serves /metrics (Prometheus) and /stats there; the stand-in implements neither
		go func() {
			_ = http.Serve(mln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, fmt.Sprintf("%s: %s is not implemented", config.StandIn, r.URL.Path), http.StatusNotImplemented)
			}))
		}()
	}
	s.warnMetricsExposure(cfg)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go s.watch(ctx, configPath, 250*time.Millisecond, 100*time.Millisecond)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		for sig := range sigs {
			switch sig {
			case syscall.SIGHUP: // reload_unix.go: SIGHUP reloads immediately
				s.tryReload()
			case syscall.SIGUSR1: // pipelock: toggles the kill switch
				log.stderr("%s: SIGUSR1 (kill switch) is not implemented; ignored\n", config.StandIn)
			default:
				log.write("info", "shutdown", "pipelock stopping", kv{"reason", sig.String()})
				stop()
				_ = srv.Close()
				return
			}
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.stderr("pipelock: %v\n", err)
		return 1
	}
	return 0
}

// tryReload mirrors internal/config/reload.go: a parse or validation failure keeps the running
// config and prints "pipelock: config reload failed: ..." to stderr.
func (s *server) tryReload() {
	newCfg, err := config.Load(s.path)
	if err != nil {
		s.log.stderr("pipelock: config reload failed: %v\n", err)
		return
	}
	_ = s.reload(newCfg)
}

// reload mirrors internal/cli/runtime/server.go Reload for the stand-in's keys, in its order:
// listen changes are ignored (warning), enabling the forward proxy is refused, a byte-identical file
// within 2 s of the last success is skipped silently, implausible teardowns are refused in any
// mode, ValidateReload warnings go to stderr and in strict mode ANY warning refuses the whole file
// (compared with the RUNNING config, so a refused downgrade keeps being refused while the file
// still contains it). Rejections are "event":"error" audit lines; success is "config_reload".
func (s *server) reload(newCfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	prev := s.state.Load()
	old := prev.cfg
	if old.FetchProxy.Listen != newCfg.FetchProxy.Listen {
		s.log.stderr("WARNING: config reload: fetch_proxy.listen changed from %q to %q - requires restart, ignoring\n", old.FetchProxy.Listen, newCfg.FetchProxy.Listen)
		newCfg.FetchProxy.Listen = old.FetchProxy.Listen
	}
	if !old.ForwardProxy.Enabled && newCfg.ForwardProxy.Enabled {
		return s.reject(errors.New("rejected: forward proxy cannot be enabled via reload (requires restart)"))
	}
	hash := newCfg.Hash()
	if hash == s.lastReloadHash && time.Since(s.lastReloadAt) < 2*time.Second { // shouldSkipReload
		return nil
	}
	if reasons := config.ImplausibleReloadTeardownReasons(old, newCfg); len(reasons) > 0 {
		err := fmt.Errorf("rejected: implausibly empty config reload would weaken security posture: %s", strings.Join(reasons, ", "))
		s.log.stderr("WARNING: config reload rejected: %v\n", err)
		return s.reject(err)
	}
	warnings := config.ValidateReload(old, newCfg)
	for _, w := range warnings {
		s.log.stderr("WARNING: config reload: %s - %s\n", w.Field, w.Message)
	}
	if reason := config.ReloadDowngradeRejectReason(old, warnings); reason != "" {
		return s.reject(fmt.Errorf("rejected: security downgrade from %s", reason))
	}
	st, caErr := s.buildState(newCfg, prev)
	s.state.Store(st)
	s.applyLogging(newCfg)
	if caErr != nil {
		s.log.LogError(configReloadAuditMethod, s.path, fmt.Errorf("TLS cert cache reload failed: %w", caErr))
	}
	s.log.LogConfigReload("success", "mode="+newCfg.Mode, hash)
	s.warnMetricsExposure(newCfg)
	s.lastReloadHash, s.lastReloadAt = hash, time.Now()
	return nil
}

// warnMetricsExposure mirrors what the real binary was measured to log at every start and reload
// (v2.3.0, shared facts "Measured on the real binary"): a warn "anomaly" about /metrics and /stats
// served on a non-loopback listener. The source line was not read; the text is the stand-in's.
// With metrics_listen set (claude-bottle sets 127.0.0.1), they are off the proxy port.
func (s *server) warnMetricsExposure(cfg *config.Config) {
	if cfg.MetricsListen != "" {
		return
	}
	host, _, err := net.SplitHostPort(cfg.FetchProxy.Listen)
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	s.log.LogAnomaly(cfg.FetchProxy.Listen, "metrics_exposure", "/metrics and /stats are served on "+cfg.FetchProxy.Listen+" without authentication (set metrics_listen)", 0)
}

func (s *server) reject(err error) error {
	s.log.LogError(configReloadAuditMethod, s.path, err)
	return err
}

// fileSig identifies one version of the config file's directory entry.
type fileSig struct {
	exists bool
	ino    uint64
	size   int64
	mtime  int64
	ctime  int64
}

func statSig(path string) fileSig {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileSig{}
	}
	sig := fileSig{exists: true, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		sig.ino = st.Ino
		sig.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return sig
}

// watch is the stand-in's equivalent of reload.go's fsnotify watcher: pipelock watches the config
// file's DIRECTORY filtered by base name, and Write/Create/Rename of that name start a 100 ms
// debounce then a reload. Polling the directory entry (Lstat, so a rename-replace is seen and a
// symlink retarget elsewhere is not, as with fsnotify's base-name filter) gives the same triggers;
// a removal alone is not a trigger.
func (s *server) watch(ctx context.Context, path string, every, debounce time.Duration) {
	path = filepath.Clean(path)
	last := statSig(path)
	var timer *time.Timer
	fire := make(chan struct{}, 1)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-fire:
			s.tryReload()
		case <-tick.C:
			cur := statSig(path)
			if cur != last {
				last = cur
				if !cur.exists {
					continue
				}
				if timer != nil {
					timer.Stop()
				}
				timer = time.AfterFunc(debounce, func() {
					select {
					case fire <- struct{}{}:
					default:
					}
				})
			}
		}
	}
}
