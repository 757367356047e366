package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/store/storetest"
)

// proxy forwards TCP connections to a server until cut, as a network
// between a host and its database does.
type proxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, to string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, to: to}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

// cut closes the listener and every connection: the database is gone.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// When the database cannot be reached (here: its network cut, as in a
// failover), what the store answers is simgate.CodeUnavailable, with a
// time to retry after; other errors keep their codes.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	db, err := Open(ctx, u.String(), Options{Now: storetest.NewClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.FindMessage(ctx, "msg_nope"); simgate.ErrorCode(err) != simgate.CodeNotFound {
		t.Fatalf("a missing message while connected: %v; want not found", err)
	}
	p.cut()
	type retryAfter interface{ RetryAfter() time.Duration }
	for name, call := range map[string]func() error{
		"a read":        func() error { _, err := db.CountDue(ctx); return err },
		"a row":         func() error { _, err := db.SchemaVersion(ctx); return err },
		"a transaction": func() error { return db.UpdateMessages(ctx, func(simgate.MessageTx) error { return nil }) },
		"a snapshot":    func() error { _, err := db.FindMessage(ctx, "msg_nope"); return err },
		"a budget": func() error {
			_, err := db.TakeBudget(ctx, 1, []simgate.Budget{{Key: "global:hour", Limit: 10, Window: time.Hour}})
			return err
		},
	} {
		err := call()
		var ra retryAfter
		if simgate.ErrorCode(err) != simgate.CodeUnavailable || !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
			t.Errorf("%s with the database cut off: %v (code %s); want unavailable with a retry time", name, err, simgate.ErrorCode(err))
		}
	}
}
