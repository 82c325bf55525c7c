package sip

import (
	"context"
	"log/slog"
	"time"
)

// CallStage says which moment of a call attempt a CallRecord reports.
type CallStage int

// The stages of a call record; a record with the same ID is sent at each
// stage it reaches, so the consumer upserts by ID.
const (
	CallStarted  CallStage = iota + 1 // routed (policy passed), ringing
	CallAnswered                      // a 2xx went back to the caller
	CallEnded                         // final failure, or BYE after answer
)

// String names the stage for logs.
func (s CallStage) String() string {
	switch s {
	case CallStarted:
		return "started"
	case CallAnswered:
		return "answered"
	case CallEnded:
		return "ended"
	}
	return "unknown"
}

// Routes a call can take (CallRecord.Route and the route metric label).
const (
	RouteInternal = "internal" // to a hotdesk user's phones
	RouteTrunk    = "trunk"    // out through the upstream trunk
	RouteInbound  = "inbound"  // from the trunk to a hotdesk user
	RouteFeature  = "feature"  // a feature code (login/logout)
	RouteMailbox  = "mailbox"  // the mailbox code: the caller's own voicemail
	RoutePark     = "park"     // a park code: parked or picked up on a slot
	RouteNone     = "none"     // refused before routing (403/404/...)
)

// CallRecord is one call attempt. It is the activity signal for login
// sessions too: a record whose Caller or CalleeOwner is a session is a call
// made or answered on that session's line.
type CallRecord struct {
	ID    string // unique per attempt; stable across stages
	Stage CallStage
	// Caller is the credential owner that placed the call (OwnerTrunk for
	// calls from the trunk); Locked is the policy's verdict on it.
	Caller Owner
	Locked bool
	// From is the From header's user part as the caller sent it (a trunk
	// call's caller ID), bounded and without control characters.
	From string
	// Dialled is the Request-URI user as dialled; feature codes are cut to
	// their first three characters so no password is stored.
	Dialled string
	// Callee is the canonical user called, or the number sent to the trunk.
	Callee string
	// CalleeOwner is the owner of the binding that answered (zero if none).
	CalleeOwner Owner
	// ForwardedTo is the last forward target taken ("" if none).
	ForwardedTo string
	Route       string
	// Result is the final status code sent to the caller (0 while ringing);
	// Reason its phrase.
	Result int
	Reason string
	CallID string
	Start  time.Time
	Answer time.Time // zero if not answered
	End    time.Time // zero until ended
}

// CallRecorder is implemented by prov: it stores call records (the user's
// call history) and feeds the idle timer of login sessions. Records are
// delivered in order on one goroutine, never on the SIP path; it should
// return quickly.
type CallRecorder interface {
	RecordCall(ctx context.Context, rec CallRecord)
}

// recordQueue hands records to the CallRecorder off the SIP path.
type recordQueue struct {
	rec     CallRecorder
	ch      chan CallRecord
	log     *slog.Logger
	dropped func()
	// tap, if set, sees every record first (the dialog event notifier);
	// it must not block.
	tap func(CallRecord)
}

func newRecordQueue(r CallRecorder, log *slog.Logger, dropped func()) *recordQueue {
	return &recordQueue{rec: r, ch: make(chan CallRecord, 4096), log: log, dropped: dropped}
}

// push queues a record; a full queue drops it (counted) rather than stall calls.
func (q *recordQueue) push(r CallRecord) {
	if q.tap != nil {
		q.tap(r)
	}
	if q.rec == nil {
		return
	}
	select {
	case q.ch <- r:
	default:
		q.dropped()
	}
}

// run delivers records until ctx ends, then drains what is queued.
func (q *recordQueue) run(ctx context.Context) {
	if q.rec == nil {
		return
	}
	for {
		select {
		case r := <-q.ch:
			q.rec.RecordCall(ctx, r)
		case <-ctx.Done():
			for {
				select {
				case r := <-q.ch:
					q.rec.RecordCall(context.WithoutCancel(ctx), r)
				default:
					return
				}
			}
		}
	}
}
