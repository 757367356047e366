package verify_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/sms/encoding/gsm7"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store"
	"github.com/simgate/simgate/verify"
)

var (
	_ verify.Store    = (*store.DB)(nil)
	_ verify.Enqueuer = (*queue.Dispatcher)(nil)
)

// TestDefaultTemplateOneSMS: the longest default English text, with a
// 10-digit code, the 24 h TTL and a long app name, is one GSM-7 part.
func TestDefaultTemplateOneSMS(t *testing.T) {
	for _, c := range []struct {
		code, app string
		ttl       time.Duration
	}{
		{"123456", "simgate", 10 * time.Minute},
		{"1234567890", "simgate", 24 * time.Hour},
		{"1234567890", strings.Repeat("A", 64), 24 * time.Hour},
	} {
		text := verify.Render(verify.DefaultTemplate, c.code, c.app, c.ttl)
		septets, err := gsm7.Encode([]byte(text))
		if err != nil {
			t.Fatalf("%q is not GSM-7: %v", text, err)
		}
		if len(septets) > 160 {
			t.Fatalf("%q takes %d septets, more than one SMS (160)", text, len(septets))
		}
	}
	if got, want := verify.Render(verify.DefaultTemplate, "042", "Acme", 90*time.Second),
		"Your Acme code is 042. It expires in 2 min. Do not share it."; got != want {
		t.Fatalf("Render = %q, want %q", got, want)
	}
	// "min" reads right for one minute too.
	if got, want := verify.Render(verify.DefaultTemplate, "042", "Acme", time.Minute),
		"Your Acme code is 042. It expires in 1 min. Do not share it."; got != want {
		t.Fatalf("Render = %q, want %q", got, want)
	}
}

func TestNewCode(t *testing.T) {
	var counts [10]int
	for range 2000 {
		c, err := verify.NewCode(6)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 6 {
			t.Fatalf("code %q is not 6 digits", c)
		}
		for _, d := range c {
			counts[d-'0']++
		}
	}
	// 12 000 digits, 1 200 expected each; 5 sigma is about 165.
	for d, n := range counts {
		if n < 1000 || n > 1400 {
			t.Fatalf("digit %d drawn %d times of 12000: %v", d, n, counts)
		}
	}
	for _, n := range []int{3, 11} {
		if _, err := verify.NewCode(n); err == nil {
			t.Fatalf("NewCode(%d) succeeded", n)
		}
	}
}

type nopSender struct{}

func (nopSender) Send(context.Context, simgate.SendRequest) (simgate.Receipt, error) {
	return simgate.Receipt{}, nil
}

// TestSettleCancelsSMS: Cancel and Approve settle a pending verification
// without a code and cancel its queued SMS; a second settle is a conflict,
// and a verification of a service the caller may not use is not found. It
// uses the real queue (not opened, so nothing is sent) over the real store.
func TestSettleCancelsSMS(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.New(queue.Options{Store: db, Sender: nopSender{}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.New(db, q, verify.Options{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		settle func(context.Context, simgate.VerificationRef) (*simgate.Verification, error)
		want   simgate.VerificationStatus
	}{
		{"cancel", s.Cancel, simgate.VerificationCanceled},
		{"approve", s.Approve, simgate.VerificationApproved},
	} {
		v := &simgate.Verification{To: "+4915123456789"}
		m, err := s.Start(ctx, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Get(ctx, simgate.VerificationRef{ID: v.ID}); err != nil || got.MessageID != m.ID {
			t.Fatalf("%s: Get: %+v, %v; want message %s", c.name, got, err, m.ID)
		}
		other := simgate.VerificationRef{ID: v.ID, Services: []string{simgate.NewServiceID()}}
		if _, err := c.settle(ctx, other); simgate.ErrorCode(err) != simgate.CodeNotFound {
			t.Fatalf("%s by a key of another service: %v, want not found", c.name, err)
		}
		got, err := c.settle(ctx, simgate.VerificationRef{ID: v.ID})
		if err != nil || got.Status != c.want || got.ApprovedAt.IsZero() != (c.want != simgate.VerificationApproved) {
			t.Fatalf("%s: %+v, %v; want %s", c.name, got, err, c.want)
		}
		if got, err := s.Get(ctx, simgate.VerificationRef{ID: v.ID}); err != nil || got.Status != c.want {
			t.Fatalf("%s: Get after: %+v, %v; want %s", c.name, got, err, c.want)
		}
		if msg, err := q.Message(ctx, m.ID); err != nil || msg.Status != simgate.StatusCanceled {
			t.Fatalf("%s: SMS %+v, %v; want canceled", c.name, msg, err)
		}
		if _, err := c.settle(ctx, simgate.VerificationRef{ID: v.ID}); simgate.ErrorCode(err) != simgate.CodeConflict {
			t.Fatalf("%s twice: %v, want conflict", c.name, err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	for name, o := range map[string]verify.Options{
		"short secret":   {Secret: []byte("short")},
		"code length":    {Secret: make([]byte, 32), CodeLength: 11},
		"ttl":            {Secret: make([]byte, 32), TTL: 25 * time.Hour},
		"no code":        {Secret: make([]byte, 32), Templates: map[string]string{"en": "hello"}},
		"default locale": {Secret: make([]byte, 32), DefaultLocale: "de"},
		"short default":  {Secret: make([]byte, 32), CodeLength: 4},
		"min below 4":    {Secret: make([]byte, 32), MinCodeLength: 3, CodeLength: 6},
		"ttl over max":   {Secret: make([]byte, 32), TTL: 15 * time.Minute},
		"max ttl":        {Secret: make([]byte, 32), MaxTTL: 25 * time.Hour},
		"app name text":  {Secret: make([]byte, 32), AppName: "Shop\nYour code is 0000"},
		"app names text": {Secret: make([]byte, 32), AppNames: map[string]string{"shop": "Shop\u202e"}},
		"app names key":  {Secret: make([]byte, 32), AppNames: map[string]string{"my shop": "Shop"}},
		"app names long": {Secret: make([]byte, 32), AppNames: map[string]string{"shop": strings.Repeat("x", 65)}},
	} {
		if _, err := verify.New(nil, nil, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, o := range map[string]verify.Options{
		"defaults":      {Secret: make([]byte, 32)},
		"allowed short": {Secret: make([]byte, 32), MinCodeLength: 4, CodeLength: 4},
		"allowed long":  {Secret: make([]byte, 32), MaxTTL: time.Hour, TTL: time.Hour},
		"short max ttl": {Secret: make([]byte, 32), MaxTTL: 5 * time.Minute},
		"app names":     {Secret: make([]byte, 32), AppNames: map[string]string{"shop": "Acme Shop", "bank-2.eu_x": "Acme Bank"}},
		"unicode name":  {Secret: make([]byte, 32), AppName: "Café Zürich"},
	} {
		if _, err := verify.New(nil, nil, o); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestStartTakesTextFromOptions: Start picks a configured app name by key
// and refuses any other app_name, short codes and long lifetimes before
// anything is stored.
func TestStartTakesTextFromOptions(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.New(queue.Options{Store: db, Sender: nopSender{}}) // not opened: nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.New(db, q, verify.Options{Secret: []byte(strings.Repeat("k", 32)), AppName: "Acme",
		AppNames: map[string]string{"shop": "Acme Shop"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    simgate.Verification
		ttl  time.Duration
		want string
	}{
		{simgate.Verification{AppName: "Evil. Call +4915199999999"}, 0, "verify.app_names"},
		{simgate.Verification{AppName: "Acme Shop"}, 0, "verify.app_names"},
		{simgate.Verification{AppName: "Acme"}, 0, "verify.app_names"},
		{simgate.Verification{CodeLength: 4}, 0, "verify.min_code_length"},
		{simgate.Verification{CodeLength: 5}, 0, "verify.min_code_length"},
		{simgate.Verification{}, 10*time.Minute + time.Second, "verify.max_ttl"},
	} {
		c.v.To = "+4915123456789"
		_, err := s.Start(ctx, &c.v, c.ttl)
		if got := simgate.ErrorCode(err); got != simgate.CodeInvalid || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("Start(%+v, %s) = %v (%s), want invalid naming %s", c.v, c.ttl, err, got, c.want)
		}
	}
	v := &simgate.Verification{To: "+4915123456789", AppName: "shop"}
	m, err := s.Start(ctx, v, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.AppName, "Acme Shop"; got != want {
		t.Fatalf("AppName = %q, want %q", got, want)
	}
	if got, want := v.CodeLength, 6; got != want {
		t.Fatalf("CodeLength = %d, want %d", got, want)
	}
	if m.ID == "" {
		t.Fatal("no SMS queued")
	}
}

// TestResendCancelsQueuedSMS: a resend draws a new code, so an SMS with the
// old one that is still queued must not go out after it.
func TestResendCancelsQueuedSMS(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.New(queue.Options{Store: db, Sender: nopSender{}}) // not opened: nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.New(db, q, verify.Options{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Start(ctx, &simgate.Verification{To: "+4915123456789"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := &simgate.Verification{To: "+4915123456789"}
	second, err := s.Start(ctx, v, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.SendCount != 2 || second.ID == first.ID {
		t.Fatalf("resend: send count %d, messages %s and %s", v.SendCount, first.ID, second.ID)
	}
	if got, err := q.Message(ctx, first.ID); err != nil || got.Status != simgate.StatusCanceled {
		t.Fatalf("first SMS after resend: %+v, %v; want canceled", got, err)
	}
	if got, err := q.Message(ctx, second.ID); err != nil || got.Status != simgate.StatusQueued {
		t.Fatalf("second SMS: %+v, %v; want queued", got, err)
	}
}
