package daemon

import (
	"context"
	"time"

	"hotdesk/prov"
	"hotdesk/sip"
)

// callRules adapts prov.Calls to the proxy's CallPolicy, CallHandling,
// FeatureCodes, EmergencyNumbers and CallRecorder.
type callRules struct{ c *prov.Calls }

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
		ForwardNoAnswer: h.ForwardNoAnswer, Twin: h.Twinning}
	if h.ForwardNoAnswer != "" {
		secs := h.NoAnswerSeconds
		if secs <= 0 {
			secs = 20
		}
		out.NoAnswerAfter = time.Duration(secs) * time.Second
	}
	return out, nil
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
