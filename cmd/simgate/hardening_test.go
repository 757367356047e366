package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/simgate/simgate/store"
)

// `rm simgate.db*` under a running daemon: readiness turns false and
// requests get 503 within a few seconds, instead of 201s into a deleted file;
// a restart refuses to create an empty database in its place.
func TestDatabaseRemovedUnderDaemon(t *testing.T) {
	r := newAppRig(t, 1, nil)
	if status, body := r.do("POST", "/v1/messages", r.sender, map[string]any{"to": "+4915123456789", "text": "before"}); status != http.StatusCreated {
		t.Fatalf("POST before: %d %s", status, body)
	}
	matches, _ := filepath.Glob(r.cfg.Database.Path + "*")
	for _, m := range matches {
		os.Remove(m)
	}
	waitFor(t, 3*store.FileCheckInterval, "/readyz to say not ready", func() bool {
		resp, err := http.Get(r.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if status, body := r.do("POST", "/v1/messages", r.sender, map[string]any{"to": "+4915123456789", "text": "after"}); status != http.StatusServiceUnavailable {
		t.Fatalf("POST after the file was removed: %d %s, want 503", status, body)
	}
	r.close()
	cfg := *r.cfg
	app := &App{Config: &cfg, Logger: r.app.Logger}
	err := app.Open(t.Context())
	app.Close()
	if !errors.Is(err, store.ErrDatabaseMissing) {
		t.Fatalf("serve after the removal: %v, want ErrDatabaseMissing (not an empty database in its place)", err)
	}
	if _, err := os.Stat(r.cfg.Database.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the refused start created a database file")
	}
}
