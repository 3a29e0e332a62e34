package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Mirrors internal/proxy/sni.go: after "200 Connection Established" pipelock peeks the client's
// first TLS record and compares its SNI with the CONNECT host; a mismatch, a malformed ClientHello
// or nothing within 5 s closes the connection without an HTTP answer. Non-TLS bytes and a
// ClientHello without SNI pass.

var (
	errNotTLS       = errors.New("not a TLS record")
	errTLSMalformed = errors.New("malformed TLS ClientHello")
)

const (
	sniCategoryMatch       = "match"
	sniCategoryMismatch    = "mismatch"
	sniCategoryNotTLS      = "not_tls"
	sniCategoryNoExtension = "no_extension"
	sniCategoryMalformed   = "malformed_tls"
	sniCategoryTimeout     = "timeout"
	sniPeekSize            = 16384
	sniReadTimeoutDefault  = 5 * time.Second
)

// extractSNI mirrors sni.go extractSNI.
func extractSNI(data []byte) (string, error) {
	if len(data) == 0 || data[0] != 0x16 {
		return "", errNotTLS
	}
	if len(data) < 5 {
		return "", errTLSMalformed
	}
	recLen := int(data[3])<<8 | int(data[4])
	p := data[5:]
	if len(p) < recLen {
		return "", errTLSMalformed
	}
	p = p[:recLen]
	if len(p) < 4 || p[0] != 0x01 {
		return "", errTLSMalformed
	}
	hsLen := int(p[1])<<16 | int(p[2])<<8 | int(p[3])
	p = p[4:]
	if len(p) < hsLen {
		return "", errTLSMalformed
	}
	p = p[:hsLen]
	if len(p) < 34 {
		return "", errTLSMalformed
	}
	p = p[34:]
	skip := func(lenBytes int) bool {
		if len(p) < lenBytes {
			return false
		}
		n := 0
		for i := 0; i < lenBytes; i++ {
			n = n<<8 | int(p[i])
		}
		p = p[lenBytes:]
		if len(p) < n {
			return false
		}
		p = p[n:]
		return true
	}
	if !skip(1) || !skip(2) || !skip(1) { // session id, cipher suites, compression methods
		return "", errTLSMalformed
	}
	if len(p) < 2 {
		return "", nil
	}
	extLen := int(p[0])<<8 | int(p[1])
	p = p[2:]
	if len(p) < extLen {
		return "", errTLSMalformed
	}
	p = p[:extLen]
	for len(p) >= 4 {
		typ := int(p[0])<<8 | int(p[1])
		l := int(p[2])<<8 | int(p[3])
		p = p[4:]
		if len(p) < l {
			return "", errTLSMalformed
		}
		if typ == 0 {
			return parseSNIExtension(p[:l])
		}
		p = p[l:]
	}
	return "", nil
}

func parseSNIExtension(d []byte) (string, error) {
	if len(d) < 2 {
		return "", errTLSMalformed
	}
	listLen := int(d[0])<<8 | int(d[1])
	d = d[2:]
	if len(d) < listLen {
		return "", errTLSMalformed
	}
	d = d[:listLen]
	for len(d) >= 3 {
		typ := d[0]
		l := int(d[1])<<8 | int(d[2])
		d = d[3:]
		if len(d) < l {
			return "", errTLSMalformed
		}
		if typ == 0 {
			return strings.TrimSuffix(string(d[:l]), "."), nil
		}
		d = d[l:]
	}
	return "", nil
}

// verifySNI mirrors sni.go verifySNI (peek, so the bytes stay buffered for the relay or the TLS server).
func verifySNI(reader *bufio.Reader, conn net.Conn, connectHost string, timeout time.Duration) (*bufio.Reader, string, string, error) {
	out := reader
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	first, _ := out.Peek(1)
	if len(first) == 0 {
		return out, "", sniCategoryTimeout, fmt.Errorf("SNI verification timeout: no data received within %v", timeout)
	}
	if first[0] != 0x16 {
		return out, "", sniCategoryNotTLS, nil
	}
	header, _ := out.Peek(5)
	if len(header) < 5 {
		return out, "", sniCategoryMalformed, errTLSMalformed
	}
	recLen := (int(header[3])<<8 | int(header[4])) + 5
	if recLen > sniPeekSize {
		recLen = sniPeekSize
	}
	if recLen > out.Size() {
		out = bufio.NewReaderSize(out, recLen)
	}
	peeked, _ := out.Peek(recLen)
	host, err := extractSNI(peeked)
	if errors.Is(err, errTLSMalformed) {
		return out, "", sniCategoryMalformed, err
	}
	if errors.Is(err, errNotTLS) {
		return out, "", sniCategoryNotTLS, nil
	}
	if host == "" {
		return out, "", sniCategoryNoExtension, nil
	}
	if strings.TrimSuffix(strings.ToLower(host), ".") != strings.TrimSuffix(strings.ToLower(connectHost), ".") {
		return out, host, sniCategoryMismatch, fmt.Errorf("SNI mismatch: CONNECT target %q but ClientHello SNI %q", connectHost, host)
	}
	return out, host, sniCategoryMatch, nil
}
