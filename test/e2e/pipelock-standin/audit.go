package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// auditLogger mirrors internal/audit/logger.go: zerolog JSON lines on stdout, one object per event,
// with "level", "event", the event's fields, "time" and "message" (zerolog's default key names;
// the key order is zerolog's call order). Plain-text notices (banner, reload failures, WARNING
// lines) go to stderr as pipelock prints them.
type auditLogger struct {
	mu             sync.Mutex
	out            io.Writer
	errOut         io.Writer
	includeAllowed bool
	includeBlocked bool
}

func newAuditLogger() *auditLogger {
	return &auditLogger{out: os.Stdout, errOut: os.Stderr, includeAllowed: true, includeBlocked: true}
}

type kv struct {
	k string
	v any
}

func (l *auditLogger) write(level, event, message string, fields ...kv) {
	var b bytes.Buffer
	b.WriteByte('{')
	put := func(k string, v any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	put("level", level)
	if event != "" {
		put("event", event)
	}
	for _, f := range fields {
		put(f.k, f.v)
	}
	put("time", time.Now().UTC().Format(time.RFC3339))
	put("message", message)
	b.WriteString("}\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.out.Write(b.Bytes())
}

func (l *auditLogger) stderr(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.errOut, format, args...)
}

// LogStartup mirrors audit LogStartup.
func (l *auditLogger) LogStartup(listen, mode, version, configHash string) {
	l.write("info", "startup", "pipelock started", kv{"listen", listen}, kv{"mode", mode}, kv{"version", version}, kv{"config_hash", configHash})
}

// LogConfigReload mirrors audit LogConfigReload.
func (l *auditLogger) LogConfigReload(status, detail, configHash string) {
	l.write("info", "config_reload", "configuration reloaded", kv{"status", status}, kv{"detail", detail}, kv{"config_hash", configHash})
}

// LogError mirrors audit LogError with a resource context (the reload rejections use
// configReloadAuditMethod; the literal "CONFIG_RELOAD" is what older pipelock code passes).
func (l *auditLogger) LogError(method, resource string, err error) {
	l.write("error", "error", "request error", kv{"method", method}, kv{"resource", resource}, kv{"error", err.Error()})
}

// LogBlocked mirrors audit LogBlocked (honours logging.include_blocked).
func (l *auditLogger) LogBlocked(method, target, scanner, reason string) {
	if !l.includeBlocked {
		return
	}
	l.write("warn", "blocked", "request blocked", kv{"method", method}, kv{"url", target}, kv{"scanner", scanner}, kv{"reason", reason})
}

// LogAllowed mirrors audit LogAllowed (honours logging.include_allowed).
func (l *auditLogger) LogAllowed(method, target string, status int) {
	if !l.includeAllowed {
		return
	}
	l.write("info", "allowed", "request allowed", kv{"method", method}, kv{"url", target}, kv{"status_code", status})
}

// LogAnomaly mirrors audit LogAnomaly (forward.go logs one, score 0, per intercepted CONNECT).
func (l *auditLogger) LogAnomaly(target, scanner, reason string, score float64) {
	l.write("warn", "anomaly", "anomaly detected", kv{"url", target}, kv{"scanner", scanner}, kv{"reason", reason}, kv{"score", score})
}

// LogTunnel mirrors audit LogTunnelOpen/LogTunnelClose for spliced tunnels.
func (l *auditLogger) LogTunnel(event, target string, fields ...kv) {
	if !l.includeAllowed {
		return
	}
	l.write("info", event, event, append([]kv{{"target", target}}, fields...)...)
}
