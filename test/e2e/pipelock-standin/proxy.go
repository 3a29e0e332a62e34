package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"claude-bottle.test/pipelock-standin/config"
)

// runtimeState is one loaded config with what is built from it. A request (and a whole CONNECT
// tunnel, intercepted or not) uses the state it started with, as pipelock's handlers capture the
// config and scanner at CONNECT time (forward.go handleConnect -> InterceptContext).
type runtimeState struct {
	cfg     *config.Config
	scanner *urlScanner
	certs   *certCache // nil when tls_interception is off
}

// ServeHTTP mirrors internal/proxy/proxy.go buildHandler for the routes the stand-in serves.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	cfg := st.cfg
	switch {
	case r.Method == http.MethodConnect:
		if !cfg.ForwardProxy.Enabled {
			http.Error(w, "CONNECT not supported", http.StatusMethodNotAllowed)
			return
		}
		s.handleConnect(w, r, st)
	case r.URL.IsAbs():
		if !cfg.ForwardProxy.Enabled {
			http.Error(w, "forward proxy not enabled", http.StatusMethodNotAllowed)
			return
		}
		s.handleForwardHTTP(w, r, st)
	case r.URL.Path == "/health":
		s.handleHealth(w, st)
	default:
		// /fetch, /ws, /metrics, /stats, the kill-switch API ...: pipelock serves them, the stand-in does not.
		http.Error(w, fmt.Sprintf("%s: %s %s is not implemented (only CONNECT, absolute-URI http:// and /health are)", config.StandIn, r.Method, r.URL.Path), http.StatusNotImplemented)
	}
}

// handleHealth mirrors proxy.go handleHealth: always 200 while the server answers.
func (s *server) handleHealth(w http.ResponseWriter, st *runtimeState) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status":             "healthy",
		"version":            standInVersion,
		"mode":               st.cfg.Mode,
		"uptime_seconds":     int(time.Since(s.started).Seconds()),
		"dlp_patterns":       len(coreDLPPatterns),
		"tls_interception":   st.cfg.TLSInterception.Enabled,
		"forward_proxy":      st.cfg.ForwardProxy.Enabled,
		"kill_switch_active": false,
		"standin":            config.StandIn,
	})
}

// handleConnect mirrors internal/proxy/forward.go handleConnect.
func (s *server) handleConnect(w http.ResponseWriter, r *http.Request, st *runtimeState) {
	start := time.Now()
	cfg := st.cfg
	if r.Host == "" {
		writeBlockedError(w, blockInfoFor(reasonBadRequest, ""), "missing target host", http.StatusBadRequest)
		return
	}
	host, port := hostPort(r.Host)
	target := net.JoinHostPort(host, port)
	synth := host
	if strings.Contains(host, ":") {
		synth = "[" + host + "]"
	}
	result := st.scanner.Scan("https://" + synth + "/")

	// The CONNECT handshake's own headers get header DLP before the URL verdict is acted on.
	if cfg.RequestBodyScanning.Enabled && cfg.RequestBodyScanning.ScanHeaders && len(scanRequestHeaders(r.Header, cfg)) > 0 {
		s.log.LogBlocked(http.MethodConnect, target, scannerHeaderDLP, "request header contains secret")
		writeBlockedError(w, blockInfoFor(reasonDLPMatch, scannerDLP), "CONNECT blocked: header DLP match", http.StatusForbidden)
		return
	}
	if !result.allowed {
		s.refuseScan(w, cfg, http.MethodConnect, target, result, "CONNECT blocked: ")
		return
	}

	deadline := start.Add(time.Duration(cfg.ForwardProxy.MaxTunnelSeconds) * time.Second)
	dialCtx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	targetConn, err := s.dial(dialCtx, st, host, port)
	if err != nil {
		s.log.LogError(http.MethodConnect, target, err)
		http.Error(w, "tunnel dial failed", http.StatusBadGateway)
		return
	}
	defer func() {
		if targetConn != nil {
			_ = targetConn.Close()
		}
	}()
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "hijack not supported", http.StatusInternalServerError)
		return
	}
	clientConn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer clientConn.Close()
	_, _ = clientConn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))

	reader := buf.Reader
	if cfg.ForwardProxy.SNIVerificationEnabled() {
		var sniHost, category string
		reader, sniHost, category, err = verifySNI(reader, clientConn, host, sniReadTimeoutDefault)
		if err != nil {
			s.log.write("warn", "sni_mismatch", "SNI verification failed", kv{"connect_host", host}, kv{"sni_host", sniHost}, kv{"category", category})
			return
		}
	}

	if cfg.TLSInterception.Enabled && !isPassthrough(host, cfg.TLSInterception.PassthroughDomains) {
		if st.certs == nil { // fail closed, as forward.go does when the cert cache is missing
			s.log.LogError(http.MethodConnect, target, errors.New("TLS interception enabled but cert cache unavailable"))
			return
		}
		_ = targetConn.Close() // interceptTunnel dials its own upstream
		targetConn = nil
		s.log.LogAnomaly(target, "tls_intercept", "TLS MITM interception active", 0)
		ctx, cancelTunnel := context.WithDeadline(context.Background(), deadline)
		defer cancelTunnel()
		if err := s.interceptTunnel(ctx, wrapBuffered(clientConn, reader), host, port, st); err != nil {
			s.log.LogError(http.MethodConnect, target, err)
		}
		return
	}

	s.log.LogTunnel("tunnel_open", target)
	total := relay(reader, clientConn, targetConn, time.Duration(cfg.ForwardProxy.IdleTimeoutSeconds)*time.Second, deadline)
	s.log.LogTunnel("tunnel_close", target, kv{"bytes", total}, kv{"duration_ms", time.Since(start).Milliseconds()})
}

// dial mirrors proxy ssrfSafeDialContext: resolve, re-check every address against the SSRF ranges
// (a name that now resolves internal fails the dial, not the scan), dial the first that answers.
// Stand-in rule on top: only addresses the hosts file lists are ever dialled.
func (s *server) dial(ctx context.Context, st *runtimeState, host, port string) (net.Conn, error) {
	ips, err := s.resolver.LookupHost(host)
	if err != nil {
		return nil, err
	}
	var lastErr error
	checkAtDial := len(st.scanner.internal) > 0 && !st.scanner.isTrustedDomain(host)
	for _, ip := range ips {
		if checkAtDial && !st.scanner.checkSSRF(ip).allowed {
			lastErr = fmt.Errorf("SSRF blocked at dial time: %s resolved to %s", host, ip)
			continue
		}
		if !s.resolver.dialable(ip) {
			lastErr = errNotInHostsFile{addr: ip}
			s.log.stderr("%s\n", lastErr)
			continue
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(ip, s.resolver.dialPort(port)))
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no address for %s", host)
	}
	return nil, lastErr
}

// relay mirrors proxy/relay.go bidirectionalCopy with the idle timer measured across BOTH directions
// (the v2.3.0 per-direction bug was fixed upstream in PR #816) and the hard max_tunnel_seconds deadline.
// aR reads the client side: bytes already buffered while peeking the ClientHello come first.
func relay(aR io.Reader, a, b net.Conn, idle time.Duration, deadline time.Time) int64 {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var total atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = a.Close(); _ = b.Close(); close(done) }) }
	pipe := func(dst net.Conn, src io.Reader) {
		buf := make([]byte, 32*1024)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				total.Add(int64(n))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		if tc, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(b, aR) }()
	go func() { defer wg.Done(); pipe(a, b) }()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				if now.After(deadline) || now.Sub(time.Unix(0, last.Load())) > idle {
					closeBoth()
					return
				}
			}
		}
	}()
	wg.Wait()
	closeBoth()
	return total.Load()
}

// interceptTunnel mirrors internal/proxy/intercept.go interceptTunnel: TLS to the client with a leaf
// for the CONNECT host from the cert cache, an http.Server on the single connection (h2 or
// http/1.1), every inner request scanned by interceptHandler and forwarded over an upstream TLS
// connection verified against the system roots (which honour SSL_CERT_DIR).
func (s *server) interceptTunnel(ctx context.Context, conn net.Conn, host, port string, st *runtimeState) error {
	tlsCfg := &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return st.certs.Get(host) },
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
	hsDeadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(hsDeadline) {
		hsDeadline = d
	}
	_ = conn.SetDeadline(hsDeadline)
	tlsConn := tls.Server(conn, tlsCfg)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		s.log.LogBlocked(http.MethodConnect, net.JoinHostPort(host, port), "tls_handshake_error", err.Error())
		return fmt.Errorf("client TLS handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	defer tlsConn.Close()

	upstream := &http.Transport{
		DialTLSContext: func(dctx context.Context, network, _ string) (net.Conn, error) {
			raw, err := s.dial(dctx, st, host, port)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, &tls.Config{ServerName: host, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = raw.Close()
				return nil, err
			}
			return tc, nil
		},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
	}
	defer upstream.CloseIdleConnections()

	ln := newSingleConnListener(tlsConn)
	srv := &http.Server{
		Handler:           s.interceptHandler(host, port, st, upstream),
		ReadHeaderTimeout: 30 * time.Second,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateClosed {
				_ = ln.Close()
			}
		},
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = srv.Close()
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	// The single-connection listener ends every tunnel with net.ErrClosed; the real binary logs that
	// as an error at each intercepted tunnel's end (measured on v2.3.0: "use of closed network
	// connection", about one per request), and so does the stand-in.
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// interceptHandler mirrors intercept.go newInterceptHandler: authority check, URL scan, body DLP,
// header DLP, forward, then the response: compressed -> blocked; text/event-stream -> streamed
// event by event with core DLP per event; anything else buffered up to max_response_bytes and
// blocked above it (scan-then-send, fail closed).
func (s *server) interceptHandler(host, port string, st *runtimeState, upstream http.RoundTripper) http.Handler {
	cfg := st.cfg
	target := net.JoinHostPort(host, port)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Scheme = "https"
		r.URL.Host = target
		r.RequestURI = ""

		reqHost, reqPort, err := net.SplitHostPort(r.Host)
		if err != nil {
			reqHost, reqPort = r.Host, "443"
		}
		if !strings.EqualFold(reqHost, host) || reqPort != port {
			s.log.LogBlocked(r.Method, "https://"+net.JoinHostPort(reqHost, reqPort)+r.URL.RequestURI(), "tls_authority_mismatch", "authority mismatch: "+r.Host+" vs "+target)
			writeBlockedError(w, blockInfoFor(reasonAuthorityMismatch, ""), "authority mismatch: blocked", http.StatusForbidden)
			return
		}
		targetURL := r.URL.String()
		if !s.checkRequest(w, r, st, targetURL) {
			return
		}
		r.Header.Del("Accept-Encoding") // force identity so the response can be scanned
		removeHopByHopHeaders(r.Header)

		resp, err := upstream.RoundTrip(r)
		if err != nil {
			s.log.LogError(r.Method, targetURL, err)
			http.Error(w, "upstream error", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()

		if hasNonIdentityEncoding(resp.Header.Get("Content-Encoding")) {
			s.log.LogBlocked(r.Method, targetURL, layerTLSResponse, "compressed response cannot be scanned")
			writeBlockedError(w, blockInfoFor(reasonCompressedResponse, layerTLSResponse), "blocked: compressed response cannot be scanned", http.StatusForbidden)
			return
		}
		if isSSE(resp.Header.Get("Content-Type")) {
			copyResponseHeaders(w.Header(), resp.Header)
			w.Header().Del("Content-Length")
			w.WriteHeader(resp.StatusCode)
			if err := streamSSE(w, resp.Body, sseMaxEventBytes); err != nil {
				s.log.LogBlocked(r.Method, targetURL, "sse_stream", err.Error())
				return
			}
			s.log.LogAllowed(r.Method, targetURL, resp.StatusCode)
			return
		}
		maxResp := cfg.TLSInterception.MaxResponseBytes
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxResp+1))
		if err != nil {
			s.log.LogError(r.Method, targetURL, err)
			writeBlockedError(w, blockInfoFor(reasonParseError, layerTLSResponse), "blocked: response read error", http.StatusForbidden)
			return
		}
		if int64(len(body)) > maxResp {
			s.log.LogBlocked(r.Method, targetURL, layerTLSResponse, "response too large for scanning")
			writeBlockedError(w, blockInfoFor(reasonDataBudget, layerTLSResponse), "blocked: response too large for scanning", http.StatusForbidden)
			return
		}
		copyResponseHeaders(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
		s.log.LogAllowed(r.Method, targetURL, resp.StatusCode)
	})
}

// refuseScan answers a URL-scan block the way forward.go and intercept.go do: 429 for the rate
// limit, else 403; the hint only with explain_blocks; body = prefix + reason.
func (s *server) refuseScan(w http.ResponseWriter, cfg *config.Config, method, target string, res scanResult, prefix string) {
	status := http.StatusForbidden
	if res.scanner == scannerRateLimit {
		status = http.StatusTooManyRequests
	}
	s.log.LogBlocked(method, target, res.scanner, res.reason)
	if cfg.ExplainBlocksEnabled() && res.hint != "" {
		w.Header().Set(headerHint, res.hint)
	}
	writeBlockedError(w, blockInfo(res.scanner), prefix+res.reason, status)
}

// checkRequest runs the request-side checks shared by the intercept and forward paths (URL scan,
// body DLP, header DLP) and writes pipelock's refusal when one blocks. Returns false if blocked.
func (s *server) checkRequest(w http.ResponseWriter, r *http.Request, st *runtimeState, targetURL string) bool {
	cfg := st.cfg
	if res := st.scanner.Scan(targetURL); !res.allowed {
		s.refuseScan(w, cfg, r.Method, targetURL, res, "blocked: ")
		return false
	}
	if cfg.RequestBodyScanning.Enabled && r.Body != nil && r.Body != http.NoBody {
		buf, result := scanRequestBody(r.Body, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), cfg.RequestBodyScanning.MaxBodyBytes)
		// Fail-closed results block in any mode; the core patterns are all critical, and
		// critical DLP hard-blocks in enforce mode even with action: warn (bodyscan.go
		// shouldHardBlockRequestDLP), so with the stand-in's patterns every finding blocks.
		if !result.clean {
			reason := result.blockReason()
			s.log.LogBlocked(r.Method, targetURL, scannerBodyDLP, reason)
			writeBlockedError(w, blockInfo(scannerBodyDLP), "blocked: "+reason, http.StatusForbidden)
			return false
		}
		r.Body = io.NopCloser(bytes.NewReader(buf))
		r.ContentLength = int64(len(buf))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	}
	if cfg.RequestBodyScanning.Enabled && cfg.RequestBodyScanning.ScanHeaders && len(scanRequestHeaders(r.Header, cfg)) > 0 {
		s.log.LogBlocked(r.Method, targetURL, scannerHeaderDLP, "request header contains secret")
		writeBlockedError(w, blockInfoFor(reasonDLPMatch, scannerHeaderDLP), "blocked: request header contains secret", http.StatusForbidden)
		return false
	}
	return true
}

// handleForwardHTTP mirrors forward.go handleForwardHTTP for absolute-URI http:// requests: the same
// request-side checks, then the response is streamed back (not buffered).
func (s *server) handleForwardHTTP(w http.ResponseWriter, r *http.Request, st *runtimeState) {
	if r.URL.Scheme != "http" {
		http.Error(w, fmt.Sprintf("%s: absolute-URI %s:// requests are not implemented (use CONNECT)", config.StandIn, r.URL.Scheme), http.StatusNotImplemented)
		return
	}
	targetURL := r.URL.String()
	if !s.checkRequest(w, r, st, targetURL) {
		return
	}
	host, port := r.URL.Hostname(), r.URL.Port()
	if port == "" {
		port = "80"
	}
	removeHopByHopHeaders(r.Header)
	r.RequestURI = ""
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return s.dial(ctx, st, host, port) },
	}
	defer transport.CloseIdleConnections()
	resp, err := transport.RoundTrip(r)
	if err != nil {
		s.log.LogError(r.Method, targetURL, err)
		http.Error(w, "upstream error", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	copyResponseHeaders(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	s.log.LogAllowed(r.Method, targetURL, resp.StatusCode)
}

// hopByHopHeaders mirrors proxy removeHopByHopHeaders (RFC 7230 §6.1 plus Proxy-Connection).
var hopByHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHopHeaders {
		h.Del(name)
	}
}

func copyResponseHeaders(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
	removeHopByHopHeaders(dst)
}

// sseMaxEventBytes mirrors response_scanning.sse_streaming.max_event_bytes' default.
const sseMaxEventBytes = 65536

func isSSE(contentType string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "text/event-stream")
}

// streamSSE mirrors the generic SSE path (docs/guides/sse-streaming.md, default action block):
// events are forwarded one by one after a core-DLP scan, comment/keepalive lines are dropped, an
// event over max_event_bytes or with a finding cuts the stream (headers are already sent).
// Not mirrored: the prompt-injection patterns pipelock also runs per event.
func streamSSE(w http.ResponseWriter, body io.Reader, maxEvent int) error {
	flusher, _ := w.(http.Flusher)
	br := bufio.NewReader(body)
	var event bytes.Buffer
	emit := func() error {
		if event.Len() == 0 {
			return nil
		}
		if names := scanTextCoreDLP(event.String()); len(names) > 0 {
			return fmt.Errorf("SSE event contains secret: %s", strings.Join(names, ", "))
		}
		event.WriteString("\n")
		if _, err := w.Write(event.Bytes()); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		event.Reset()
		return nil
	}
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			trimmed := strings.TrimRight(line, "\r\n")
			switch {
			case trimmed == "":
				if e := emit(); e != nil {
					return e
				}
			case strings.HasPrefix(trimmed, ":"):
				// comment / keepalive: dropped
			default:
				if event.Len()+len(line) > maxEvent {
					return fmt.Errorf("SSE event exceeds max_event_bytes (%d)", maxEvent)
				}
				event.WriteString(trimmed + "\n")
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return emit()
			}
			return err
		}
	}
}

// singleConnListener mirrors intercept.go singleConnListener: Accept yields the one connection,
// then blocks until Close.
type singleConnListener struct {
	ch   chan net.Conn
	addr net.Addr
	once sync.Once
	done chan struct{}
}

func newSingleConnListener(c net.Conn) *singleConnListener {
	l := &singleConnListener{ch: make(chan net.Conn, 1), addr: c.LocalAddr(), done: make(chan struct{})}
	l.ch <- c
	return l
}

func (l *singleConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *singleConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *singleConnListener) Addr() net.Addr { return l.addr }

// bufferedConn mirrors intercept.go bufferedConn: bytes peeked during SNI verification are read first.
// Unlike intercept.go wrapBuffered it always wraps: verifySNI may have stacked a larger reader on the
// hijacked one, and only reading through the chain drains both.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func wrapBuffered(c net.Conn, r *bufio.Reader) net.Conn {
	return &bufferedConn{Conn: c, r: r}
}
