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
//     finished a submit is given its next message after a single commit. With one worker per modem and a
//     Sender that gives each send the least loaded modem (modem.Pool does),
//     every modem has one submit in flight while there is a backlog, and no
//     modem is kept waiting by a message that waits for a retry or failed:
//     those are simply not claimed.
//   - A scheduler, which keeps a timer armed for the earliest scheduled
//     message (see Scheduled sends).
//   - A sweeper (Options.SweepInterval; 0 switches it off and tests call
//     RunOnce). It only catches what events cannot: retries that fell due,
//     expired leases, messages that expired while queued or scheduled, sent
//     messages whose status reports never came; and, as a fallback only,
//     scheduled messages whose time came.
//
// # Wake-ups
//
// Enqueue commits the message, then puts a token in a buffered channel that
// idle workers wait on: a message reaches an idle modem at once, with no
// polling delay. A worker that claimed a message after a wake-up passes a
// token on, so that a burst wakes as many workers as it needs even when
// tokens were dropped because the channel was full. A spurious token costs one
// empty claim query. Claims are ordered by priority (verification codes
// first), then due time, then age.
//
// # Scheduled sends
//
// A message with a SendAt ahead (simgate.Message.SendAt, send_at in the API)
// is stored as scheduled, its parts queued, and is not claimed: its
// next_attempt_at is its SendAt too. The scheduler's timer is armed for the
// earliest scheduled message, not a periodic scan, so a message becomes due
// when its time comes, without polling delay: the timer fires, the due
// scheduled messages become queued (event "scheduled time reached") and
// workers are woken as for a message just accepted. The timer is re-armed
// after each wake, at Open (so a restart loses no schedule, and what fell
// due while simgate was stopped is queued at once), when a message is
// scheduled before the time it is armed for, and when a message is
// canceled. The store decides what is due by the clock, never the timer, so
// nothing goes out before its SendAt; SendAt is kept to the millisecond,
// rounded up.
//
// Enqueue holds the rules of SendAt (plan): never for a verification's SMS;
// at most ScheduleTolerance in the past, which means now; at most
// MaxScheduleAhead ahead; before the expiry, which DefaultExpiry counts from
// SendAt. A scheduled message can be canceled, and expires as a queued one
// does: one whose expiry passed before it could be sent (simgate was not
// running) ends expired.
//
// # At most once to the modem
//
// The claim commits the message as sending, with a lease (owner NodeID,
// expiry now+Lease), before the modem is asked. If the process dies during the
// submit, the message is found in sending at the next Open (its lease is ours
// or expired) and becomes unknown: the modem may have sent it, so it is not
// sent again unless Options.ResendUnknown says so. A submit that fails
// ambiguously (a timeout after the PDU was written, +CMS ERROR 332) likewise
// ends unknown, or sent for the parts that got message references. Only a
// failure that the Sender classifies as "nothing went out" (transient, SIM,
// modem) is retried, with exponential backoff up to MaxAttempts; permanent
// errors fail the message at once. Everything else is at least once: a queued
// message survives any crash and is claimed again.
//
// # No modem
//
// A send that found no modem to ask (the Sender's error matches
// simgate.ErrNoSender: every modem down, disabled, draining or at its cap) is
// no attempt: nothing went out and no modem failed. The claim is taken back
// whole (status, attempt count, its event), so it does not count against
// MaxAttempts, and the message waits for a modem: its reason and one event
// say "waiting for a modem: <why>". No modem is no modem for every message,
// so every due message waits with it, until NoModemBackoff has passed
// (doubled while no modem is found, up to NoModemMaxBackoff, with jitter):
// while the modems are out, one probe per backoff for the whole queue, and no
// event row per probe. ModemReady, which the modem pool's state observer
// calls when a modem becomes ready, ends the wait at once. A message waits
// until its expiry, or its verification's; it then ends expired, and its
// reason names the wait. Messages without an expiry wait for as long as it
// takes.
//
// Leases make the queue safe to share between nodes later: a claim only takes
// queued messages, and recovery only takes sending messages whose lease is
// this node's or expired. Leases are not renewed, so Lease must be longer than
// the Sender's longest submit (modem.Config.SubmitTimeout plus failover).
//
// # Expiry
//
// A message past its expiry, or whose verification expired or is no longer
// pending, is never claimed: the claim finishes it as expired or canceled
// instead. A claimed message may still wait for a modem (every modem busy, or
// a resend sticking to the SIM of the first code), so the send carries the
// earlier of the message's and its verification's expiry
// (simgate.SendRequest.NotAfter), and the modem's goroutine looks at the time
// just before AT+CMGS: a message whose time ran out while it waited ends
// expired and nothing goes out. A verification approved or canceled during
// that wait is not seen: its SMS still goes out, in time.
//
// # Reports
//
// A status report is matched to a part by modem, message reference,
// recipient and a time window (Options.ReportWindow) counted from the part's
// submit; see RecordReport. Temporary TP-ST values are recorded
// without finishing the part; unmatched reports are kept and counted (Stats).
//
// A submit that timed out after the PDU was written leaves its part unknown,
// without a message reference. When the modem's "+CMGS: <mr>" comes after
// all, HandleLateSubmit gives the part that reference, submitted then, and
// its status report matches as any other; the message refolds (sent, and
// delivered once the report came). The modem hands on the timeout before it
// waits for the late answer, so the answer may come before the timeout is
// recorded: it is kept, and matched then. One that matches nothing is kept
// unmatched and counted (Stats).
//
// A sent message whose parts that still await a final report were all
// submitted longer than the window ago can no longer be matched: the sweep
// closes it. It stays sent, since it did go out, with the reason "no report
// within <window>" and an event, and is counted once
// (an Observer's ReportsMissing) and left out of the queue depth.
// simgate.MessageStatus.Final stays false for sent, since a sent message
// normally awaits its report; that a closed one does not is the store's
// record of the closing, not its status.
package queue
