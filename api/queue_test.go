package api_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/api"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/verify"
)

var _ api.MessageService = (*queue.Dispatcher)(nil)
var _ verify.Enqueuer = (*queue.Dispatcher)(nil)

// handset is a Sender that delivers every SMS to its recipient's inbox.
type handset struct {
	mu    sync.Mutex
	inbox map[string][]string
	got   chan struct{}
}

func (h *handset) Send(ctx context.Context, req simgate.SendRequest) (simgate.Receipt, error) {
	h.mu.Lock()
	h.inbox[req.To] = append(h.inbox[req.To], req.Text)
	h.mu.Unlock()
	h.got <- struct{}{}
	return simgate.Receipt{ModemID: "modem0", MRs: []int{1}, SentAt: time.Now()}, nil
}

// code waits for the next SMS to number and reads the code in it.
func (h *handset) code(t *testing.T, number string) string {
	t.Helper()
	select {
	case <-h.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no SMS arrived")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	texts := h.inbox[number]
	m := codeRE.FindStringSubmatch(texts[len(texts)-1])
	if m == nil {
		t.Fatalf("no code in %q", texts[len(texts)-1])
	}
	return m[1]
}

// newQueueEnv is newEnv with the real dispatcher over the same store, and a
// handset at the end of it instead of modems.
func newQueueEnv(t *testing.T) (*env, *handset) {
	h := &handset{inbox: map[string][]string{}, got: make(chan struct{}, 100)}
	e := newEnv(t, envOpts{})
	d, err := queue.New(queue.Options{Store: e.db, Sender: h, Now: e.clock.Now, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if e.verify, err = verify.New(e.db, d, verify.Options{Secret: []byte(strings.Repeat("s", 32)), Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Options{Keys: e.db, Verify: e.verify, Messages: d, Inbox: e.db, Idempotency: e.db,
		Alerts: e.db, DB: e.db, Numbers: simgate.NumberPolicy{AllowAllCountries: true}, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.ts.Config.Handler = srv.Handler()
	return e, h
}

func TestRealQueueVerification(t *testing.T) {
	e, h := newQueueEnv(t)
	key := e.key(simgate.ScopeVerify, simgate.ScopeSend, simgate.ScopeRead)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number})
	wantStatus(t, r, http.StatusCreated)
	v := r.json(t)
	code := h.code(t, number)

	r = e.do("GET", "/v1/verifications/"+v["id"].(string), key, nil)
	if got := r.json(t)["message_id"]; got != v["message_id"] {
		t.Fatalf("message_id = %v, want %v", got, v["message_id"])
	}
	r = e.do("GET", "/v1/messages/"+v["message_id"].(string), key, nil)
	wantStatus(t, r, http.StatusOK)
	if m := r.json(t); m["text"] != nil || m["verification_id"] != v["id"] {
		t.Fatalf("verification SMS shown with its text: %s", r.body)
	}
	r = e.do("POST", "/v1/verifications/check", key, map[string]any{"id": v["id"], "code": code})
	if got := r.json(t)["valid"]; got != true {
		t.Fatalf("check: %s", r.body)
	}

	r = e.do("POST", "/v1/messages", key, map[string]any{"to": "+4915123456780", "text": "hi", "priority": "high"})
	wantStatus(t, r, http.StatusCreated)
	select {
	case <-h.got:
	case <-time.After(10 * time.Second):
		t.Fatal("the message never arrived")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := h.inbox["+4915123456780"]; len(got) != 1 || got[0] != "hi" {
		t.Fatalf("handset got %q", got)
	}
}

// TestRealQueueCodeInDatabase checks that the code reaches the database
// file neither while the SMS waits in the queue (the text is sealed) nor
// after it was sent (the sealed text is erased).
func TestRealQueueCodeInDatabase(t *testing.T) {
	e, h := newQueueEnv(t)
	key := e.key(simgate.ScopeVerify)
	r := e.do("POST", "/v1/verifications", key, map[string]any{"to": number, "code_length": 10})
	wantStatus(t, r, http.StatusCreated)
	vid, _ := r.json(t)["id"].(string)
	code := h.code(t, number)
	e.db.Ping(context.Background())
	var found []string
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(e.dbPath + suffix)
		if strings.Contains(string(b), code) {
			found = append(found, "file"+suffix)
		}
	}
	if len(found) > 0 {
		t.Fatalf("the code is in %v", found)
	}

	// Once sent, not even the sealed text is kept.
	mid, _ := e.do("GET", "/v1/verifications/"+vid, key, nil).json(t)["message_id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := e.db.FindMessage(context.Background(), mid)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != simgate.StatusSending && m.Status != simgate.StatusQueued {
			if m.Text != "" {
				t.Fatalf("message %s is %s and still holds its text %q", m.ID, m.Status, m.Text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s still %s", m.ID, m.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
