package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/modem"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/verify"
)

// importTableNames returns the names of importTables, in order.
func importTableNames() []string {
	var names []string
	for _, it := range importTables() {
		names = append(names, it.name)
	}
	return names
}

// Every table of both schemas is one the copy knows, and the other way
// round: a table added to a migration of either store and not to
// importTables fails here, without a PostgreSQL server.
func TestImportTablesCoverSchemas(t *testing.T) {
	ctx := context.Background()
	sq, err := store.Open(ctx, filepath.Join(t.TempDir(), "simgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	var inSQLite []string
	if err := sq.ReadSnapshot(ctx, func(s *sql.Tx) error {
		tables, err := sqliteSchema(ctx, s)
		inSQLite = slices.Sorted(maps.Keys(tables))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var inPG []string
	create := regexp.MustCompile(`(?m)^CREATE (?:UNLOGGED )?TABLE (\w+)`)
	if err := fs.WalkDir(migrationsFS, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrationsFS, path)
		for _, m := range create.FindAllStringSubmatch(string(b), -1) {
			if !postgresOnly[m[1]] {
				inPG = append(inPG, m[1])
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(inPG)
	known := slices.Sorted(slices.Values(importTableNames()))
	if !slices.Equal(inSQLite, known) {
		t.Errorf("SQLite's tables:\n%v\nthe copy's:\n%v", inSQLite, known)
	}
	if !slices.Equal(inPG, known) {
		t.Errorf("PostgreSQL's tables (store/postgres/migrations):\n%v\nthe copy's:\n%v", inPG, known)
	}
}

// importTables copies each table after those its foreign keys refer to,
// but for the column it copies last: PostgreSQL checks each row's foreign
// keys as it is copied.
func TestImportTablesOrder(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	db, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.pool.Query(ctx, `
		SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, a.attname
		FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
		WHERE c.contype = 'f'
	`)
	if err != nil {
		t.Fatal(err)
	}
	type fk struct{ From, To, Col string }
	fks, err := pgx.CollectRows(rows, pgx.RowToStructByPos[fk])
	if err != nil || len(fks) == 0 {
		t.Fatalf("foreign keys: %v, %v", fks, err)
	}
	place := map[string]int{}
	later := map[string]string{}
	for i, it := range importTables() {
		place[it.name] = i
		later[it.name] = it.later
	}
	for _, k := range fks {
		if place[k.To] >= place[k.From] && later[k.From] != k.Col {
			t.Errorf("%s.%s refers to %s, which importTables copies after it", k.From, k.Col, k.To)
		}
	}
}

// recorder is the Sender of the test's dispatchers: each part goes out
// with a new message reference, but to the numbers that fail and that time
// out.
type recorder struct {
	mu    sync.Mutex
	mr    int
	sends []sentSMS
}

type sentSMS struct {
	to, text string
	mrs      []int
}

const (
	refusedNumber = "+4915100000002"
	timeoutNumber = "+4915100000003"
)

func (r *recorder) Send(ctx context.Context, req simgate.SendRequest) (simgate.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch req.To {
	case refusedNumber:
		return simgate.Receipt{ModemID: "m0"}, &modem.Error{Op: "submit", Class: simgate.ClassPermanentRecipient}
	case timeoutNumber:
		return simgate.Receipt{ModemID: "m0"}, &modem.Error{Op: "submit", Class: simgate.ClassAmbiguous}
	}
	// The texts here are GSM 7-bit: 160 characters in one SMS, 153 in
	// each part of a longer one.
	n := 1
	if len(req.Text) > 160 {
		n = (len(req.Text) + 152) / 153
	}
	s := sentSMS{to: req.To, text: req.Text}
	for range n {
		r.mr = (r.mr + 1) % 256
		s.mrs = append(s.mrs, r.mr)
	}
	r.sends = append(r.sends, s)
	return simgate.Receipt{ModemID: "m0", MRs: s.mrs, SentAt: time.Now()}, nil
}

// sent returns the SMS sent to to so far.
func (r *recorder) sent(to string) []sentSMS {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sentSMS
	for _, s := range r.sends {
		if s.to == to {
			out = append(out, s)
		}
	}
	return out
}

// codeCatcher is the dispatcher as verify sees it, keeping the text of
// each verification SMS before the dispatcher seals it: the test reads the
// code there, as the handset would.
type codeCatcher struct {
	*queue.Dispatcher
	texts map[string]string // by verification id
}

func (c *codeCatcher) Prepare(m *simgate.Message) error {
	c.texts[m.VerificationID] = m.Text
	return c.Dispatcher.Prepare(m)
}

var codeRE = regexp.MustCompile(`[0-9]{6}`)

// filled is a SQLite database filled through the store, queue and verify,
// with what the test looks for after the copy.
type filled struct {
	path            string
	secret, sealKey []byte
	key             string // an API key, as a client holds it
	keyID           string
	messages        []string // every message's id
	verifications   []string // every verification's id
	pending         string   // a verification whose SMS is still queued
	pendingTo       string
	pendingCode     string
	pendingCall     string // a missed-call verification still pending
	lastInboundID   int64  // deleted after the fill: AUTOINCREMENT never gives it again
}

// oneSIM is the SIM every missed call goes to: the modem m0 with its
// number.
type oneSIM struct{}

const oneSIMNumber = "+4917000000001"

func (oneSIM) PickCallee(to, prefer string) (string, string, error) { return "m0", oneSIMNumber, nil }

// fillSQLite makes a SQLite database with rows in every table, written as
// simgate writes them: the services' rules over the store's methods.
func fillSQLite(t *testing.T) *filled {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := &filled{
		path:    filepath.Join(t.TempDir(), "simgate.db"),
		secret:  bytes.Repeat([]byte("s"), 32),
		sealKey: bytes.Repeat([]byte("k"), 32),
	}
	sq, err := store.Open(ctx, f.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sq.SetWebhookSubscriptions(ctx, simgate.EventTypes))
	must(sq.UpsertModem(ctx, "m0", simgate.ModemIdentity{Manufacturer: "SIMCOM", Model: "SIM7600", IMEI: "860000000000001",
		IMSI: "262010000000001", ICCID: "8949000000000000001"}))
	var rec *simgate.APIKey
	f.key, rec, err = api.NewAPIKey("shop", []simgate.Scope{simgate.ScopeSend, simgate.ScopeRead, simgate.ScopeVerify})
	must(err)
	must(sq.CreateAPIKey(ctx, rec))
	must(sq.TouchAPIKey(ctx, rec.ID))
	f.keyID = rec.ID
	_, old, err := api.NewAPIKey("old", []simgate.Scope{simgate.ScopeRead})
	must(err)
	must(sq.CreateAPIKey(ctx, old))
	must(sq.RevokeAPIKey(ctx, old.ID))

	net := &recorder{}
	q, err := queue.New(queue.Options{Store: sq, Sender: net, SealKey: f.sealKey, NodeID: "host1", RetryBackoff: time.Hour})
	must(err)
	must(q.Open(ctx))
	defer q.Close()
	catcher := &codeCatcher{Dispatcher: q, texts: map[string]string{}}
	vs, err := verify.New(sq, catcher, verify.Options{Secret: f.secret, Callees: oneSIM{}})
	must(err)

	enqueue := func(m *simgate.Message) string {
		t.Helper()
		m.APIKeyID = f.keyID
		must(q.Enqueue(ctx, m))
		f.messages = append(f.messages, m.ID)
		return m.ID
	}
	waitStatus := func(id string, want simgate.MessageStatus) {
		t.Helper()
		for {
			m, err := sq.FindMessage(ctx, id)
			must(err)
			if m.Status == want {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("message %s is %s, not %s", id, m.Status, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	report := func(s sentSMS) {
		t.Helper()
		for _, mr := range s.mrs {
			must(q.HandleReport(ctx, &simgate.StatusReport{ModemID: "m0", MR: mr, Recipient: s.to, TPST: 0,
				SCTS: time.Now().Add(-time.Second), DischargeTime: time.Now()}))
		}
	}

	// Messages: delivered in one part and in three, refused, timed out
	// and then answered late, scheduled, and one with an Idempotency-Key.
	delivered := enqueue(&simgate.Message{To: "+4915100000001", Text: "Your parcel is on its way"})
	waitStatus(delivered, simgate.StatusSent)
	long := enqueue(&simgate.Message{To: "+4915100000001", Text: strings.Repeat("A long message, sent in parts. ", 13)})
	waitStatus(long, simgate.StatusSent)
	for _, s := range net.sent("+4915100000001") {
		report(s)
	}
	waitStatus(delivered, simgate.StatusDelivered)
	waitStatus(long, simgate.StatusDelivered)
	waitStatus(enqueue(&simgate.Message{To: refusedNumber, Text: "Nobody here"}), simgate.StatusFailed)
	late := enqueue(&simgate.Message{To: timeoutNumber, Text: "Did it go?"})
	waitStatus(late, simgate.StatusUnknown)
	must(q.HandleLateSubmit(ctx, &simgate.LateSubmit{ModemID: "m0", To: timeoutNumber, Part: 0, MR: 250}))
	waitStatus(late, simgate.StatusSent)
	waitStatus(enqueue(&simgate.Message{To: "+4915100000004", Text: "Tomorrow", SendAt: time.Now().Add(time.Hour)}),
		simgate.StatusScheduled)
	keyed := enqueue(&simgate.Message{To: "+4915100000005", Text: "Once only", IdempotencyKey: "order-17"})
	waitStatus(keyed, simgate.StatusSent)
	must(q.HandleReport(ctx, &simgate.StatusReport{ModemID: "m0", MR: 199, Recipient: "+4915199999999", TPST: 0x40}))

	// A service with settings of its own, and a key limited to it.
	shop := &simgate.Service{FriendlyName: "Shop", CodeLength: 8, TTL: 5 * time.Minute, CustomCodeAllowed: true,
		Templates: map[string]string{"de": "Dein {app}-Code: {code}"}}
	must(vs.CreateService(ctx, shop))
	_, limited, err := api.NewAPIKey("shop app", []simgate.Scope{simgate.ScopeVerify})
	must(err)
	limited.Services = []string{shop.ID, simgate.DefaultServiceID}
	must(sq.CreateAPIKey(ctx, limited))

	// Verifications: approved after a wrong code, canceled (in the
	// service).
	for _, to := range []string{"+4917600000001", "+4917600000002"} {
		v := &simgate.Verification{To: to, APIKeyID: f.keyID, Reference: "signup"}
		if to == "+4917600000002" {
			v.ServiceID = shop.ID
		}
		m, err := vs.Start(ctx, v, 0)
		must(err)
		f.verifications = append(f.verifications, v.ID)
		f.messages = append(f.messages, m.ID)
		waitStatus(m.ID, simgate.StatusSent)
		if to == "+4917600000001" {
			code := codeRE.FindString(catcher.texts[v.ID])
			wrong := code[:5] + string('0'+(code[5]-'0'+1)%10)
			if got, err := vs.Check(ctx, simgate.VerificationRef{ID: v.ID}, wrong); err != nil || got.Status != simgate.VerificationPending {
				t.Fatalf("a wrong code: %+v, %v", got, err)
			}
			if got, err := vs.Check(ctx, simgate.VerificationRef{ID: v.ID}, code); err != nil || got.Status != simgate.VerificationApproved {
				t.Fatalf("check: %+v, %v", got, err)
			}
		} else if _, err := vs.Cancel(ctx, simgate.VerificationRef{ID: v.ID}); err != nil {
			t.Fatal(err)
		}
	}
	// Verifications by missed call: one approved by its call, one pending.
	for _, to := range []string{"+4917600000004", "+4917600000005"} {
		v := &simgate.Verification{To: to, APIKeyID: f.keyID, Channel: simgate.ChannelMissedCall}
		if m, err := vs.Start(ctx, v, 0); err != nil || m != nil {
			t.Fatalf("a missed-call verification: %v, SMS %+v", err, m)
		}
		f.verifications = append(f.verifications, v.ID)
		if to == "+4917600000005" {
			f.pendingCall = v.ID
		} else if ok, err := vs.HandleCall(ctx, &simgate.InboundCall{ModemID: "m0", FromE164: to}); err != nil || !ok {
			t.Fatalf("the call of %s: %v, %v", to, ok, err)
		}
	}
	must(q.Close())

	// A verification whose SMS waits in the queue, its code sealed: no
	// dispatcher runs.
	idle, err := queue.New(queue.Options{Store: sq, Sender: net, SealKey: f.sealKey, NodeID: "host1"})
	must(err)
	idleCatcher := &codeCatcher{Dispatcher: idle, texts: map[string]string{}}
	idleVerify, err := verify.New(sq, idleCatcher, verify.Options{Secret: f.secret})
	must(err)
	v := &simgate.Verification{To: "+4917600000003", APIKeyID: f.keyID}
	m, err := idleVerify.Start(ctx, v, 0)
	must(err)
	f.pending, f.pendingTo, f.pendingCode = v.ID, v.To, codeRE.FindString(idleCatcher.texts[v.ID])
	f.verifications = append(f.verifications, v.ID)
	f.messages = append(f.messages, m.ID)

	// What comes in, and the rest.
	must(idle.HandleInbound(ctx, &simgate.InboundMessage{ModemID: "m0", From: "+4915100000001", Text: "Thanks!",
		SCTS: time.Now().Add(-time.Minute)}))
	must(idle.HandleInbound(ctx, &simgate.InboundMessage{ModemID: "m0", From: "+4915100000005", Text: "STOP"}))
	data := &simgate.InboundMessage{ModemID: "m0", From: "+4915100000006", Kind: simgate.InboundData, Port: 9200,
		Data: []byte{0, 1, 2, 0xff}}
	must(idle.HandleInbound(ctx, data))
	f.lastInboundID = data.ID
	must(sq.CreateInboundCall(ctx, &simgate.InboundCall{ModemID: "m0", From: "+4915100000007", Rejected: true}))
	must(sq.CreateAlert(ctx, "check_failures", "+4917600000001", "a wrong code"))
	hash := sha256.Sum256([]byte("request"))
	if _, _, _, _, err := sq.ReserveIdempotencyKey(ctx, f.keyID, "order-18", hash[:], 24*time.Hour, time.Minute); err != nil {
		t.Fatal(err)
	}
	must(sq.CompleteIdempotencyKey(ctx, f.keyID, "order-18", 201, []byte(`{"id":"x"}`)))
	token := sha256.Sum256([]byte("session token"))
	must(sq.CreateConsoleSession(ctx, token[:], f.keyID, "csrf-token", time.Hour))
	fp := sha256.Sum256([]byte("a PIN"))
	must(sq.RecordRejectedPIN(ctx, "8949000000000000001", fp[:]))
	if _, err := sq.TakeBudget(ctx, 1, []simgate.Budget{{Key: "global:hour", Limit: 100, Window: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	must(sq.RecordSample(ctx, simgate.Sample{Signal: map[string]int{"m0": -71}, QueueDepth: 2, OldestQueuedAge: time.Second}))
	amount := 4.5
	must(sq.RecordBalance(ctx, "m0", time.Now(), &amount, "Balance: 4.50 EUR"))
	must(sq.RecordBalance(ctx, "m0", time.Now(), nil, "unreadable"))
	if _, err := sq.RecordBalanceLow(ctx, map[string]any{"modem_id": "m0", "amount": 4.5}); err != nil {
		t.Fatal(err)
	}
	if _, err := sq.RecordModemState(ctx, "m0", true, map[string]any{"modem_id": "m0"}); err != nil {
		t.Fatal(err)
	}
	subs := map[string][]string{}
	for _, typ := range simgate.EventTypes {
		subs[typ] = []string{"crm", "audit"}
	}
	if _, err := sq.FanOutWebhookEvents(ctx, subs, 1000); err != nil {
		t.Fatal(err)
	}
	claimed, err := sq.ClaimWebhookDeliveries(ctx, 3, time.Minute)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d deliveries, %v", len(claimed), err)
	}
	must(sq.FinishWebhookDeliveries(ctx, []simgate.WebhookOutcome{
		{EventID: claimed[0].Event.ID, Endpoint: claimed[0].Delivery.Endpoint, Status: simgate.DeliveryDelivered},
		{EventID: claimed[1].Event.ID, Endpoint: claimed[1].Delivery.Endpoint, Status: simgate.DeliveryFailed, Error: "410 Gone"},
	}))
	must(sq.Ping(ctx))
	// A new event after the fan-out: one waits in the outbox.
	must(sq.CreateAlert(ctx, "velocity", "+4917600000001", ""))

	empty := map[string]int64{}
	must(sq.ReadSnapshot(ctx, func(s *sql.Tx) error {
		for _, name := range importTableNames() {
			var n int64
			if err := s.QueryRowContext(ctx, `SELECT count(*) FROM `+name).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				empty[name] = n
			}
		}
		return nil
	}))
	if len(empty) > 0 {
		t.Fatalf("the fill wrote no row in %v: write one, so that the copy of every table is tested", slices.Sorted(maps.Keys(empty)))
	}
	return f
}

// rawSQLite runs stmts on the closed SQLite database at path, as a person
// with the sqlite3 shell would: what simgate never writes.
func rawSQLite(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // a PRAGMA holds for its connection
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// openBoth opens the SQLite database at path and a new PostgreSQL
// database, with the schemas of this build.
func openBoth(t *testing.T, path string) (*store.DB, *DB, string) {
	t.Helper()
	dsn := newDatabase(t)
	ctx := context.Background()
	sq, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	pg, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return sq, pg, dsn
}

// A database simgate wrote on SQLite, copied, is the same on PostgreSQL,
// row by row and value by value, and simgate goes on with it there: the API
// key authenticates, the queued verification SMS (its code sealed) is sent
// and its code approves the verification, every message reads back as it
// did, and new rows take new ids. A second copy into it is refused.
func TestImportSQLite(t *testing.T) {
	f := fillSQLite(t)
	// An id AUTOINCREMENT gave out stays given, also when its row is gone.
	rawSQLite(t, f.path, fmt.Sprintf(`DELETE FROM inbound_messages WHERE id = %d`, f.lastInboundID))
	sq, pg, dsn := openBoth(t, f.path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	counts, err := pg.ImportSQLite(ctx, sq)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range counts {
		names = append(names, c.Table)
	}
	if want := slices.Sorted(slices.Values(importTableNames())); !slices.Equal(names, want) {
		t.Fatalf("counts of %v, want every table %v", names, want)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range counts {
		if c.Table == "status_counts" {
			continue // a log of changes on PostgreSQL: its sums are compared below (StatusCounts)
		}
		sqliteRows, pgRows := readTable(t, sq, conn, c.Table)
		if int64(len(sqliteRows)) != c.Rows || int64(len(pgRows)) != c.Rows {
			t.Errorf("%s: %d rows reported, %d in SQLite, %d in PostgreSQL", c.Table, c.Rows, len(sqliteRows), len(pgRows))
		}
		if !slices.Equal(sqliteRows, pgRows) {
			t.Errorf("%s differs:\nSQLite:\n%s\nPostgreSQL:\n%s", c.Table, strings.Join(sqliteRows, "\n"), strings.Join(pgRows, "\n"))
		}
	}

	// The stores read the same records.
	for _, id := range f.messages {
		want, err := sq.FindMessage(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := pg.FindMessage(ctx, id); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("message %s on PostgreSQL:\n%+v, %v\nwant\n%+v", id, got, err, want)
		}
	}
	for _, id := range f.verifications {
		want, wantStatus, err := sq.GetVerification(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, status, err := pg.GetVerification(ctx, id); err != nil || !reflect.DeepEqual(got, want) || status != wantStatus {
			t.Errorf("verification %s on PostgreSQL:\n%+v %s, %v\nwant\n%+v %s", id, got, status, err, want, wantStatus)
		}
	}
	sameOnBoth(t, "status counts", func(s readStore) (any, error) {
		m, v, err := s.StatusCounts(ctx)
		return []any{m, v}, err
	}, sq, pg)
	sameOnBoth(t, "API keys", func(s readStore) (any, error) { return s.ListAPIKeys(ctx) }, sq, pg)
	sameOnBoth(t, "services", func(s readStore) (any, error) { return s.ListServices(ctx) }, sq, pg)
	sameOnBoth(t, "inbound messages", func(s readStore) (any, error) { return s.ListInboundMessages(ctx, 0, 100) }, sq, pg)
	sameOnBoth(t, "alerts", func(s readStore) (any, error) { return s.ListAlerts(ctx, 0, 100) }, sq, pg)
	sameOnBoth(t, "modem hours", func(s readStore) (any, error) { return s.ModemHours(ctx, time.Time{}) }, sq, pg)
	sameOnBoth(t, "balances", func(s readStore) (any, error) { return s.Balances(ctx, time.Time{}) }, sq, pg)
	sameOnBoth(t, "webhook deliveries", func(s readStore) (any, error) {
		ds, _, err := s.ListWebhookDeliveries(ctx, simgate.DeliveryFilter{Limit: 100})
		return ds, err
	}, sq, pg)

	// The API key authenticates: the store finds it by its hash.
	hash := sha256.Sum256([]byte(f.key))
	if k, err := pg.FindAPIKeyByHash(ctx, hash[:]); err != nil || k.ID != f.keyID {
		t.Fatalf("the API key on PostgreSQL: %+v, %v", k, err)
	}

	// The queued verification SMS goes out on PostgreSQL with its code,
	// which the dispatcher unseals with the same key, and the code
	// approves the verification.
	net := &recorder{}
	q, err := queue.New(queue.Options{Store: pg, Sender: net, SealKey: f.sealKey, NodeID: "host1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for len(net.sent(f.pendingTo)) == 0 {
		if ctx.Err() != nil {
			t.Fatal("the queued verification SMS was not sent from PostgreSQL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := net.sent(f.pendingTo)[0].text; !strings.Contains(got, f.pendingCode) {
		t.Fatalf("the verification SMS sent from PostgreSQL is %q, without its code", got)
	}
	vs, err := verify.New(pg, q, verify.Options{Secret: f.secret, Callees: oneSIM{}})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := vs.Check(ctx, simgate.VerificationRef{ID: f.pending}, f.pendingCode); err != nil || v.Status != simgate.VerificationApproved {
		t.Fatalf("check on PostgreSQL: %+v, %v", v, err)
	}
	// The pending missed-call verification is approved by its call there.
	if ok, err := vs.HandleCall(ctx, &simgate.InboundCall{ModemID: "m0", FromE164: "+4917600000005"}); err != nil || !ok {
		t.Fatalf("the call on PostgreSQL: %v, %v", ok, err)
	}
	if v, err := vs.Get(ctx, simgate.VerificationRef{ID: f.pendingCall}); err != nil || v.Status != simgate.VerificationApproved || v.CallTo != oneSIMNumber {
		t.Fatalf("the missed-call verification on PostgreSQL: %+v, %v", v, err)
	}

	// New rows take ids after the copied ones (after the deleted
	// inbound message's too), and a new message goes out.
	in := &simgate.InboundMessage{ModemID: "m0", From: "+4915100000001", Text: "again"}
	if err := pg.CreateInboundMessage(ctx, in); err != nil || in.ID <= f.lastInboundID {
		t.Fatalf("a new inbound message has id %d (%v), want more than %d", in.ID, err, f.lastInboundID)
	}
	alerts, err := pg.ListAlerts(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.CreateAlert(ctx, "test", "after the copy", ""); err != nil {
		t.Fatal(err)
	}
	if after, err := pg.ListAlerts(ctx, alerts[len(alerts)-1].ID, 10); err != nil || len(after) != 1 {
		t.Fatalf("alerts after the copied ones: %+v, %v", after, err)
	}
	m := &simgate.Message{To: "+4915100000008", Text: "From PostgreSQL"}
	if err := q.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	for len(net.sent(m.To)) == 0 {
		if ctx.Err() != nil {
			t.Fatal("a new message was not sent from PostgreSQL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := pg.RecordBalance(ctx, "m0", time.Now(), nil, "later"); err != nil {
		t.Fatal(err)
	}

	if _, err := pg.ImportSQLite(ctx, sq); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "api_keys") {
		t.Fatalf("a second copy: %v, want ErrNotEmpty naming the tables", err)
	}
}

// readStore is what TestImportSQLite reads from both stores.
type readStore interface {
	StatusCounts(ctx context.Context) (map[simgate.MessageStatus]int, map[simgate.VerificationStatus]int, error)
	ListAPIKeys(ctx context.Context) ([]*simgate.APIKey, error)
	ListServices(ctx context.Context) ([]*simgate.Service, error)
	ListInboundMessages(ctx context.Context, afterID int64, limit int) ([]*simgate.InboundMessage, error)
	ListAlerts(ctx context.Context, afterID int64, limit int) ([]*simgate.Alert, error)
	ModemHours(ctx context.Context, since time.Time) ([]simgate.ModemHour, error)
	Balances(ctx context.Context, since time.Time) ([]simgate.BalanceReading, error)
	ListWebhookDeliveries(ctx context.Context, f simgate.DeliveryFilter) ([]*simgate.WebhookDelivery, string, error)
}

// sameOnBoth fails the test when read gives different results on the two
// stores, or none.
func sameOnBoth(t *testing.T, what string, read func(readStore) (any, error), sq, pg readStore) {
	t.Helper()
	want, err := read(sq)
	if err != nil {
		t.Fatalf("%s on SQLite: %v", what, err)
	}
	got, err := read(pg)
	if err != nil {
		t.Fatalf("%s on PostgreSQL: %v", what, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s on PostgreSQL:\n%+v\nwant\n%+v", what, got, want)
	}
}

// readTable returns the rows of table in both databases, each as one line
// of its values by PostgreSQL's columns (rowid read from SQLite's rowid),
// in one order: integers of either size alike, text quoted, blobs in hex.
func readTable(t *testing.T, sq *store.DB, conn *pgx.Conn, table string) (inSQLite, inPG []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `
		SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(cols) == 0 {
		t.Fatalf("columns of %s: %v, %v", table, cols, err)
	}
	list := strings.Join(cols, ", ")
	line := func(vals []any) string {
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case int32:
				parts[i] = fmt.Sprint(int64(v))
			case []byte:
				parts[i] = fmt.Sprintf("x'%x'", v)
			case string:
				parts[i] = fmt.Sprintf("%q", v)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		return strings.Join(parts, " | ")
	}
	if rows, err = conn.Query(ctx, `SELECT `+list+` FROM `+table); err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		inPG = append(inPG, line(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := sq.ReadSnapshot(ctx, func(s *sql.Tx) error {
		rows, err := s.QueryContext(ctx, `SELECT `+list+` FROM `+table)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]any, len(cols))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			inSQLite = append(inSQLite, line(vals))
		}
		return rows.Err()
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(inSQLite)
	slices.Sort(inPG)
	return inSQLite, inPG
}

// A value PostgreSQL cannot hold fails the copy with an error that names
// its table, row and column (or the constraint it breaks, which PostgreSQL
// finds), and leaves the database empty: the rows copied before it are
// rolled back with it.
func TestImportSQLiteRefusesWhatPostgreSQLCannotHold(t *testing.T) {
	for name, c := range map[string]struct {
		set  string
		want []string
	}{
		"not UTF-8": {`text = CAST(x'41ff42' AS TEXT)`, []string{"column text", "not valid UTF-8"}},
		"NUL":       {`text = CAST(x'410042' AS TEXT)`, []string{"column text", "NUL"}},
		// Written past SQLite's CHECK, which PostgreSQL has too.
		"a CHECK": {`parts = 0`, []string{"inbound_messages_parts_check"}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "simgate.db")
			ctx := context.Background()
			sq, err := store.Open(ctx, path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, rec, _ := api.NewAPIKey("shop", []simgate.Scope{simgate.ScopeRead})
			if err := sq.CreateAPIKey(ctx, rec); err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{"first", "second", "third"} {
				if err := sq.CreateInboundMessage(ctx, &simgate.InboundMessage{ModemID: "m0", From: "+4915100000001", Text: text}); err != nil {
					t.Fatal(err)
				}
			}
			sq.Close()
			rawSQLite(t, path, `PRAGMA ignore_check_constraints = ON`, `UPDATE inbound_messages SET `+c.set+` WHERE id = 2`)
			sq, pg, _ := openBoth(t, path)
			_, err = pg.ImportSQLite(ctx, sq)
			if err == nil {
				t.Fatal("the copy succeeded")
			}
			for _, want := range append([]string{"table inbound_messages", "row rowid 2"}, c.want...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			var n int
			if err := pg.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM inbound_messages)`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%d rows left in PostgreSQL after the failed copy (%v)", n, err)
			}
		})
	}
}

// status_counts, which PostgreSQL's triggers fill from the copied rows, is
// checked against SQLite's: counts that do not match SQLite's rows fail the
// copy.
func TestImportSQLiteChecksStatusCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "simgate.db")
	ctx := context.Background()
	sq, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(queue.Options{Store: sq, Sender: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, &simgate.Message{To: "+4915100000001", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	sq.Close()
	rawSQLite(t, path, `UPDATE status_counts SET n = n + 1 WHERE entity = 'message' AND status = 'queued'`)
	sq, pg, _ := openBoth(t, path)
	_, err = pg.ImportSQLite(ctx, sq)
	if err == nil || !strings.Contains(err.Error(), "status_counts") || !strings.Contains(err.Error(), "message queued: 2 in SQLite, 1 counted") {
		t.Fatalf("copy of wrong counts: %v", err)
	}
}
