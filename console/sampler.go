package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/simgate/simgate"
)

// SampleInterval is how often the App samples the signal and the queue for
// the charts.
const SampleInterval = time.Minute

// sampleTimeout bounds one sample.
const sampleTimeout = 30 * time.Second

// SampleStore keeps the samples of the charts. *store.DB satisfies it.
type SampleStore interface {
	// RecordSample adds s to the hourly rollups of the current hour, and
	// prunes those past their retention.
	RecordSample(ctx context.Context, s simgate.Sample) error
}

// ModemSource reports the modems' status. *modem.Pool satisfies it.
type ModemSource interface {
	Status() []simgate.ModemStatus
}

// QueueSource reports on the queue. *queue.Dispatcher satisfies it.
type QueueSource interface {
	Stats(ctx context.Context) (simgate.QueueStats, error)
}

// SamplerOptions configure a Sampler. Modems, Queue and Store are required.
type SamplerOptions struct {
	Modems ModemSource
	Queue  QueueSource
	Store  SampleStore
	// Interval is the time between samples; 0 starts no loop, and the
	// caller samples with RunOnce (tests).
	Interval time.Duration
	Logger   *slog.Logger
}

// Sampler writes what the charts show that is not counted as it happens:
// each modem's signal and the queue's depth and oldest age, once per
// Interval, into the store's hourly rollups. The store prunes the rollups
// as it takes each sample.
type Sampler struct {
	opts SamplerOptions
	log  *slog.Logger

	mu     sync.Mutex // guards cancel
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewSampler returns a Sampler; Open starts it.
func NewSampler(opts SamplerOptions) (*Sampler, error) {
	if opts.Modems == nil || opts.Queue == nil || opts.Store == nil {
		return nil, errors.New("cannot create sampler: a service is missing")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sampler{opts: opts, log: opts.Logger}, nil
}

// Open takes a first sample and then one every Interval, in a goroutine
// that Close stops. With an Interval of 0 it does nothing.
func (s *Sampler) Open() error {
	if s.opts.Interval <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return errors.New("cannot open sampler: it is open")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		for {
			sctx, scancel := context.WithTimeout(ctx, sampleTimeout)
			if err := s.RunOnce(sctx); err != nil && ctx.Err() == nil {
				s.log.Warn("cannot sample for the console's charts", "error", err)
			}
			scancel()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Close stops the sampling and waits for a sample in progress.
func (s *Sampler) Close() error {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	return nil
}

// RunOnce takes one sample: the signal of every modem that knows it and is
// not down (a down modem's last reading is stale), and the queue's depth,
// counted as the messages waiting to be sent (accepted, queued or sending;
// scheduled ones wait for their time and sent ones for the network, not for
// a modem), and its oldest queued age.
func (s *Sampler) RunOnce(ctx context.Context) error {
	st, err := s.opts.Queue.Stats(ctx)
	if err != nil {
		return fmt.Errorf("cannot sample the queue: %w", err)
	}
	sample := simgate.Sample{Signal: map[string]int{}, OldestQueuedAge: st.OldestQueuedAge}
	for _, status := range []simgate.MessageStatus{simgate.StatusAccepted, simgate.StatusQueued, simgate.StatusSending} {
		for _, n := range st.Depth[status] {
			sample.QueueDepth += n
		}
	}
	for _, m := range s.opts.Modems.Status() {
		if m.SignalDBm != 0 && m.State != simgate.ModemDown {
			sample.Signal[m.ID] = m.SignalDBm
		}
	}
	return s.opts.Store.RecordSample(ctx, sample)
}
