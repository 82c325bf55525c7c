package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"hotdesk/prov"
	"hotdesk/sip"
)

// sipCallControl serves prov's click-to-dial with the SIP proxy's
// third-party call control.
type sipCallControl struct{ s *sip.Server }

func (a sipCallControl) Dial(ctx context.Context, o prov.DialOrder) (prov.ControlledCall, error) {
	bs := a.s.DeviceBindings(deviceKey(o.DeviceID))
	if len(bs) == 0 {
		return prov.ControlledCall{}, prov.ErrNoPhone
	}
	// The line the phone refreshed last is the one it is using now.
	b := slices.MaxFunc(bs, func(x, y sip.Binding) int { return x.Updated.Compare(y.Updated) })
	cc, err := a.s.Dial(ctx, sip.DialRequest{Owner: sipOwner(o.Owner), Phone: b, Caller: b.Owner, CallerID: o.CallerID,
		Target: o.Target})
	if err != nil {
		return prov.ControlledCall{}, callControlError(err)
	}
	return provCall(cc), nil
}

func (a sipCallControl) HangUp(ctx context.Context, owner prov.Owner, id string) error {
	return callControlError(a.s.HangUp(ctx, sipOwner(owner), id))
}

func (a sipCallControl) Hold(ctx context.Context, owner prov.Owner, id string, on bool) error {
	return callControlError(a.s.Hold(ctx, sipOwner(owner), id, on))
}

func (a sipCallControl) Transfer(ctx context.Context, owner prov.Owner, id, target string) error {
	return callControlError(a.s.Transfer(ctx, sipOwner(owner), id, target))
}

func (a sipCallControl) Calls(owner prov.Owner) []prov.ControlledCall {
	cs := a.s.ControlledCalls(sipOwner(owner))
	out := make([]prov.ControlledCall, 0, len(cs))
	for _, c := range cs {
		out = append(out, provCall(c))
	}
	return out
}

func provCall(c sip.ControlledCall) prov.ControlledCall {
	return prov.ControlledCall{ID: c.ID, Target: c.Target, State: c.State, Reason: c.Reason, Started: c.Started}
}

// callControlError maps sip's errors onto prov's, keeping the text (the
// policy's reason).
func callControlError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sip.ErrCallRefused):
		return fmt.Errorf("%w: %w", prov.ErrDenied, err)
	case errors.Is(err, sip.ErrNoTarget), errors.Is(err, sip.ErrCallNotFound):
		return fmt.Errorf("%w: %w", prov.ErrNotFound, err)
	case errors.Is(err, sip.ErrTooManyCalls):
		return fmt.Errorf("%w: %w", prov.ErrConflict, err)
	case errors.Is(err, sip.ErrNoTransfer):
		return fmt.Errorf("%w: %w", prov.ErrNotSupported, err)
	case errors.Is(err, sip.ErrNotConnected):
		return fmt.Errorf("%w: %w", prov.ErrNotConnected, err)
	case errors.Is(err, sip.ErrCallControlOff):
		return prov.ErrCallControlOff
	}
	return err
}
