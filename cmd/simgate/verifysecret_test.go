package main

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifySecretSources: the verification secret comes from verify.secret,
// then SIMGATE_VERIFY_SECRET, then the systemd credential verify-secret,
// and only when none is given from a file beside the database, with a
// warning that the key then sits with the data.
func TestVerifySecretSources(t *testing.T) {
	t.Setenv(verifySecretEnv, "")
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	dataDir, credDir := t.TempDir(), t.TempDir()
	cfg := DefaultConfig()
	cfg.Database.Path = filepath.Join(dataDir, "simgate.db")
	oldFile := filepath.Join(dataDir, verifySecretFile)
	load := func() ([]byte, string) {
		t.Helper()
		var logs bytes.Buffer
		key, err := verifySecret(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return key, logs.String()
	}

	// Nothing given: a new key beside the database, and a warning.
	fileKey, logs := load()
	if got, want := len(fileKey), 32; got != want {
		t.Fatalf("key of %d bytes, want %d", got, want)
	}
	if fi, err := os.Stat(oldFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v; want mode 0600", fi, err)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, oldFile) || !strings.Contains(logs, verifySecretEnv) {
		t.Fatalf("no warning that the key sits with the data: %s", logs)
	}
	if again, logs := load(); !bytes.Equal(again, fileKey) || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("second start: same key %v, logs %s", bytes.Equal(again, fileKey), logs)
	}

	// A credential directory without verify-secret, or with the empty
	// default of the shipped unit (SetCredential=verify-secret:\n), changes
	// nothing.
	t.Setenv("CREDENTIALS_DIRECTORY", credDir)
	if key, _ := load(); !bytes.Equal(key, fileKey) {
		t.Fatal("an empty credential directory replaced the file's key")
	}
	if err := os.WriteFile(filepath.Join(credDir, verifySecretCredential), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if key, logs := load(); !bytes.Equal(key, fileKey) || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("an empty credential: same key %v, logs %s", bytes.Equal(key, fileKey), logs)
	}

	// The credential verify-secret (hex) comes before the file; the unused
	// file is pointed out.
	credKey := bytes.Repeat([]byte{0xc7}, 32)
	if err := os.WriteFile(filepath.Join(credDir, verifySecretCredential), []byte(hex.EncodeToString(credKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, logs := load()
	if !bytes.Equal(key, credKey) {
		t.Fatalf("key %x, want the credential's", key)
	}
	if !strings.Contains(logs, "not used") || strings.Contains(logs, "kept beside the database") {
		t.Fatalf("logs with a credential: %s", logs)
	}

	// The environment comes before the credential.
	envKey := strings.Repeat("e", 40)
	t.Setenv(verifySecretEnv, envKey)
	if key, _ := load(); string(key) != envKey {
		t.Fatalf("key %q, want the environment's", key)
	}
	// The shipped configuration reads the same variable into verify.secret.
	cfg.Verify.Secret = envKey
	if key, logs := load(); string(key) != envKey || !strings.Contains(logs, "source="+verifySecretEnv) {
		t.Fatalf("key %q, logs %s", key, logs)
	}
	// A secret written in the configuration comes first.
	cfg.Verify.Secret = strings.Repeat("c", 32)
	if key, _ := load(); string(key) != cfg.Verify.Secret {
		t.Fatalf("key %q, want verify.secret", key)
	}

	// No file beside the database is made while another source gives the key.
	if err := os.Remove(oldFile); err != nil {
		t.Fatal(err)
	}
	cfg.Verify.Secret = ""
	t.Setenv(verifySecretEnv, "")
	if _, logs := load(); strings.Contains(logs, "level=WARN") {
		t.Fatalf("warning with the credential alone: %s", logs)
	}
	if _, err := os.Stat(oldFile); !os.IsNotExist(err) {
		t.Fatalf("a secret file was made beside the database: %v", err)
	}
}

// TestVerifySecretRefusesBadKeys: a short environment secret or a
// credential that is not a hex key stops the start instead of falling back.
func TestVerifySecretRefusesBadKeys(t *testing.T) {
	credDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Database.Path = filepath.Join(t.TempDir(), "simgate.db")
	log := slog.New(slog.DiscardHandler)

	t.Setenv("CREDENTIALS_DIRECTORY", credDir)
	t.Setenv(verifySecretEnv, "short")
	if _, err := verifySecret(cfg, log); err == nil || !strings.Contains(err.Error(), verifySecretEnv) {
		t.Fatalf("short %s: %v", verifySecretEnv, err)
	}
	t.Setenv(verifySecretEnv, "")
	for _, content := range []string{"not hex", hex.EncodeToString(make([]byte, 16))} {
		if err := os.WriteFile(filepath.Join(credDir, verifySecretCredential), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := verifySecret(cfg, log); err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Fatalf("credential %q: %v", content, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg.Database.Path), verifySecretFile)); !os.IsNotExist(err) {
		t.Fatalf("fell back to a file beside the database: %v", err)
	}
}

// On PostgreSQL, no node makes a key of its own: without a secret given,
// and without a file copied beside database.path, serve refuses, saying
// why; a copied file is used.
func TestVerifySecretOnPostgres(t *testing.T) {
	t.Setenv(verifySecretEnv, "")
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	dataDir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Database.Driver, cfg.Database.DSN = driverPostgres, "postgres://db.example/simgate"
	cfg.Database.Path = filepath.Join(dataDir, "simgate.db")
	logger := slog.New(slog.DiscardHandler)
	if _, err := verifySecret(cfg, logger); err == nil || !strings.Contains(err.Error(), "every node needs the same verification secret") {
		t.Fatalf("no secret on postgres: %v; want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, verifySecretFile)); !os.IsNotExist(err) {
		t.Fatalf("a key file was made for this host alone: %v", err)
	}
	copied := bytes.Repeat([]byte{7}, 32)
	if err := os.WriteFile(filepath.Join(dataDir, verifySecretFile), []byte(hex.EncodeToString(copied)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if key, err := verifySecret(cfg, logger); err != nil || !bytes.Equal(key, copied) {
		t.Fatalf("a copied file: %x, %v", key, err)
	}
}
