package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Migration 0005 edits the status CHECKs of messages and message_events in
// place: a database at version 4 keeps every message, part, event and
// reference, passes integrity and foreign key checks, and takes the status
// 'scheduled' (and no other new one) on every connection.
func TestMigrate0005_KeepsRows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Rows by hand: the store's code is 0005's, and writes send_at.
	const id = "msg_before0005"
	db, path := upgraded(t, "0005",
		`INSERT INTO messages (id, to_number, text, status, created_at, updated_at) VALUES ('msg_before0005', '+15550000001', 'before 0005', 'sent', 1, 1)`,
		`INSERT INTO message_parts (message_id, seq, status, modem_id, mr, submitted_at) VALUES ('msg_before0005', 1, 'sent', 'm0', 7, 1), ('msg_before0005', 2, 'sent', 'm0', 8, 1)`,
		`INSERT INTO message_events (message_id, at, status) VALUES ('msg_before0005', 1, 'queued'), ('msg_before0005', 1, 'sent')`,
		`INSERT INTO status_reports (modem_id, mr, recipient, tp_st, received_at, message_id, part_seq) VALUES ('m0', 7, '+15550000001', 0, 2, 'msg_before0005', 1)`,
		`INSERT INTO verifications (id, to_number, status, code_length, max_attempts, message_id, expires_at, created_at, updated_at) VALUES ('ver_1', '+15550000001', 'approved', 6, 5, 'msg_before0005', 1, 1, 1)`,
	)
	if got := db.Applied(); len(got) == 0 || got[0].String() != "0005_scheduled_sends" {
		t.Fatalf("applied %v, want 0005_scheduled_sends first", got)
	}
	got, err := db.FindMessage(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Parts) != 2 || len(got.Events) != 2 || !got.SendAt.IsZero() {
		t.Fatalf("after 0005: %d parts, %d events, send_at %v", len(got.Parts), len(got.Events), got.SendAt)
	}
	var reports, verifications int
	if err := db.reader.QueryRowContext(ctx, `
		SELECT (SELECT count(*) FROM status_reports WHERE message_id = ?), (SELECT count(*) FROM verifications WHERE message_id = ?)
	`, id, id).Scan(&reports, &verifications); err != nil || reports != 1 || verifications != 1 {
		t.Fatalf("matched reports %d, verifications %d, %v; want 1 each", reports, verifications, err)
	}
	var integrity string
	if err := db.reader.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check = %q, %v", integrity, err)
	}

	// The writer (which ran the migration) and a new connection both take
	// 'scheduled' and refuse a status no code defines.
	for name, exec := range writerAndNew(t, db, path) {
		id := "msg_" + name
		if err := exec(`INSERT INTO messages (id, to_number, text, status, created_at, updated_at, send_at)
			VALUES ('` + id + `', '+15550000001', 'x', 'scheduled', 1, 1, 2)`); err != nil {
			t.Errorf("%s: scheduled message: %v", name, err)
		}
		if err := exec(`INSERT INTO message_events (message_id, at, status) VALUES ('` + id + `', 1, 'scheduled')`); err != nil {
			t.Errorf("%s: scheduled event: %v", name, err)
		}
		if err := exec(`UPDATE messages SET status = 'later' WHERE id = '` + id + `'`); err == nil ||
			!strings.Contains(err.Error(), "CHECK") {
			t.Errorf("%s: status 'later' = %v, want a CHECK failure", name, err)
		}
	}
}

// The queries that run on every scrape and every scheduler pass use the
// partial indexes 0005 made for them.
func TestMigrate0005_QueryPlans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "simgate.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for q, index := range map[string]string{
		`SELECT min(send_at) FROM messages WHERE status = 'scheduled'`: "messages_scheduled",
		`SELECT status, priority, count(*) FROM messages
		WHERE status IN ('scheduled', 'accepted', 'queued', 'sending', 'sent') AND reports_missing_at IS NULL
		GROUP BY status, priority`: "messages_active",
	} {
		if p := queryPlan(t, db, q); !strings.Contains(p, index) {
			t.Errorf("plan of %q: %s; want %s", q, p, index)
		}
	}
}
