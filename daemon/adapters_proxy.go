package daemon

import (
	"context"
	"time"

	"hotdesk/prov"
	"hotdesk/sip"
	"hotdesk/sip/media/vm"
)

// callRules adapts prov.Calls to the proxy's CallPolicy, CallHandling,
// FeatureCodes, EmergencyNumbers and CallRecorder.
type callRules struct {
	c *prov.Calls
	// voicemail is on (sip.voicemail.enabled) with this default ring time.
	voicemail       bool
	noAnswerSeconds int
}

func (r callRules) Authorize(ctx context.Context, caller sip.Owner, target string) (sip.Decision, error) {
	v, err := r.c.Authorize(ctx, provOwner(caller), target)
	return sip.Decision{Allow: v.Allow, Reason: v.Reason, Locked: v.Locked}, err
}

func (r callRules) CallerTrunk(ctx context.Context, caller sip.Owner) (sip.TrunkConfig, bool) {
	t, ok := r.c.CallerTrunk(ctx, provOwner(caller))
	return sip.TrunkConfig{Address: t.Address, Username: t.Username, Password: t.Password}, ok
}

func (r callRules) IsEmergency(ctx context.Context, dialled string) bool {
	return r.c.IsEmergency(ctx, dialled)
}

func (r callRules) CallHandling(ctx context.Context, user string) (sip.Handling, error) {
	h, err := r.c.Handling(ctx, user)
	if err != nil {
		return sip.Handling{}, err
	}
	out := sip.Handling{DND: h.DND, ForwardAlways: h.ForwardAlways, ForwardBusy: h.ForwardBusy,
		ForwardNoAnswer: h.ForwardNoAnswer, Twin: h.Twinning, Voicemail: r.voicemail && !h.VoicemailOff}
	if h.ForwardNoAnswer != "" || out.Voicemail {
		secs := h.NoAnswerSeconds
		if secs <= 0 {
			secs = 20
			if r.noAnswerSeconds > 0 {
				secs = r.noAnswerSeconds
			}
		}
		out.NoAnswerAfter = time.Duration(secs) * time.Second
	}
	return out, nil
}

func (r callRules) ParkSlot(ctx context.Context, caller sip.Owner, dialled string) (string, bool) {
	return r.c.ParkSlot(ctx, prov.OwnerKind(caller.Kind), caller.ID, dialled)
}

func (r callRules) FeatureCode(ctx context.Context, caller sip.Owner, dialled, source string) (int, string, bool) {
	return r.c.FeatureCode(ctx, provOwner(caller), dialled, source)
}

func (r callRules) RecordCall(ctx context.Context, rec sip.CallRecord) {
	pr := prov.CallRecord{CallID: rec.CallID, Owner: provOwner(rec.Caller), Locked: rec.Locked,
		From: rec.From, To: rec.Callee, Route: rec.Route, Result: rec.Result,
		Start: rec.Start, Answer: rec.Answer, End: rec.End}
	if pr.To == "" {
		pr.To = rec.Dialled
	}
	r.c.Record(ctx, pr, prov.OwnerKind(rec.Caller.Kind), rec.Caller.ID,
		prov.OwnerKind(rec.CalleeOwner.Kind), rec.CalleeOwner.ID, rec.Stage == sip.CallEnded)
}

// mailboxes adapts prov.Voicemails to the proxy's Mailboxes and the
// voicemail server's Mailbox.
type mailboxes struct{ v *prov.Voicemails }

func (m mailboxes) ListenCode(ctx context.Context, caller sip.Owner, dialled string) (string, bool) {
	return m.v.ListenCode(ctx, prov.OwnerKind(caller.Kind), caller.ID, dialled)
}

func (m mailboxes) MailboxOf(ctx context.Context, caller sip.Owner, target string) (string, bool) {
	return m.v.MailboxOf(ctx, prov.OwnerKind(caller.Kind), caller.ID, target)
}

func (m mailboxes) MessageSummary(ctx context.Context, mailbox string) (int, int, error) {
	return m.v.Summary(ctx, mailbox)
}

func (m mailboxes) Greeting(ctx context.Context, mailbox string) (string, error) {
	return m.v.Greeting(ctx, mailbox)
}

func (m mailboxes) Deposit(ctx context.Context, d vm.Deposit) error {
	return m.v.Deposit(ctx, d.User, d.From, d.Path, d.Duration, d.Size)
}

func (m mailboxes) Messages(ctx context.Context, mailbox string) ([]vm.Message, error) {
	ms, err := m.v.Messages(ctx, mailbox)
	out := make([]vm.Message, len(ms))
	for i, x := range ms {
		out[i] = vm.Message{ID: x.ID, Path: x.Path}
	}
	return out, err
}

func (m mailboxes) Heard(ctx context.Context, mailbox string, id int64) error {
	return m.v.Heard(ctx, mailbox, id)
}

func (m mailboxes) Delete(ctx context.Context, mailbox string, id int64) error {
	return m.v.Delete(ctx, mailbox, id)
}
