package store

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/simgate/simgate"
)

// upgraded makes a database with the migrations older than version (such
// as "0012"), as an older simgate left it, writes rows into it, and opens
// it again with every migration. It returns the database, which the test's
// end closes, and its path.
func upgraded(t *testing.T, version string, rows ...string) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "simgate.db")
	db, err := open(t.Context(), path, Options{}, migrationsBefore(t, version))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range rows {
		if _, err := db.writer.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(t.Context(), path, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// migrationsBefore returns the embedded migrations older than version.
func migrationsBefore(t *testing.T, version string) fstest.MapFS {
	t.Helper()
	older := fstest.MapFS{}
	entries, err := fs.ReadDir(migrationsFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() < version {
			b, err := fs.ReadFile(migrationsFS, "migrations/"+e.Name())
			if err != nil {
				t.Fatal(err)
			}
			older["migrations/"+e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return older
}

// Migration 0012 puts every verification made before it in the default
// service, adds the foreign key of verifications.service_id by editing the
// table's definition (every connection enforces it), keeps the default
// service's row free of settings, and leaves existing keys unlimited.
func TestMigrate0012_Services(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, path := upgraded(t, "0012",
		`INSERT INTO api_keys (id, prefix, hash, scopes, created_at) VALUES ('key_1', 'sg_x', zeroblob(32), 'verify', 1)`,
		`INSERT INTO verifications (id, to_number, status, code_hash, code_length, max_attempts, api_key_id, expires_at, created_at, updated_at)
		 VALUES ('ver_1', '+4915123456789', 'pending', zeroblob(32), 6, 5, 'key_1', 1, 1, 1)`,
		`INSERT INTO verifications (id, to_number, status, channel, call_to, call_modem, code_length, max_attempts, expires_at, created_at, updated_at)
		 VALUES ('ver_call', '+4915123456789', 'pending', 'missed_call', '+4917011111111', 'sim0', 6, 5, 1, 1, 1)`,
	)
	if got := db.Applied(); len(got) == 0 || got[0].String() != "0012_services" {
		t.Fatalf("applied %v, want 0012_services first", got)
	}
	v, _, err := db.GetVerification(ctx, "ver_1")
	if err != nil || v.ServiceID != simgate.DefaultServiceID {
		t.Fatalf("the verification made before 0012: %+v, %v; want the default service's", v, err)
	}
	// The definition 0012 edits keeps 0011's missed-call columns and their
	// CHECKs.
	v, _, err = db.GetVerification(ctx, "ver_call")
	if err != nil || v.ServiceID != simgate.DefaultServiceID || v.Channel != simgate.ChannelMissedCall || v.CallTo != "+4917011111111" || v.CallModem != "sim0" {
		t.Fatalf("the missed-call verification made before 0012: %+v, %v", v, err)
	}
	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Services != nil {
		t.Fatalf("keys after 0012: %+v, %v; want one, limited to no service", keys, err)
	}
	ss, err := db.ListServices(ctx)
	if err != nil || len(ss) != 1 || ss[0].ID != simgate.DefaultServiceID {
		t.Fatalf("services after 0012: %+v, %v; want the default one", ss, err)
	}
	var integrity string
	if err := db.reader.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}

	for name, exec := range writerAndNew(t, db, path) {
		if err := exec(`INSERT INTO verifications (id, to_number, status, code_length, max_attempts, expires_at, created_at, updated_at, service_id)
			VALUES ('ver_` + name + `', '+4915123456789', 'expired', 6, 5, 1, 1, 1, 'VA11111111111111111111111111111111')`); err == nil ||
			!strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("%s: a verification of no service = %v, want a foreign key failure", name, err)
		}
		if err := exec(`UPDATE verifications SET call_to = '' WHERE id = 'ver_call'`); err == nil ||
			!strings.Contains(err.Error(), "CHECK") {
			t.Errorf("%s: a missed-call verification without its number to call = %v, want a CHECK failure", name, err)
		}
		if err := exec(`UPDATE services SET friendly_name = 'x' WHERE id = '` + simgate.DefaultServiceID + `'`); err == nil ||
			!strings.Contains(err.Error(), "CHECK") {
			t.Errorf("%s: a setting on the default service = %v, want a CHECK failure", name, err)
		}
	}

	// A start's and a check's lookup of the pending verification of a
	// service and number uses the index 0012 made for it.
	if p := queryPlan(t, db, `SELECT id FROM verifications v WHERE v.service_id = ? AND v.to_number = ? AND v.status = 'pending'
		ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, simgate.DefaultServiceID, "+4915123456789"); !strings.Contains(p, "verifications_pending") {
		t.Errorf("plan of the pending lookup: %s; want verifications_pending", p)
	}
}

// writerAndNew returns a statement's run on db's writer (which ran the
// migrations) and on a new connection to the file at path, by name: both
// must read a schema a migration edited.
func writerAndNew(t *testing.T, db *DB, path string) map[string]func(string) error {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return map[string]func(string) error{
		"writer": func(q string) error { _, err := db.writer.ExecContext(t.Context(), q); return err },
		"new":    func(q string) error { _, err := raw.ExecContext(t.Context(), q); return err },
	}
}

// queryPlan returns SQLite's plan of the query q, its steps joined by
// "; ".
func queryPlan(t *testing.T, db *DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.reader.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}
