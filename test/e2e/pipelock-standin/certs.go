package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// loadCA mirrors internal/certgen/certgen.go LoadCA: an ECDSA key (SEC1 "EC PRIVATE KEY" or PKCS#8
// "PRIVATE KEY"), a CA:TRUE certificate with CertSign that matches the key.
func loadCA(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Clean(certPath))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA cert: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, nil, errors.New("no PEM block in CA cert file")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA cert: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Clean(keyPath))
	if err != nil {
		return nil, nil, fmt.Errorf("read CA key: %w", err)
	}
	keyBlock, _ := pem.Decode(keyPEM)
	if keyBlock == nil {
		return nil, nil, errors.New("no PEM block in CA key file")
	}
	var key *ecdsa.PrivateKey
	switch keyBlock.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(keyBlock.Bytes)
	case "PRIVATE KEY":
		var parsed any
		parsed, err = x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
		if err == nil {
			var ok bool
			if key, ok = parsed.(*ecdsa.PrivateKey); !ok {
				err = fmt.Errorf("CA key must be ECDSA, got %T", parsed)
			}
		}
	default:
		err = fmt.Errorf("unsupported PEM block type %q (expected %q or %q)", keyBlock.Type, "EC PRIVATE KEY", "PRIVATE KEY")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA key: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, errors.New("certificate is not a CA")
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, errors.New("CA certificate missing KeyUsageCertSign")
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, nil, errors.New("CA certificate public key is not ECDSA")
	}
	if !pub.Equal(key.Public()) {
		return nil, nil, errors.New("CA key does not match certificate")
	}
	return cert, key, nil
}

// certCache mirrors certgen.go CertCache: leaf certificates on demand, bounded, TTL-based.
type certCache struct {
	mu      sync.Mutex
	ca      *x509.Certificate
	caKey   crypto.PrivateKey
	ttl     time.Duration
	maxSize int
	certs   map[string]cachedCert
}

type cachedCert struct {
	cert      *tls.Certificate
	expiresAt time.Time
}

func newCertCache(ca *x509.Certificate, key crypto.PrivateKey, ttl time.Duration, maxSize int) *certCache {
	return &certCache{ca: ca, caKey: key, ttl: ttl, maxSize: maxSize, certs: map[string]cachedCert{}}
}

func (c *certCache) Get(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.certs[host]; ok && time.Now().Before(e.expiresAt) {
		return e.cert, nil
	}
	leaf, err := generateLeaf(c.ca, c.caKey, host, c.ttl)
	if err != nil {
		return nil, err
	}
	c.certs[host] = cachedCert{cert: leaf, expiresAt: time.Now().Add(c.ttl)}
	if len(c.certs) > c.maxSize { // evictLocked: expired first, then the earliest-expiring
		for h, e := range c.certs {
			if time.Now().After(e.expiresAt) {
				delete(c.certs, h)
			}
		}
		for len(c.certs) > c.maxSize {
			oldest, at := "", time.Time{}
			for h, e := range c.certs {
				if oldest == "" || e.expiresAt.Before(at) {
					oldest, at = h, e.expiresAt
				}
			}
			delete(c.certs, oldest)
		}
	}
	return leaf, nil
}

// generateLeaf mirrors certgen.go GenerateLeaf: ECDSA P-256, backdated 1 h, DigitalSignature +
// ServerAuth, one SAN (DNS name or IP) for the requested host only.
func generateLeaf(ca *x509.Certificate, caKey crypto.PrivateKey, host string, ttl time.Duration) (*tls.Certificate, error) {
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	serial.Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create leaf cert: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: leafKey}, nil
}
