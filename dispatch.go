package simgate

import "time"

// SendOutcome is what became of one submit attempt of a message, as the
// dispatcher hands it to the store. The first len(MRs) parts went out with
// those message references; when Ambiguous, the part after them may have gone
// out too (a timeout or +CMS ERROR 332 during its submit); every other part
// takes Status: StatusSent on success, StatusQueued for a retry at RetryAt,
// StatusFailed, or StatusUnknown.
type SendOutcome struct {
	Status    MessageStatus
	Reason    string
	ModemID   string
	MRs       []int
	Ambiguous bool
	SentAt    time.Time
	RetryAt   time.Time
}

// MessageFilter selects messages for a list. Cursor is the opaque value a
// previous page returned; Limit 0 means a default page size.
type MessageFilter struct {
	Status MessageStatus // empty: any
	To     string        // empty: any
	Cursor string
	Limit  int
}

// QueueStats describe the outbound queue and status report matching, for
// metrics. Report figures cover the reports received since Since.
type QueueStats struct {
	// Depth counts the messages not yet final (accepted, queued, sending,
	// sent), by status and priority.
	Depth map[MessageStatus]map[Priority]int
	// OldestQueuedAt is when the oldest queued message was created; zero when
	// none is queued. OldestQueuedAge is its age at the time of the query.
	OldestQueuedAt  time.Time
	OldestQueuedAge time.Duration

	Since            time.Time
	Reports          int // status reports received
	MatchedReports   int // of them, matched to a part
	ReportLatencyP50 time.Duration
	ReportLatencyP99 time.Duration // from a part's submit to a final report
}

// MatchRatio returns the share of status reports that were matched to a
// part, 1 when there were none.
func (s QueueStats) MatchRatio() float64 {
	if s.Reports == 0 {
		return 1
	}
	return float64(s.MatchedReports) / float64(s.Reports)
}
