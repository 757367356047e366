package simgate

import "time"

// SendOutcome is what became of one submit attempt of a message, as the
// dispatcher hands it to the store. The first len(MRs) parts went out with
// those message references; when Ambiguous, the part after them may have gone
// out too (a timeout or +CMS ERROR 332 during its submit); every other part
// takes Status: StatusSent on success, StatusQueued for a retry at RetryAt,
// StatusFailed, or StatusUnknown.
//
// NoModem marks a send that found no modem to ask (ErrNoSender): it was no
// attempt. Status is then StatusQueued and Reason says why it waits; the
// store takes the claim back and makes the due messages wait until RetryAt.
type SendOutcome struct {
	Status    MessageStatus
	Reason    string
	ModemID   string
	MRs       []int
	Ambiguous bool
	NoModem   bool
	SentAt    time.Time
	RetryAt   time.Time
}

// MessageFilter selects messages for a list. Cursor is the opaque value a
// previous page returned; Limit 0 means a default page size.
type MessageFilter struct {
	Status MessageStatus // empty: any
	To     string        // empty: any
	// VerificationID selects the SMS sent for one verification (its code,
	// once per send); empty: any.
	VerificationID string
	Cursor         string
	Limit          int
}

// QueueStats describe the outbound queue, status report matching and late
// submit answers, for metrics. Report and late submit figures cover those
// received since Since.
type QueueStats struct {
	// Depth counts the messages not yet final (scheduled, accepted, queued,
	// sending, sent), by status and priority. A sent message whose status
	// reports did not come within the report window is no longer counted:
	// nothing is expected of it any more.
	Depth map[MessageStatus]map[Priority]int
	// OldestQueuedAt is when the oldest queued message became due: when it
	// was created or, for one that was scheduled, its SendAt. Zero when none
	// is queued. OldestQueuedAge is its age at the time of the query.
	OldestQueuedAt  time.Time
	OldestQueuedAge time.Duration

	Since            time.Time
	Reports          int // status reports received
	MatchedReports   int // of them, matched to a part
	ReportLatencyP50 time.Duration
	ReportLatencyP99 time.Duration // from a part's submit to a final report

	LateSubmits        int // late +CMGS answers received (after their submit timed out)
	MatchedLateSubmits int // of them, matched to a part
}

// MatchRatio returns the share of status reports that were matched to a
// part, 1 when there were none.
func (s QueueStats) MatchRatio() float64 {
	if s.Reports == 0 {
		return 1
	}
	return float64(s.MatchedReports) / float64(s.Reports)
}
