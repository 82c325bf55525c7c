package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrMailboxFull is a message or greeting over the voicemail size budget.
var ErrMailboxFull = errors.New("mailbox full")

// VoicemailConfig is the mailboxes' storage and budgets.
type VoicemailConfig struct {
	// Dir holds the recordings, <Dir>/<number>/*.wav, and greetings,
	// <Dir>/<number>/greeting.wav.
	Dir string
	// MaxUserBytes and MaxTotalBytes bound one mailbox and all of them;
	// a message over either is not kept (0: no limit).
	MaxUserBytes  int64
	MaxTotalBytes int64
	// Retention deletes messages older than this (0: keep).
	Retention time.Duration
	// CheckGreeting refuses a greeting the player cannot play (nil: any).
	CheckGreeting func([]byte) error
	// Shared keeps the audio in the store too, for nodes sharing it (nil:
	// one node, the files are all there is).
	Shared *SharedAudio
}

// MessageWaiting is the SIP side: it tells a user's phones their
// mailbox's counts (RFC 3842). It must not block.
type MessageWaiting interface {
	MessageWaiting(ctx context.Context, user string, newMsgs, oldMsgs int)
}

// Voicemails are the users' mailboxes: messages the voicemail server
// records, listened to from the phone (the mailbox code) and the portal.
// A mailbox is named by its user's canonical number (the SIP AOR user).
type Voicemails struct {
	store  Store
	creds  *Credentials
	cfg    VoicemailConfig
	mwi    MessageWaiting
	logger *slog.Logger
	now    func() time.Time
	swept  prometheus.Counter
	full   prometheus.Counter
}

// NewVoicemails returns the mailboxes; mwi may be nil (no message-waiting).
func NewVoicemails(st Store, creds *Credentials, cfg VoicemailConfig, mwi MessageWaiting, logger *slog.Logger,
	reg prometheus.Registerer, now func() time.Time) *Voicemails {
	f := promauto.With(reg)
	return &Voicemails{store: st, creds: creds, cfg: cfg, mwi: mwi, logger: logger.With("component", "voicemail"),
		now: now,
		swept: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_voicemail_expired_total",
			Help: "Voicemail messages deleted by retention."}),
		full: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_voicemail_over_budget_total",
			Help: "Voicemail messages or greetings refused over the size budget."}),
	}
}

// userOf is the active user whose canonical number is mailbox.
func (v *Voicemails) userOf(ctx context.Context, mailbox string) (User, error) {
	u, err := v.store.UserByNumber(ctx, mailbox)
	if err != nil {
		return User{}, fmt.Errorf("voicemail: mailbox %q: %w", mailbox, err)
	}
	return u, nil
}

// mailboxOf is a user's canonical number, "" for a user with none.
func (v *Voicemails) mailboxOf(userID int64) string {
	if a := v.creds.AORsOf(userID); len(a) > 0 {
		return a[0]
	}
	return ""
}

func (v *Voicemails) dir(mailbox string) string { return filepath.Join(v.cfg.Dir, mailbox) }

// Greeting is the user's uploaded greeting, "" when none.
func (v *Voicemails) Greeting(ctx context.Context, mailbox string) (string, error) {
	p := filepath.Join(v.dir(mailbox), "greeting.wav")
	if v.cfg.Shared != nil {
		return v.sharedGreeting(ctx, mailbox, p)
	}
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("voicemail: greeting: %w", err)
	}
	return p, nil
}

// sharedGreeting is the stored greeting's copy at p, refreshed when
// another node replaced it (its size or time differs from the stored
// header) and removed when another node deleted it.
func (v *Voicemails) sharedGreeting(ctx context.Context, mailbox, p string) (string, error) {
	u, err := v.userOf(ctx, mailbox)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	name := strconv.FormatInt(u.ID, 10)
	m, err := v.store.GetMedia(ctx, MediaGreeting, name)
	if errors.Is(err, ErrNotFound) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			v.logger.Warn("stale greeting not removed", "path", p, "err", err)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("voicemail: greeting: %w", err)
	}
	if fi, err := os.Stat(p); err == nil && fi.Size() == m.Size && fi.ModTime().Equal(m.Created) {
		return p, nil
	}
	if err := v.cfg.Shared.fetch(ctx, MediaGreeting, name, p); err != nil {
		return "", fmt.Errorf("voicemail: greeting: %w", err)
	}
	return p, nil
}

// local is where this node keeps a message's file, and its name in the
// shared store (mailbox/file). Without shared audio it is the row's path;
// with it, the row's path is the recording node's and may not be ours.
func (v *Voicemails) local(m Voicemail) (path, name string) {
	box, file := filepath.Base(filepath.Dir(m.Path)), filepath.Base(m.Path)
	name = box + "/" + file
	if v.cfg.Shared == nil {
		return m.Path, name
	}
	return filepath.Join(v.cfg.Dir, box, file), name
}

// Deposit keeps a recorded message within the budgets and tells the
// user's phones.
func (v *Voicemails) Deposit(ctx context.Context, mailbox, from, path string, dur time.Duration, size int64) error {
	u, err := v.userOf(ctx, mailbox)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(filepath.Clean(path), filepath.Clean(v.cfg.Dir)+string(filepath.Separator)) {
		return fmt.Errorf("voicemail: message %q outside %s: %w", path, v.cfg.Dir, ErrInvalid)
	}
	if err := v.checkBudget(ctx, u.ID, size); err != nil {
		return err
	}
	m := Voicemail{UserID: u.ID, From: from, Path: path, Duration: dur, Size: size, Created: v.now()}
	_, name := v.local(m)
	if v.cfg.Shared != nil {
		// Stored before the row: a row every node lists has its audio.
		if _, err := v.cfg.Shared.put(ctx, MediaVoicemail, name, path, m.Created); err != nil {
			return fmt.Errorf("voicemail: %w", err)
		}
	}
	if err := v.store.AddVoicemail(ctx, &m); err != nil {
		if v.cfg.Shared != nil {
			v.cfg.Shared.remove(ctx, MediaVoicemail, name)
		}
		return fmt.Errorf("voicemail: %w", err)
	}
	v.notify(ctx, u.ID)
	return nil
}

func (v *Voicemails) checkBudget(ctx context.Context, userID, size int64) error {
	mine, total, err := v.store.VoicemailBytes(ctx, userID)
	if err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	if (v.cfg.MaxUserBytes > 0 && mine+size > v.cfg.MaxUserBytes) ||
		(v.cfg.MaxTotalBytes > 0 && total+size > v.cfg.MaxTotalBytes) {
		v.full.Inc()
		return fmt.Errorf("voicemail: %d bytes more: %w", size, ErrMailboxFull)
	}
	return nil
}

// Messages are the mailbox's messages in playback order: new ones
// oldest first, then those heard, newest first.
func (v *Voicemails) Messages(ctx context.Context, mailbox string) ([]Voicemail, error) {
	u, err := v.userOf(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	ms, err := v.store.ListVoicemails(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("voicemail: %w", err)
	}
	var fresh, heard []Voicemail
	for _, m := range ms {
		if m.Heard.IsZero() {
			fresh = append(fresh, m)
		} else {
			heard = append(heard, m)
		}
	}
	slices.Reverse(fresh)
	out := append(fresh, heard...)
	if v.cfg.Shared != nil {
		// The player reads files: each message recorded elsewhere is
		// copied here first. One that cannot be stays listed (the player
		// skips it), so the others still play.
		for i := range out {
			p, name := v.local(out[i])
			if err := v.cfg.Shared.ensure(ctx, MediaVoicemail, name, p); err != nil {
				v.logger.Warn("voicemail message not available", "id", out[i].ID, "err", err)
			}
			out[i].Path = p
		}
	}
	return out, nil
}

// List is a user's messages, newest first (the portal).
func (v *Voicemails) List(ctx context.Context, userID int64) ([]Voicemail, error) {
	ms, err := v.store.ListVoicemails(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("voicemail: %w", err)
	}
	return ms, nil
}

// owned is message id if it is the user's.
func (v *Voicemails) owned(ctx context.Context, userID, id int64) (Voicemail, error) {
	m, err := v.store.GetVoicemail(ctx, id)
	if err != nil {
		return Voicemail{}, fmt.Errorf("voicemail: %w", err)
	}
	if m.UserID != userID {
		return Voicemail{}, fmt.Errorf("voicemail: message %d: %w", id, ErrNotFound)
	}
	return m, nil
}

// Heard marks a message of the mailbox as listened to from the phone.
func (v *Voicemails) Heard(ctx context.Context, mailbox string, id int64) error {
	u, err := v.userOf(ctx, mailbox)
	if err != nil {
		return err
	}
	return v.heard(ctx, u.ID, id)
}

func (v *Voicemails) heard(ctx context.Context, userID, id int64) error {
	m, err := v.owned(ctx, userID, id)
	if err != nil {
		return err
	}
	if !m.Heard.IsZero() {
		return nil
	}
	if err := v.store.MarkVoicemailHeard(ctx, id, v.now()); err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	v.notify(ctx, userID)
	return nil
}

// Delete removes a message of the mailbox (DTMF on the phone).
func (v *Voicemails) Delete(ctx context.Context, mailbox string, id int64) error {
	u, err := v.userOf(ctx, mailbox)
	if err != nil {
		return err
	}
	return v.remove(ctx, u.ID, id, Actor{Name: "phone"})
}

func (v *Voicemails) remove(ctx context.Context, userID, id int64, actor Actor) error {
	m, err := v.owned(ctx, userID, id)
	if err != nil {
		return err
	}
	if err := v.store.DeleteVoicemail(ctx, id); err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	v.removeAudio(ctx, m)
	v.audit(ctx, actor, "voicemail.delete", m)
	v.notify(ctx, userID)
	return nil
}

// removeAudio removes a message's file here and its stored audio (other
// nodes' copies go with their media sweep: no row names them).
func (v *Voicemails) removeAudio(ctx context.Context, m Voicemail) {
	p, name := v.local(m)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		v.logger.Warn("voicemail file not removed", "path", p, "err", err)
	}
	if v.cfg.Shared != nil {
		v.cfg.Shared.remove(ctx, MediaVoicemail, name)
	}
}

// Open is a user's message for playing in the portal: it is marked heard
// and the playback audited.
func (v *Voicemails) Open(ctx context.Context, userID, id int64, actor Actor) (*os.File, Voicemail, error) {
	m, err := v.owned(ctx, userID, id)
	if err != nil {
		return nil, Voicemail{}, err
	}
	p, name := v.local(m)
	if v.cfg.Shared != nil {
		if err := v.cfg.Shared.ensure(ctx, MediaVoicemail, name, p); err != nil {
			return nil, Voicemail{}, fmt.Errorf("voicemail: message %d: %w", id, err)
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, Voicemail{}, fmt.Errorf("voicemail: message %d: %w", id, err)
	}
	if err := v.heard(ctx, userID, id); err != nil {
		v.logger.Warn("voicemail not marked heard", "id", id, "err", err)
	}
	v.audit(ctx, actor, "voicemail.play", m)
	return f, m, nil
}

// DeleteFor removes a user's message from the portal, audited.
func (v *Voicemails) DeleteFor(ctx context.Context, userID, id int64, actor Actor) error {
	return v.remove(ctx, userID, id, actor)
}

// SetGreeting replaces a user's greeting (a WAV the player plays).
func (v *Voicemails) SetGreeting(ctx context.Context, userID int64, wav []byte, actor Actor) error {
	mailbox := v.mailboxOf(userID)
	if mailbox == "" {
		return &FieldError{Field: "greeting", Msg: "the user has no number, so no mailbox"}
	}
	if v.cfg.CheckGreeting != nil {
		if err := v.cfg.CheckGreeting(wav); err != nil {
			return &FieldError{Field: "greeting", Msg: err.Error()}
		}
	}
	if err := v.checkBudget(ctx, userID, int64(len(wav))); err != nil {
		return err
	}
	dir := v.dir(mailbox)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "greeting-*.tmp")
	if err != nil {
		return fmt.Errorf("voicemail: %w", err)
	}
	_, err = tmp.Write(wav)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && v.cfg.Shared != nil {
		// Stored first; the file here is then the stored one's copy
		// (same time), so this node does not fetch it back.
		// A replacement is stamped after the one it replaces: the other
		// nodes' copies compare the stamp (and size) to notice it.
		name, at := strconv.FormatInt(userID, 10), v.now()
		if old, err := v.store.GetMedia(ctx, MediaGreeting, name); err == nil && !at.After(old.Created) {
			at = old.Created.Add(time.Millisecond)
		}
		var m MediaObject
		if m, err = v.cfg.Shared.put(ctx, MediaGreeting, name, tmp.Name(), at); err == nil {
			err = os.Chtimes(tmp.Name(), m.Created, m.Created)
		}
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "greeting.wav"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("voicemail: greeting: %w", err)
	}
	v.auditUser(ctx, actor, "voicemail.greeting", userID, strconv.Itoa(len(wav))+" bytes")
	return nil
}

func (v *Voicemails) auditUser(ctx context.Context, actor Actor, action string, userID int64, after string) {
	e := &AuditEvent{At: v.now(), Actor: actor.Name, Action: action, Object: "user:" + strconv.FormatInt(userID, 10),
		After: after, Remote: actor.Remote}
	if err := v.store.AddAudit(ctx, e); err != nil {
		v.logger.Error("audit write failed", "action", e.Action, "err", err)
	}
}

// HasGreeting reports whether the user has uploaded a greeting.
func (v *Voicemails) HasGreeting(ctx context.Context, userID int64) bool {
	mb := v.mailboxOf(userID)
	if mb == "" {
		return false
	}
	p, err := v.Greeting(ctx, mb)
	return err == nil && p != ""
}

// DeleteGreeting removes a user's greeting (callers hear the tone again),
// audited; ErrNotFound when there is none.
func (v *Voicemails) DeleteGreeting(ctx context.Context, userID int64, actor Actor) error {
	mb := v.mailboxOf(userID)
	if mb == "" {
		return fmt.Errorf("voicemail: user %d has no mailbox: %w", userID, ErrNotFound)
	}
	if v.cfg.Shared != nil {
		// The stored greeting is the one: a copy here may be missing.
		name := strconv.FormatInt(userID, 10)
		if _, err := v.store.GetMedia(ctx, MediaGreeting, name); err != nil {
			return fmt.Errorf("voicemail: greeting: %w", err)
		}
		if err := v.store.DeleteMedia(ctx, MediaGreeting, name); err != nil {
			return fmt.Errorf("voicemail: greeting: %w", err)
		}
	}
	if err := os.Remove(filepath.Join(v.dir(mb), "greeting.wav")); err != nil {
		if errors.Is(err, os.ErrNotExist) && v.cfg.Shared == nil {
			return fmt.Errorf("voicemail: no greeting: %w", ErrNotFound)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("voicemail: greeting: %w", err)
		}
	}
	v.auditUser(ctx, actor, "voicemail.greeting_delete", userID, "")
	return nil
}

// MarkHeard marks a user's message heard from the portal or the API,
// audited like a playback.
func (v *Voicemails) MarkHeard(ctx context.Context, userID, id int64, actor Actor) error {
	m, err := v.owned(ctx, userID, id)
	if err != nil {
		return err
	}
	if err := v.heard(ctx, userID, id); err != nil {
		return err
	}
	v.audit(ctx, actor, "voicemail.heard", m)
	return nil
}

// Summary counts a mailbox's new and heard messages.
func (v *Voicemails) Summary(ctx context.Context, mailbox string) (newMsgs, oldMsgs int, err error) {
	u, err := v.userOf(ctx, mailbox)
	if err != nil {
		return 0, 0, err
	}
	return v.count(ctx, u.ID)
}

func (v *Voicemails) count(ctx context.Context, userID int64) (newMsgs, oldMsgs int, err error) {
	ms, err := v.store.ListVoicemails(ctx, userID)
	if err != nil {
		return 0, 0, fmt.Errorf("voicemail: %w", err)
	}
	for _, m := range ms {
		if m.Heard.IsZero() {
			newMsgs++
		} else {
			oldMsgs++
		}
	}
	return newMsgs, oldMsgs, nil
}

// MailboxOf is the mailbox a caller (a user's or a login session's line)
// may listen to or watch at target: only their own. target "" means
// their own.
func (v *Voicemails) MailboxOf(ctx context.Context, kind OwnerKind, id, target string) (string, bool) {
	var userID int64
	switch kind {
	case OwnerUser:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return "", false
		}
		userID = n
	case OwnerSession:
		s, err := v.store.GetSession(ctx, id)
		if err != nil || !s.EndedAt.IsZero() {
			return "", false
		}
		userID = s.UserID
	default:
		return "", false
	}
	own := v.mailboxOf(userID)
	if own == "" {
		return "", false
	}
	if target != "" {
		if c, ok := v.creds.Canonical(target); !ok || c != own {
			return "", false
		}
	}
	return own, true
}

// ListenCode is whether dialled is the caller's site's mailbox code, and
// then the caller's own mailbox ("" when they have none: nobody logged in).
func (v *Voicemails) ListenCode(ctx context.Context, kind OwnerKind, id, dialled string) (string, bool) {
	code := ""
	switch kind {
	case OwnerSession:
		s, err := v.store.GetSession(ctx, id)
		if err != nil {
			return "", false
		}
		if d, err := v.store.GetDeviceByID(ctx, s.DeviceID); err == nil {
			if site, err := v.store.GetSite(ctx, d.SiteID); err == nil {
				code = site.FeatureCodes.Voicemail
			}
		}
	case OwnerUser, OwnerDevice:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return "", false
		}
		siteID := int64(0)
		if kind == OwnerUser {
			if u, err := v.store.GetUserByID(ctx, n); err == nil {
				siteID = u.SiteID
			}
		} else if d, err := v.store.GetDeviceByID(ctx, n); err == nil {
			siteID = d.SiteID
		}
		if site, err := v.store.GetSite(ctx, siteID); err == nil {
			code = site.FeatureCodes.Voicemail
		}
	}
	if code == "" || dialled != code {
		return "", false
	}
	mb, _ := v.MailboxOf(ctx, kind, id, "")
	return mb, true
}

// notify tells the SIP side a mailbox's counts changed.
func (v *Voicemails) notify(ctx context.Context, userID int64) {
	if v.mwi == nil {
		return
	}
	mailbox := v.mailboxOf(userID)
	if mailbox == "" {
		return
	}
	n, o, err := v.count(ctx, userID)
	if err != nil {
		v.logger.Warn("message-waiting not sent", "err", err)
		return
	}
	v.mwi.MessageWaiting(ctx, mailbox, n, o)
}

func (v *Voicemails) audit(ctx context.Context, actor Actor, action string, m Voicemail) {
	name := actor.Name
	if name == "" {
		name = "system"
	}
	e := &AuditEvent{At: v.now(), Actor: name, Action: action, Object: "voicemail:" + strconv.FormatInt(m.ID, 10),
		After: "user " + strconv.FormatInt(m.UserID, 10) + " from " + m.From, Remote: actor.Remote}
	if err := v.store.AddAudit(ctx, e); err != nil {
		v.logger.Error("audit write failed", "action", action, "err", err)
	}
}

// Sweep deletes messages past the retention, at most 1000 a run.
func (v *Voicemails) Sweep(ctx context.Context) error {
	if v.cfg.Retention <= 0 {
		return nil
	}
	old, err := v.store.VoicemailsBefore(ctx, v.now().Add(-v.cfg.Retention), 1000)
	if err != nil {
		return fmt.Errorf("voicemail sweep: %w", err)
	}
	for _, m := range old {
		if err := v.remove(ctx, m.UserID, m.ID, Actor{Name: "system"}); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("voicemail sweep: %w", err)
		}
		v.swept.Inc()
	}
	return nil
}

// RunSweeper sweeps every interval until ctx ends.
func (v *Voicemails) RunSweeper(ctx context.Context, every time.Duration) error {
	return runEvery(ctx, every, v.logger, "voicemail sweep", v.Sweep)
}
