// Package queue is simgate's durable outbound queue and dispatcher: it takes
// messages from the API (Enqueue), hands them to the modem pool (a Sender),
// records what became of every attempt, and matches the status reports, late
// submit answers and inbound SMS the modems receive (HandleReport,
// HandleLateSubmit, HandleInbound).
//
// # State
//
// The queue has no state of its own beyond goroutines and a wake-up
// channel: every message, part, transition and status report lives in the
// Store (SQLite through package store), and a Dispatcher that restarts picks
// up where the last one stopped.
//
// The rules are the queue's, and only the queue's: which transition a
// message takes, how a submit's outcome and the parts' reports fold into its
// status, when it may no longer be sent, when its verification fails with it
// (state.go: Create, Claim, Finish, Recover, Expire, CancelMessage,
// ReleaseScheduled; report.go: RecordReport, RecordLateSubmit,
// CloseMissingReports). Each runs in one transaction of the Store's
// (Store.UpdateMessages), through the plain reads and writes of a
// simgate.MessageTx; the Dispatcher's methods call them.
//
// # Goroutines
//
// Open starts them and Close stops them; the Dispatcher owns all of them
// (one context, one WaitGroup):
//
//   - Workers (Options.Workers, changed at run time with SetWorkers; run one
//     per modem). A worker claims one message only when it is free, sends it
//     with a blocking Sender.Send and records the outcome. Recording the
//     outcome and claiming the next message happen in one transaction
//     (Finish and Claim in one Store.UpdateMessages), so a modem that
//     finished a submit is given its next message after a single commit.
//     With one worker per modem and a Sender that gives each send the least loaded modem (modem.Pool does),
//     every modem has one submit in flight while there is a backlog, and no
//     modem is kept waiting by a message that waits for a retry or failed:
//     those are simply not claimed.
//   - A scheduler, which keeps a timer armed for the earliest scheduled
//     message (see "Scheduled sends" in docs/QUEUE.md).
//   - A sweeper (Options.SweepInterval; 0 switches it off and tests call
//     RunOnce). It only catches what events cannot: retries that fell due,
//     expired leases, messages that expired while queued or scheduled, sent
//     messages whose status reports never came; and, as a fallback only,
//     scheduled messages whose time came.
//
// # Why
//
// docs/QUEUE.md gives the reasons behind the wake-ups, scheduled sends, at
// most one submit of a message to the modem, the wait for a modem, expiry
// and the matching of reports.
package queue
