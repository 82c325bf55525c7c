package prov

import (
	"context"
	"log/slog"
)

// subscribeRules subscribes the rules that tie the services together. The
// order is the rules' order on every change (Events delivers in
// subscription order):
//
//  1. the credentials index follows user and device changes, so whatever
//     runs after (a login, a registration the check-sync provokes) reads
//     the new credentials; then the softphones whose credentials it
//     dropped (a disabled user) are unbound;
//  2. an assigned managed desk phone logs its user in when assigned, and
//     back in when a guest who logged in there leaves;
//  3. the files cache drops what the device would render differently;
//  4. check-sync tells the phone of a change to its device, through
//     Sessions (the one check-sync path) — after 3, so a fast phone does
//     not fetch the old file.
func (s *Services) subscribeRules(st Store) {
	s.Events.Subscribe(credentialsRule{creds: s.Credentials, logger: s.logger}.on)
	if s.Softphone != nil {
		s.Events.Subscribe(s.Softphone.onEvent)
	}
	s.Events.Subscribe(assignedRule{store: st, sessions: s.Sessions, logger: s.logger}.on)
	if s.fileCache != nil {
		s.Events.Subscribe(s.fileCache.OnEvent)
	}
	s.Events.Subscribe(syncRule{store: st, sessions: s.Sessions, logger: s.logger}.on)
}

// credentialsRule keeps the credential index current whatever changed a
// user or device.
type credentialsRule struct {
	creds  *Credentials
	logger *slog.Logger
}

func (r credentialsRule) on(ctx context.Context, ev Event) {
	var err error
	switch ev.Kind {
	case EventUserChanged, EventCredentialsChanged:
		if ev.UserID != 0 {
			err = r.creds.RefreshUser(ctx, ev.UserID)
		}
	case EventDeviceChanged:
		switch {
		case ev.Device != nil:
			r.creds.PutDevice(*ev.Device)
		case ev.DeviceID != 0:
			err = r.creds.RefreshDevice(ctx, ev.DeviceID)
		}
	}
	if err != nil {
		r.logger.Error("credential index refresh failed", "component", "credentials", "kind", ev.Kind, "err", err)
	}
}

// assignedRule: an assigned managed desk phone logs its user in
// permanently, and gets them back when a guest who logged in there logs
// out.
type assignedRule struct {
	store    Store
	sessions *Sessions
	logger   *slog.Logger
}

func (r assignedRule) on(ctx context.Context, ev Event) {
	switch {
	case ev.Remote:
		return // the node where it happened logs the user in
	case ev.Kind == EventDeviceChanged && ev.Reason == "assigned" && ev.UserID != 0:
		r.login(ctx, ev.DeviceID, ev.UserID)
	case ev.Kind == EventSessionEnded && ev.Reason != string(EndReplaced) && ev.Reason != string(EndUnassigned):
		var d Device
		var err error
		if ev.Device != nil {
			d = *ev.Device // read by the logout that published it
		} else if d, err = r.store.GetDeviceByID(ctx, ev.DeviceID); err != nil {
			return
		}
		if d.AssignedUserID == 0 || d.AssignedUserID == ev.UserID {
			return
		}
		// Published under the sessions' lock: log in from outside it.
		go r.login(context.WithoutCancel(ctx), d.ID, d.AssignedUserID)
	}
}

func (r assignedRule) login(ctx context.Context, deviceID, userID int64) {
	d, err := r.store.GetDeviceByID(ctx, deviceID)
	if err != nil || d.Kind != DeviceManaged || d.AssignedUserID != userID {
		return
	}
	u, err := r.store.GetUserByID(ctx, userID)
	if err == nil {
		_, err = r.sessions.Login(ctx, LoginRequest{MAC: d.MAC, Username: u.Username, Door: DoorAssigned,
			Verified: true, Actor: Actor{}})
	}
	if err != nil {
		r.logger.Warn("assigned phone: permanent login failed", "component", "sessions", "mac", d.MAC, "err", err)
	}
}

// syncRule tells a phone of every change to its device.
type syncRule struct {
	store    Store
	sessions *Sessions
	logger   *slog.Logger
}

func (r syncRule) on(ctx context.Context, ev Event) {
	if ev.Kind != EventDeviceChanged || ev.DeviceID == 0 || ev.Reason == ReasonEnrolled {
		// An enrolling phone is fetching its files now: a check-sync
		// would find no registration, after a signals read on the
		// fetch's path (10,000 of them in a boot storm).
		return
	}
	var d Device
	var err error
	if ev.Device != nil {
		d = *ev.Device
	} else {
		d, err = r.store.GetDeviceByID(ctx, ev.DeviceID)
	}
	if err != nil {
		r.logger.Debug("check-sync after change not sent", "component", "sessions", "device", ev.DeviceID, "err", err)
		return
	}
	r.sessions.SyncDevice(ctx, d, ev.Reboot)
}
