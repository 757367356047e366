package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

type noKeys struct{}

func (noKeys) FindAPIKeyByHash(context.Context, []byte) (*simgate.APIKey, error) {
	return nil, simgate.Errorf(simgate.CodeNotFound, "none")
}
func (noKeys) TouchAPIKey(context.Context, string) error { return nil }

func TestServerDefaults(t *testing.T) {
	s, err := NewServer(Options{Keys: noKeys{}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.http.Addr, "127.0.0.1:8080"; got != want {
		t.Fatalf("Addr = %q, want %q", got, want)
	}
	if got, want := s.http.MaxHeaderBytes, 64<<10; got != want {
		t.Fatalf("MaxHeaderBytes = %d, want %d", got, want)
	}
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": s.http.ReadHeaderTimeout,
		"ReadTimeout": s.http.ReadTimeout, "WriteTimeout": s.http.WriteTimeout, "IdleTimeout": s.http.IdleTimeout} {
		if d <= 0 {
			t.Fatalf("%s not set", name)
		}
	}
}

func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(priv)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return
}

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "first")
	s, err := NewServer(Options{Keys: noKeys{}, Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	url := fmt.Sprintf("https://%s/healthz", s.Addr())

	get := func(maxVersion uint16) (string, error) {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, MaxVersion: maxVersion}}}
		res, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		return res.TLS.PeerCertificates[0].Subject.CommonName, nil
	}
	if cn, err := get(0); err != nil || cn != "first" {
		t.Fatalf("TLS: %q, %v", cn, err)
	}
	if _, err := get(tls.VersionTLS11); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	writeCert(t, dir, "second")
	if err := s.ReloadCertificate(); err != nil {
		t.Fatal(err)
	}
	if cn, err := get(0); err != nil || cn != "second" {
		t.Fatalf("after reload: %q, %v", cn, err)
	}
}

func TestBucketMapEviction(t *testing.T) {
	ctx := context.Background()
	bm := newBucketMap(Rate{PerSecond: 1, Burst: 2}, 100)
	now := time.Unix(0, 0)
	for i := range 1000 {
		bm.allow(ctx, fmt.Sprint(i), now, 1)
	}
	if n := bm.len(); n > 100 {
		t.Fatalf("%d buckets held, bound 100", n)
	}
	// A drained bucket is kept while it is not full again.
	bm = newBucketMap(Rate{PerSecond: 1, Burst: 2}, 100)
	bm.allow(ctx, "busy", now, 1)
	bm.allow(ctx, "busy", now, 1)
	if ok, _, _, _ := bm.allow(ctx, "busy", now, 1); ok {
		t.Fatal("third token granted")
	}
	for i := range 2000 {
		bm.allow(ctx, fmt.Sprint("idle", i%50), now.Add(time.Duration(i)*time.Microsecond), 1)
	}
	if ok, _, _, _ := bm.allow(ctx, "busy", now.Add(10*time.Millisecond), 1); ok {
		t.Fatal("the busy bucket was evicted before it refilled")
	}
}

// Fuzz targets for request decoding: no input may panic, and what decodes
// must re-encode.

func FuzzDecodeVerificationRequest(f *testing.F) {
	for _, s := range []string{`{"to":"+4915123456789"}`, `{"to":"+4915123456789","ttl":"10m","code_length":8,"locale":"de","app_name":"x","reference":"r"}`,
		`{"ttl":600}`, `{"ttl":-1}`, `{"to":1}`, `{"x":1}`, `{} {}`, `[]`, `null`, ``, `{"ttl":"1e400"}`, `{"ttl":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req VerificationRequest
		if err := decode(b, &req); err != nil {
			if simgate.ErrorCode(err) != simgate.CodeInvalid {
				t.Fatalf("error code %s for %q", simgate.ErrorCode(err), b)
			}
			return
		}
		if req.TTL < 0 {
			t.Fatalf("negative ttl from %q", b)
		}
	})
}

func FuzzDecodeCheckRequest(f *testing.F) {
	for _, s := range []string{`{"id":"ver_x","code":"123456"}`, `{"to":"+4915123456789","code":"1234"}`, `{"code":123}`, `{"code":"1","extra":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req CheckRequest
		if err := decode(b, &req); err != nil && simgate.ErrorCode(err) != simgate.CodeInvalid {
			t.Fatalf("error code %s for %q", simgate.ErrorCode(err), b)
		}
	})
}

func FuzzDecodeMessageRequest(f *testing.F) {
	for _, s := range []string{`{"to":"+4915123456789","text":"hi"}`, `{"to":"+4915123456789","text":"hi","priority":"high","expires_at":"2026-01-01T00:00:00Z"}`,
		`{"expires_at":"yesterday"}`, `{"text":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req MessageRequest
		if err := decode(b, &req); err != nil && simgate.ErrorCode(err) != simgate.CodeInvalid {
			t.Fatalf("error code %s for %q", simgate.ErrorCode(err), b)
		}
	})
}
