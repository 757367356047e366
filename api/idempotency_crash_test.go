package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
)

// crashPoint says where the next request dies as under SIGKILL: the handler
// aborts (http.ErrAbortHandler), so nothing after that point runs and the
// client gets no response.
type crashPoint struct {
	before atomic.Bool // before the message is stored
	after  atomic.Bool // after it is committed, before the response is stored
}

func (c *crashPoint) run(f func() error) error {
	if c.before.Swap(false) {
		panic(http.ErrAbortHandler)
	}
	err := f()
	if c.after.Swap(false) {
		panic(http.ErrAbortHandler)
	}
	return err
}

// crashingMessages is the real dispatcher (over the real store), dying at
// its crashPoint.
type crashingMessages struct {
	api.MessageService
	crash *crashPoint
}

func (c crashingMessages) Enqueue(ctx context.Context, m *simgate.Message) error {
	return c.crash.run(func() error { return c.MessageService.Enqueue(ctx, m) })
}

// crashingVerify is the real verification service, dying at its crashPoint.
type crashingVerify struct {
	api.VerifyService
	crash *crashPoint
}

func (c crashingVerify) Start(ctx context.Context, v *simgate.Verification, ttl time.Duration) (m *simgate.Message, err error) {
	err = c.crash.run(func() error {
		m, err = c.VerifyService.Start(ctx, v, ttl)
		return err
	})
	return m, err
}

// newCrashEnv is newEnv whose POST /v1/messages and /v1/verifications die
// where crash says, with the real dispatcher (not opened: nothing is sent)
// storing the messages.
func newCrashEnv(t *testing.T) (*env, *crashPoint) {
	crash := &crashPoint{}
	e := newEnv(t, envOpts{api: func(o *api.Options) {
		d, err := queue.New(queue.Options{Store: o.Idempotency.(*store.DB), Sender: &handset{}, Now: o.Now, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		o.Messages = crashingMessages{MessageService: d, crash: crash}
		o.Verify = crashingVerify{VerifyService: o.Verify, crash: crash}
	}})
	return e, crash
}

// post sends a request that may die with the server: ok is false when no
// response came back.
func (e *env) post(path, key, idemKey string, body any) (r resp, ok bool) {
	e.t.Helper()
	j, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", e.ts.URL+path, bytes.NewReader(j))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		return resp{}, false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}, true
}

// storedMessages counts the messages in the database.
func (e *env) storedMessages() []*simgate.Message {
	e.t.Helper()
	ms, _, err := e.db.ListMessages(context.Background(), simgate.MessageFilter{Limit: store.MaxMessageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

// TestIdempotencyAcrossCrash: a request with an Idempotency-Key dies (as
// under SIGKILL) after its message was committed but before its response was
// stored, or before anything was stored. The key must not stay in progress
// for the 24 h it is remembered: once the reservation's lease has run out,
// a retry answers with the message the dead request created, or runs once
// when it created none; never a second message.
func TestIdempotencyAcrossCrash(t *testing.T) {
	const lease = 30 * time.Second // api.Options.IdempotencyLease's default
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		verify     bool
	}{
		{"message", "/v1/messages", map[string]any{"to": "+4915123456780", "text": "hello"}, false},
		{"verification", "/v1/verifications", map[string]any{"to": "+4915123456781"}, true},
	} {
		t.Run(tc.name+"/created", func(t *testing.T) {
			e, crash := newCrashEnv(t)
			key := e.key(simgate.ScopeSend, simgate.ScopeVerify, simgate.ScopeRead)
			crash.after.Store(true)
			if r, ok := e.post(tc.path, key, "k1", tc.body); ok {
				t.Fatalf("the crashing request answered: %d %s", r.status, r.body)
			}
			ms := e.storedMessages()
			if got, want := len(ms), 1; got != want {
				t.Fatalf("%d messages after the crash, want %d", got, want)
			}
			r, _ := e.post(tc.path, key, "k1", tc.body)
			wantStatus(t, r, http.StatusConflict) // within the lease: it may still be running
			e.clock.Add(lease + time.Second)
			r, _ = e.post(tc.path, key, "k1", tc.body)
			wantStatus(t, r, http.StatusCreated)
			if got := r.header.Get("Idempotent-Replayed"); got != "true" {
				t.Errorf("Idempotent-Replayed = %q, want true", got)
			}
			got := r.json(t)
			id := got["id"]
			if tc.verify {
				id = got["message_id"]
				if got["id"] != ms[0].VerificationID {
					t.Errorf("recovered verification %v, want %s", got["id"], ms[0].VerificationID)
				}
			}
			if id != ms[0].ID {
				t.Errorf("recovered message %v, want %s", id, ms[0].ID)
			}
			if got, want := len(e.storedMessages()), 1; got != want {
				t.Fatalf("%d messages after the retry, want %d", got, want)
			}
			// The recovered response is stored: later retries replay it.
			again, _ := e.post(tc.path, key, "k1", tc.body)
			wantStatus(t, again, http.StatusCreated)
			if !bytes.Equal(again.body, r.body) || again.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("replay = %s, want %s", again.body, r.body)
			}
			if got, want := len(e.storedMessages()), 1; got != want {
				t.Fatalf("%d messages after the replay, want %d", got, want)
			}
		})
		t.Run(tc.name+"/nothing", func(t *testing.T) {
			e, crash := newCrashEnv(t)
			key := e.key(simgate.ScopeSend, simgate.ScopeVerify, simgate.ScopeRead)
			crash.before.Store(true)
			if _, ok := e.post(tc.path, key, "k1", tc.body); ok {
				t.Fatal("the crashing request answered")
			}
			if got := len(e.storedMessages()); got != 0 {
				t.Fatalf("%d messages after a crash before storing", got)
			}
			r, _ := e.post(tc.path, key, "k1", tc.body)
			wantStatus(t, r, http.StatusConflict)
			e.clock.Add(lease + time.Second)
			r, _ = e.post(tc.path, key, "k1", tc.body)
			wantStatus(t, r, http.StatusCreated)
			if got := r.header.Get("Idempotent-Replayed"); got != "" {
				t.Errorf("Idempotent-Replayed = %q on the run after the lease, want none", got)
			}
			again, _ := e.post(tc.path, key, "k1", tc.body)
			wantStatus(t, again, http.StatusCreated)
			if !bytes.Equal(again.body, r.body) {
				t.Errorf("replay = %s, want %s", again.body, r.body)
			}
			if got, want := len(e.storedMessages()), 1; got != want {
				t.Fatalf("%d messages after the retries, want %d", got, want)
			}
		})
	}
}
