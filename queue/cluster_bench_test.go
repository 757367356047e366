package queue_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/simgate/simgate"
	"github.com/simgate/simgate/modem/sim"
	"github.com/simgate/simgate/queue"
	"github.com/simgate/simgate/store/postgres"
	"github.com/simgate/simgate/store/postgres/pgtest"
)

// BenchmarkQueueIdleAcrossNodes measures, on PostgreSQL, the path from
// Enqueue to the PDU reaching an idle virtual modem (Submission.Received),
// one message at a time, when the message is accepted by the node that
// drives the modem (same-node) and by another node that drives none
// (other-node: the insert's NOTIFY wakes the modem's node, which claims
// it). Both nodes run in this process, each with its own connections.
//
//	SIMGATE_TEST_POSTGRES=... go test -run '^$' -bench QueueIdleAcrossNodes -benchtime 300x ./queue/
func BenchmarkQueueIdleAcrossNodes(b *testing.B) {
	for _, where := range []string{"same-node", "other-node"} {
		b.Run(where, func(b *testing.B) { benchmarkIdleAcrossNodes(b, where == "other-node") })
	}
}

func benchmarkIdleAcrossNodes(b *testing.B, other bool) {
	dsn := pgtest.NewDatabase(b)
	e := newEnv(b, envConfig{modems: 4, sim: func(i int, c *sim.Config) { c.SubmitLatency = 5 * time.Millisecond }})
	open := func() *postgres.DB {
		db, err := postgres.Open(e.ctx, dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	// Node "modems" drives the virtual modems; node "api" drives none and
	// never claims (Ready says so).
	dbModems, dbAPI := open(), open()
	q := e.newQueue(queue.Options{Store: dbModems, NodeID: "modems"})
	if err := q.Open(e.ctx); err != nil {
		b.Fatal(err)
	}
	lctx, cancel := context.WithCancel(e.ctx)
	listening := make(chan error, 1)
	go func() { listening <- dbModems.ListenQueue(lctx, q.Wake) }()
	b.Cleanup(func() { cancel(); <-listening })
	api, err := queue.New(queue.Options{Store: dbAPI, NodeID: "api", Ready: func() bool { return false },
		Sender: &fakeSender{fn: func(simgate.SendRequest) (simgate.Receipt, error) {
			return simgate.Receipt{}, errors.New("the api node has no modem")
		}}})
	if err != nil {
		b.Fatal(err)
	}
	accept := q
	if other {
		accept = api
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := accept.Enqueue(e.ctx, &simgate.Message{To: alice, Text: "Your code is 123456"}); err != nil {
			b.Fatal(err)
		}
		subs, err := e.net.WaitSubmissions(e.ctx, i+1)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, subs[i].Received.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)*99/100, len(lat)-1)]), "p99-ms")
}
